package storage

import (
	"database/sql"
	"strings"

	"gorm.io/gorm"
)

// The writes every issuance makes (the order with its authorizations,
// challenges and links; the challenge's start; the certificate with its
// audit entry) go to the transaction's connection as hand-written SQL,
// like the reads in hotread.go.
//
// Why: through gorm these transactions spent about a third of their time
// in gorm itself: building the statement from the model by reflection on
// every call and collecting the values the same way. Only these few
// statements bypass gorm; every column is listed, and the store suite
// reads back what they write, on both engines.

// rawExec runs query, written with "?" placeholders, on tx's connection
// (the transaction itself) without gorm's statement processing.
func rawExec(tx *gorm.DB, query string, args ...any) (sql.Result, error) {
	return tx.Statement.ConnPool.ExecContext(tx.Statement.Context, bindFor(tx.Dialector.Name(), query), args...)
}

// casRaw is casDone for a raw compare-and-set UPDATE.
func casRaw(tx *gorm.DB, res sql.Result, err error, table, id string) error {
	if err != nil {
		return mapErr(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return mapErr(err)
	}
	return casOutcome(tx, n, table, id)
}

// insertRows writes rows of len(cols) values each as one multi-row INSERT.
func insertRows(tx *gorm.DB, table string, cols []string, rows int, args []any) error {
	if rows == 0 {
		return nil
	}
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
	var b strings.Builder
	b.Grow(32 + len(table) + 12*len(cols) + rows*(len(one)+1))
	b.WriteString("INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (")
	b.WriteString(strings.Join(cols, ", "))
	b.WriteString(") VALUES ")
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(one)
	}
	_, err := rawExec(tx, b.String(), args...)
	return err
}

var (
	orderCols = []string{"id", "account_id", "status", "expires", "identifiers", "names", "not_before",
		"not_after", "profile", "error", "certificate_id", "replaces", "created_at"}
	authzInsertCols = []string{"id", "account_id", "type", "value", "wildcard", "status", "expires", "pre_auth", "created_at"}
	chalInsertCols  = []string{"id", "authz_id", "type", "token", "status", "validated", "error", "position"}
	linkCols        = []string{"order_id", "authz_id", "position"}
	certCols        = []string{"id", "serial", "account_id", "order_id", "names", "common_name", "profile", "key_hash",
		"not_before", "not_after", "der", "chain_pem", "revoked", "revoked_at", "revocation_reason", "ari_id",
		"renew_now", "replaced_by", "created_at"}
	auditCols = []string{"id", "at", "actor", "action", "target", "detail", "remote_addr"}
)

func insertOrder(tx *gorm.DB, o *Order) error {
	return insertRows(tx, "orders", orderCols, 1, []any{o.ID, o.AccountID, o.Status, o.Expires, o.Identifiers,
		o.Names, o.NotBefore, o.NotAfter, o.Profile, o.Error, o.CertificateID, o.Replaces, o.CreatedAt})
}

func insertOrderLinks(tx *gorm.DB, links []OrderAuthz) error {
	args := make([]any, 0, len(links)*len(linkCols))
	for _, l := range links {
		args = append(args, l.OrderID, l.AuthzID, l.Position)
	}
	return insertRows(tx, "order_authzs", linkCols, len(links), args)
}

// insertAuthzRows writes authorizations and then all of their challenges
// (IDs, times and links already filled in by insertAuthzs).
func insertAuthzRows(tx *gorm.DB, authzs []Authorization, chals []Challenge) error {
	args := make([]any, 0, len(authzs)*len(authzInsertCols))
	for _, a := range authzs {
		args = append(args, a.ID, a.AccountID, a.Type, a.Value, a.Wildcard, a.Status, a.Expires, a.PreAuth, a.CreatedAt)
	}
	if err := insertRows(tx, "authorizations", authzInsertCols, len(authzs), args); err != nil {
		return err
	}
	args = make([]any, 0, len(chals)*len(chalInsertCols))
	for _, c := range chals {
		args = append(args, c.ID, c.AuthzID, c.Type, c.Token, c.Status, c.Validated, c.Error, c.Position)
	}
	return insertRows(tx, "challenges", chalInsertCols, len(chals), args)
}

func insertCertificate(tx *gorm.DB, c *Certificate) error {
	return insertRows(tx, "certificates", certCols, 1, []any{c.ID, c.Serial, c.AccountID, c.OrderID, c.Names,
		c.CommonName, c.Profile, c.KeyHash, c.NotBefore, c.NotAfter, c.DER, c.ChainPEM, c.Revoked, c.RevokedAt,
		c.RevocationReason, c.ARIID, c.RenewNow, c.ReplacedBy, c.CreatedAt})
}

func insertAudit(tx *gorm.DB, e *AuditEvent) error {
	return insertRows(tx, "audit_events", auditCols, 1, []any{e.ID, e.At, e.Actor, e.Action, e.Target, e.Detail, e.RemoteAddr})
}
