// Package audit is the vocabulary of certmint's audit log: the Event that
// the ACME server, the console and the command line all write, the action
// names, and how targets are spelled. It is the one place for both, so
// that the console's /audit search finds the same words whoever acted.
package audit

import "time"

// Event is one entry of the audit log: who (Actor: a console user, an
// ACME account, "cli", "system"), did what (Action), to what (Target),
// from where. IDs are time-ordered, so the log pages by ID.
type Event struct {
	ID         string
	At         time.Time
	Actor      string
	Action     string
	Target     string
	Detail     string
	RemoteAddr string
}

// Actions. They are plain strings so that /audit can search them.
const (
	Login             = "login"
	LoginFailed       = "login.failed"
	Logout            = "logout"
	CertIssue         = "certificate.issue"
	CertRevoke        = "certificate.revoke"
	CertRenewNow      = "certificate.renew_now"
	AccountDeactivate = "account.deactivate"
	UserAdd           = "user.add"
	UserPassword      = "user.password"
	EABCreate         = "eab.create"
	EABRevoke         = "eab.revoke"
	// Issue 20: roles, users and sign-in through an OpenID provider.
	AccessDenied = "access.denied"
	UserRole     = "user.role"
	UserDisable  = "user.disable"
	UserEnable   = "user.enable"
	SessionEnd   = "session.revoke"

	// The CA page (and the command line): rotations, the switch at the
	// end of a root rotation's overlap, a pending CSR fetched, its
	// signed certificate imported.
	CARotateIntermediate = "ca.rotate_intermediate"
	CARotateRoot         = "ca.rotate_root"
	CASwitch             = "ca.switch"
	CACSRDownload        = "ca.csr_download"
	CAImport             = "ca.import_intermediate"
)

// Targets: "kind/id", the same spelling from every front end.

// Certificate names a certificate by its ID.
func Certificate(id string) string { return "certificate/" + id }

// Account names an ACME account by its ID.
func Account(id string) string { return "account/" + id }

// User names a console user.
func User(name string) string { return "user/" + name }

// EABKey names an external account binding key by its ID.
func EABKey(id string) string { return "eab/" + id }

// Issuer names a CA issuer (root or intermediate) by its ID, the hex of
// its subject key identifier.
func Issuer(id string) string { return "issuer/" + id }

// Names names a set of certificates by a name pattern.
func Names(pattern string) string { return "names/" + pattern }

// ACMEAccount is the actor of an ACME request signed by an account.
func ACMEAccount(id string) string { return "account:" + id }

// Webhook actions.
const (
	WebhookAdd    = "webhook.add"
	WebhookRemove = "webhook.remove"
)

// Webhook names a webhook endpoint by its ID.
func Webhook(id string) string { return "webhook/" + id }
