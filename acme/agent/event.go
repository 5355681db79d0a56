package agent

import (
	"crypto/tls"
	"time"
)

// Action is what one pass of the agent did with the certificate.
type Action string

// The actions an Event reports.
const (
	// ActionObtained: a first certificate, since none was stored or the
	// stored one could not be used (expired, other names, other root).
	ActionObtained Action = "obtained"
	// ActionRenewed: a new certificate replaced the one in use.
	ActionRenewed Action = "renewed"
	// ActionUnchanged: the stored certificate is kept; it is not due.
	ActionUnchanged Action = "unchanged"
)

// Event reports one action, for a caller that tells its operator (the
// agent's CLI prints one line per Event).
type Event struct {
	Action Action
	// Cert is the certificate in use after the action, leaf parsed.
	Cert *tls.Certificate
	// NextCheck is when the agent acts next: a renewal, or a new look at
	// the server's renewal information (RFC 9773), whichever comes first.
	NextCheck time.Time
}

// emit plans the next step and reports the action to Config.OnEvent.
func (a *Agent) emit(action Action, next time.Time) {
	if a.cfg.OnEvent != nil {
		a.cfg.OnEvent(Event{Action: action, Cert: a.Current(), NextCheck: next})
	}
}
