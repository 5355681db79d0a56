package storage

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/certmint/certmint/acme"
)

// Row types: how the ACME model (package acme) is laid out in tables.
// Each struct is the one declaration of its table's columns: every query
// of the table goes through gorm with it, so adding a column means a
// field here and a migration, and schema_test.go fails if the two
// disagree. The toModel/fromModel pairs are the only place that knows
// how a model field is encoded in a column (JSON lists, comma-joined
// names, problem documents).

type accountRow struct {
	ID            string    `gorm:"primaryKey;size:64"`
	KeyThumbprint string    `gorm:"uniqueIndex;size:128;not null"`
	KeyJWK        string    `gorm:"type:text;not null"`
	Status        string    `gorm:"size:16;not null;index"`
	Contact       string    `gorm:"type:text"` // JSON array of mailto: URIs
	TOSAgreed     bool      `gorm:"not null"`
	EABKeyID      string    `gorm:"size:64;index"`
	CreatedAt     time.Time `gorm:"not null;index"`
	Workload      string    `gorm:"size:2048;not null;default:''"` // SPIFFE path bound at registration (0022)
}

func (accountRow) TableName() string { return "accounts" }

type orderRow struct {
	ID            string    `gorm:"primaryKey;size:64"`
	AccountID     string    `gorm:"size:64;not null"`
	Status        string    `gorm:"size:16;not null"` // partial index idx_orders_unfinished (0010)
	Expires       time.Time `gorm:"not null"`
	Identifiers   string    `gorm:"type:text;not null"` // JSON []Identifier as sent
	Names         string    `gorm:"type:text;not null"` // lowercase names, comma separated, for search
	NotBefore     *time.Time
	NotAfter      *time.Time
	Profile       string    `gorm:"size:64"`
	Error         string    `gorm:"type:text"` // JSON problem document, when invalid
	CertificateID string    `gorm:"size:64"`
	Replaces      string    `gorm:"size:255"`
	CreatedAt     time.Time `gorm:"not null"`
}

func (orderRow) TableName() string { return "orders" }

// orderAuthzRow links an order to one of its authorizations. An
// authorization may be shared by several orders when reuse is enabled.
type orderAuthzRow struct {
	OrderID  string `gorm:"primaryKey;size:64"`
	AuthzID  string `gorm:"primaryKey;size:64;index"`
	Position int    `gorm:"not null"`
}

func (orderAuthzRow) TableName() string { return "order_authzs" }

type authzRow struct {
	ID        string    `gorm:"primaryKey;size:64"`
	AccountID string    `gorm:"size:64;not null"` // partial indexes idx_authz_pending, idx_authz_reusable (0010)
	Type      string    `gorm:"size:8;not null"`
	Value     string    `gorm:"size:255;not null"`
	Wildcard  bool      `gorm:"not null"`
	Status    string    `gorm:"size:16;not null"`
	Expires   time.Time `gorm:"not null"`
	PreAuth   bool      `gorm:"not null"`
	CreatedAt time.Time `gorm:"not null"`
}

func (authzRow) TableName() string { return "authorizations" }

type challengeRow struct {
	ID        string `gorm:"primaryKey;size:64"`
	AuthzID   string `gorm:"size:64;not null;index"`
	Type      string `gorm:"size:32;not null"`
	Token     string `gorm:"size:128;not null"`
	Status    string `gorm:"size:16;not null"`
	Validated *time.Time
	Error     string `gorm:"type:text"` // JSON problem document, when invalid
	Position  int    `gorm:"not null"`
}

func (challengeRow) TableName() string { return "challenges" }

type certificateRow struct {
	ID               string    `gorm:"primaryKey;size:64"`
	Serial           string    `gorm:"uniqueIndex;size:64;not null"`
	AccountID        string    `gorm:"size:64;not null;index"`
	OrderID          string    `gorm:"size:64;not null;index"`
	Names            string    `gorm:"type:text;not null"` // lowercase SANs, comma separated
	CommonName       string    `gorm:"size:255"`
	Profile          string    `gorm:"size:64"`
	KeyHash          string    `gorm:"size:64"`
	NotBefore        time.Time `gorm:"not null"`
	NotAfter         time.Time `gorm:"not null;index"`
	DER              []byte    `gorm:"not null"`
	ChainPEM         string    `gorm:"type:text;not null"`
	Revoked          bool      `gorm:"not null;index"`
	RevokedAt        *time.Time
	RevocationReason int
	ARIID            string    `gorm:"size:255"`
	RenewNow         bool      `gorm:"not null"`
	ReplacedBy       string    `gorm:"size:64"`
	CreatedAt        time.Time `gorm:"not null;index"`
	IssuerID         string    `gorm:"size:64;not null;default:''"`   // hex SKI of the signing intermediate
	Identity         string    `gorm:"size:2048;not null;default:''"` // SPIFFE ID of the URI SAN (0022)
}

func (certificateRow) TableName() string { return "certificates" }

