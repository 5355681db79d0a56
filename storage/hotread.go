package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// hotReads are the look-ups every issuance makes (an authorization, a
// challenge with its authorization, an order, a certificate), written as
// SQL and scanned by hand rather than through gorm.
//
// Why: through gorm these four were about a fifth of the server's CPU per
// issuance. gorm builds the SQL text on every call, scans through
// reflection, and loads an authorization's challenges with a second query;
// here each look-up is one cached statement and a direct Scan. Everything
// else in the store stays on gorm. Every column is listed explicitly, and
// the store suite reads back what the store wrote, on both engines.
type hotReads struct {
	db     *sql.DB
	engine string
}

func newHotReads(db *sql.DB, engine string) *hotReads { return &hotReads{db: db, engine: engine} }

const (
	authzCols = `a.id, a.account_id, a.type, a.value, a.wildcard, a.status, a.expires, a.pre_auth, a.created_at`
	// Challenge columns may be NULL only through the LEFT JOIN (an
	// authorization without challenges, which certmint never writes).
	chalCols = `c.id, c.authz_id, c.type, c.token, c.status, c.validated, COALESCE(c.error, ''), c.position`

	authzByID = `SELECT ` + authzCols + `, ` + chalCols + `
		FROM authorizations a LEFT JOIN challenges c ON c.authz_id = a.id
		WHERE a.id = ? ORDER BY c.position`
	authzByChallenge = `SELECT ` + authzCols + `, ` + chalCols + `
		FROM challenges x JOIN authorizations a ON a.id = x.authz_id
		JOIN challenges c ON c.authz_id = a.id
		WHERE x.id = ? ORDER BY c.position`
	orderByID = `SELECT o.id, o.account_id, o.status, o.expires, o.identifiers, o.names,
		o.not_before, o.not_after, COALESCE(o.profile, ''), COALESCE(o.error, ''),
		COALESCE(o.certificate_id, ''), COALESCE(o.replaces, ''), o.created_at, oa.authz_id
		FROM orders o LEFT JOIN order_authzs oa ON oa.order_id = o.id
		WHERE o.id = ? ORDER BY oa.position`
	certByID = `SELECT id, serial, account_id, order_id, names, COALESCE(common_name, ''),
		COALESCE(profile, ''), COALESCE(key_hash, ''), not_before, not_after, der, chain_pem,
		revoked, revoked_at, COALESCE(revocation_reason, 0), COALESCE(ari_id, ''), renew_now,
		COALESCE(replaced_by, ''), created_at
		FROM certificates WHERE id = ?`
	// Served by the partial idx_authz_reusable (migration 0010).
	reusableAuthz = `SELECT id FROM authorizations
		WHERE account_id = ? AND type = ? AND value = ? AND wildcard = ? AND ` + authzValid + ` AND expires > ?
		ORDER BY expires DESC LIMIT 1`
)

// pgQueries caches the $n spelling of each hand-written statement.
var pgQueries sync.Map // string -> string

// bindFor spells query, written with "?" placeholders, for engine:
// unchanged for SQLite, with $1, $2, ... for Postgres.
func bindFor(engine, query string) string {
	if engine != enginePostgres {
		return query
	}
	if q, ok := pgQueries.Load(query); ok {
		return q.(string)
	}
	q := dollarBinds(query)
	pgQueries.Store(query, q)
	return q
}

// dollarBinds turns "?" placeholders into Postgres' $1, $2, ... (none of
// the hand-written statements has a "?" inside a string literal).
func dollarBinds(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// nullChallenge receives the challenge columns of a LEFT JOIN.
type nullChallenge struct {
	id, authzID, typ, token, status sql.NullString
	validated                       sql.NullTime
	errJSON                         string
	position                        sql.NullInt64
}

func (n *nullChallenge) dest() []any {
	return []any{&n.id, &n.authzID, &n.typ, &n.token, &n.status, &n.validated, &n.errJSON, &n.position}
}

func (n *nullChallenge) challenge() (Challenge, bool) {
	if !n.id.Valid {
		return Challenge{}, false
	}
	c := Challenge{ID: n.id.String, AuthzID: n.authzID.String, Type: n.typ.String, Token: n.token.String,
		Status: n.status.String, Error: n.errJSON, Position: int(n.position.Int64)}
	if n.validated.Valid {
		v := n.validated.Time.UTC()
		c.Validated = &v
	}
	return c, true
}

// authzRows reads an authorization with its challenges, one row each.
func (h *hotReads) authzRows(ctx context.Context, query, id string) (*Authorization, error) {
	rows, err := h.db.QueryContext(ctx, bindFor(h.engine, query), id)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var a *Authorization
	for rows.Next() {
		var cur Authorization
		var nc nullChallenge
		dest := append([]any{&cur.ID, &cur.AccountID, &cur.Type, &cur.Value, &cur.Wildcard, &cur.Status,
			&cur.Expires, &cur.PreAuth, &cur.CreatedAt}, nc.dest()...)
		if err := rows.Scan(dest...); err != nil {
			return nil, mapErr(err)
		}
		if a == nil {
			a = &cur
		}
		if c, ok := nc.challenge(); ok {
			a.Challenges = append(a.Challenges, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(err)
	}
	if a == nil {
		return nil, ErrNotFound
	}
	normAuthz(a)
	return a, nil
}

func (h *hotReads) getOrder(ctx context.Context, id string) (*Order, error) {
	rows, err := h.db.QueryContext(ctx, bindFor(h.engine, orderByID), id)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var o *Order
	for rows.Next() {
		var cur Order
		var authzID sql.NullString
		if err := rows.Scan(&cur.ID, &cur.AccountID, &cur.Status, &cur.Expires, &cur.Identifiers, &cur.Names,
			&cur.NotBefore, &cur.NotAfter, &cur.Profile, &cur.Error, &cur.CertificateID, &cur.Replaces,
			&cur.CreatedAt, &authzID); err != nil {
			return nil, mapErr(err)
		}
		if o == nil {
			o = &cur
		}
		if authzID.Valid {
			o.AuthzIDs = append(o.AuthzIDs, authzID.String)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(err)
	}
	if o == nil {
		return nil, ErrNotFound
	}
	normOrder(o)
	return o, nil
}

func (h *hotReads) getCertificate(ctx context.Context, id string) (*Certificate, error) {
	var c Certificate
	var revokedAt sql.NullTime
	err := h.db.QueryRowContext(ctx, bindFor(h.engine, certByID), id).Scan(&c.ID, &c.Serial, &c.AccountID, &c.OrderID, &c.Names,
		&c.CommonName, &c.Profile, &c.KeyHash, &c.NotBefore, &c.NotAfter, &c.DER, &c.ChainPEM,
		&c.Revoked, &revokedAt, &c.RevocationReason, &c.ARIID, &c.RenewNow, &c.ReplacedBy, &c.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, mapErr(err)
	}
	if revokedAt.Valid {
		t := revokedAt.Time
		c.RevokedAt = &t
	}
	normCert(&c)
	return &c, nil
}

// findReusable returns the valid authorization of accountID for the
// identifier that stays valid longest beyond validUntil.
func (h *hotReads) findReusable(ctx context.Context, accountID, typ, value string, wildcard bool, validUntil time.Time) (*Authorization, error) {
	var id string
	err := h.db.QueryRowContext(ctx, bindFor(h.engine, reusableAuthz), accountID, typ, value, wildcard, ts(validUntil)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, mapErr(err)
	}
	return h.authzRows(ctx, authzByID, id)
}

// challengeOf picks the challenge id out of its authorization.
func challengeOf(a *Authorization, id string) (*Challenge, error) {
	for i := range a.Challenges {
		if a.Challenges[i].ID == id {
			c := a.Challenges[i]
			return &c, nil
		}
	}
	return nil, fmt.Errorf("challenge %s: %w", id, ErrNotFound)
}