// encodeJSON and the decoders below are the column encodings of lists and
// problem documents. A column that does not decode (a hand-edited row)
// reads as empty rather than failing the whole request.
func encodeJSON(v any) string {
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func encodeProblem(p *acme.Problem) string {
	if p == nil {
		return ""
	}
	return encodeJSON(p)
}

func decodeProblem(s string) *acme.Problem {
	if s == "" {
		return nil
	}
	var p acme.Problem
	if json.Unmarshal([]byte(s), &p) != nil {
		return &acme.Problem{Type: acme.ProblemNS + "serverInternal", Detail: s}
	}
	return &p
}

func decodeStrings(s string) []string {
	var out []string
	if s != "" {
		_ = json.Unmarshal([]byte(s), &out)
	}
	return out
}

func splitNames(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func fromAccount(a *acme.Account) accountRow {
	contact := ""
	if len(a.Contact) > 0 {
		contact = encodeJSON(a.Contact)
	}
	return accountRow{ID: a.ID, KeyThumbprint: a.KeyThumbprint, KeyJWK: a.KeyJWK, Status: a.Status,
		Contact: contact, TOSAgreed: a.TOSAgreed, EABKeyID: a.EABKeyID, CreatedAt: ts(a.CreatedAt), Workload: a.Workload}
}

func (r *accountRow) toModel() *acme.Account {
	return &acme.Account{ID: r.ID, KeyThumbprint: r.KeyThumbprint, KeyJWK: r.KeyJWK, Status: r.Status,
		Contact: decodeStrings(r.Contact), TOSAgreed: r.TOSAgreed, EABKeyID: r.EABKeyID, CreatedAt: utc(r.CreatedAt), Workload: r.Workload}
}

func fromOrder(o *acme.Order) orderRow {
	return orderRow{ID: o.ID, AccountID: o.AccountID, Status: o.Status, Expires: ts(o.Expires),
		Identifiers: encodeJSON(o.Identifiers), Names: strings.Join(o.Names, ","),
		NotBefore: tsp(o.NotBefore), NotAfter: tsp(o.NotAfter), Profile: o.Profile, Error: encodeProblem(o.Error),
		CertificateID: o.CertificateID, Replaces: o.Replaces, CreatedAt: ts(o.CreatedAt)}
}

func (r *orderRow) toModel() *acme.Order {
	o := &acme.Order{ID: r.ID, AccountID: r.AccountID, Status: r.Status, Expires: utc(r.Expires),
		Names: splitNames(r.Names), NotBefore: utcp(r.NotBefore), NotAfter: utcp(r.NotAfter), Profile: r.Profile,
		Error: decodeProblem(r.Error), CertificateID: r.CertificateID, Replaces: r.Replaces, CreatedAt: utc(r.CreatedAt)}
	_ = json.Unmarshal([]byte(r.Identifiers), &o.Identifiers)
	return o
}

func fromAuthz(a *acme.Authorization) authzRow {
	return authzRow{ID: a.ID, AccountID: a.AccountID, Type: a.Type, Value: a.Value, Wildcard: a.Wildcard,
		Status: a.Status, Expires: ts(a.Expires), PreAuth: a.PreAuth, CreatedAt: ts(a.CreatedAt)}
}

func (r *authzRow) toModel(chals []challengeRow) *acme.Authorization {
	a := &acme.Authorization{ID: r.ID, AccountID: r.AccountID, Type: r.Type, Value: r.Value, Wildcard: r.Wildcard,
		Status: r.Status, Expires: utc(r.Expires), PreAuth: r.PreAuth, CreatedAt: utc(r.CreatedAt)}
	a.Challenges = make([]acme.Challenge, len(chals))
	for i := range chals {
		a.Challenges[i] = chals[i].toModel()
	}
	return a
}

func fromChallenge(c *acme.Challenge) challengeRow {
	return challengeRow{ID: c.ID, AuthzID: c.AuthzID, Type: c.Type, Token: c.Token, Status: c.Status,
		Validated: tsp(c.Validated), Error: encodeProblem(c.Error), Position: c.Position}
}

func (r *challengeRow) toModel() acme.Challenge {
	return acme.Challenge{ID: r.ID, AuthzID: r.AuthzID, Type: r.Type, Token: r.Token, Status: r.Status,
		Validated: utcp(r.Validated), Error: decodeProblem(r.Error), Position: r.Position}
}

func fromCertificate(c *acme.Certificate) certificateRow {
	return certificateRow{ID: c.ID, Serial: strings.ToLower(c.Serial), AccountID: c.AccountID, OrderID: c.OrderID,
		Names: strings.Join(c.Names, ","), CommonName: c.CommonName, Profile: c.Profile, KeyHash: c.KeyHash,
		NotBefore: ts(c.NotBefore), NotAfter: ts(c.NotAfter), DER: c.DER, ChainPEM: c.ChainPEM,
		Revoked: c.Revoked, RevokedAt: tsp(c.RevokedAt), RevocationReason: c.RevocationReason, ARIID: c.ARIID,
		RenewNow: c.RenewNow, ReplacedBy: c.ReplacedBy, CreatedAt: ts(c.CreatedAt), IssuerID: c.IssuerID, Identity: c.Identity}
}

func (r *certificateRow) toModel() *acme.Certificate {
	return &acme.Certificate{ID: r.ID, Serial: r.Serial, AccountID: r.AccountID, OrderID: r.OrderID,
		Names: splitNames(r.Names), CommonName: r.CommonName, Profile: r.Profile, KeyHash: r.KeyHash,
		NotBefore: utc(r.NotBefore), NotAfter: utc(r.NotAfter), DER: r.DER, ChainPEM: r.ChainPEM,
		Revoked: r.Revoked, RevokedAt: utcp(r.RevokedAt), RevocationReason: r.RevocationReason, ARIID: r.ARIID,
		RenewNow: r.RenewNow, ReplacedBy: r.ReplacedBy, CreatedAt: utc(r.CreatedAt), IssuerID: r.IssuerID, Identity: r.Identity}
}

func certModels(rows []certificateRow) []acme.Certificate {
	out := make([]acme.Certificate, len(rows))
	for i := range rows {
		out[i] = *rows[i].toModel()
	}
	return out
}
