package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Mutual TLS with a certificate from the CA proves only "a service of this
// fleet". A PeerAllowList goes further and names which services: each
// certmint certificate of a workload carries its SPIFFE ID as its one URI
// SAN (X509-SVID §2), and the list accepts a peer only when that ID is
// one of its entries. go-spiffe reads the ID, so the rules are SPIFFE's.

// PeerAllowList is the set of workload identities a mutual-TLS endpoint
// accepts. It is safe for concurrent use once built.
type PeerAllowList struct {
	entries []string
	exact   map[spiffeid.ID]bool
	under   []spiffeid.ID          // "spiffe://td/a/*": every ID below /a
	domains []spiffeid.TrustDomain // "spiffe://td/*": every workload of td
}

// ParsePeerAllowList reads entries of two forms: an exact SPIFFE ID,
// "spiffe://corp.example/payments/sender", or a prefix ending in "/*",
// "spiffe://corp.example/payments/*", which allows every ID below that
// path, on segment boundaries (not /payments itself, nor /payments-x).
// "spiffe://corp.example/*" allows every workload of the trust domain.
func ParsePeerAllowList(entries []string) (*PeerAllowList, error) {
	l := &PeerAllowList{exact: map[spiffeid.ID]bool{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		base, prefix := strings.CutSuffix(e, "/*")
		id, err := spiffeid.FromString(base)
		if err != nil {
			return nil, fmt.Errorf("allowed peer %q is not a SPIFFE ID (spiffe://TRUST-DOMAIN/PATH, or a prefix ending in /*): %w", e, err)
		}
		switch {
		case prefix && id.Path() == "":
			l.domains = append(l.domains, id.TrustDomain())
		case prefix:
			l.under = append(l.under, id)
		case id.Path() == "":
			return nil, fmt.Errorf("allowed peer %q names no workload: a workload's ID has a path (spiffe://%s/PATH; spiffe://%s/* for all of them)", e, id.TrustDomain(), id.TrustDomain())
		default:
			l.exact[id] = true
		}
		l.entries = append(l.entries, e)
	}
	if len(l.entries) == 0 {
		return nil, errors.New("the list of allowed peers is empty")
	}
	return l, nil
}

// String lists the entries, comma-separated.
func (l *PeerAllowList) String() string { return strings.Join(l.entries, ",") }

// Allows reports whether id is on the list.
func (l *PeerAllowList) Allows(id spiffeid.ID) bool {
	if l.exact[id] {
		return true
	}
	for _, p := range l.under {
		if id.MemberOf(p.TrustDomain()) && strings.HasPrefix(id.Path(), p.Path()+"/") {
			return true
		}
	}
	for _, td := range l.domains {
		if id.MemberOf(td) && id.Path() != "" {
			return true
		}
	}
	return false
}

// PeerRefusedError says which peer a PeerAllowList refused and why: its
// SPIFFE ID (zero when its certificate carries none) and, to tell
// services apart without one, its DNS names, IP addresses and serial.
type PeerRefusedError struct {
	ID     spiffeid.ID
	Names  []string
	Serial string
	Reason string
}

func (e *PeerRefusedError) Error() string {
	who := "peer"
	if !e.ID.IsZero() {
		who += " " + e.ID.String()
	}
	if len(e.Names) > 0 {
		who += " (" + strings.Join(e.Names, ",") + ")"
	}
	if e.Serial != "" {
		who += " serial " + e.Serial
	}
	return who + ": " + e.Reason
}

// Check returns the SPIFFE ID of a verified peer certificate that the list
// allows, or a *PeerRefusedError: no identity, more than one URI SAN
// (X509-SVID §5.2 rejects those), or an identity not on the list.
func (l *PeerAllowList) Check(leaf *x509.Certificate) (spiffeid.ID, error) {
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	refuse := func(id spiffeid.ID, reason string) error {
		return &PeerRefusedError{ID: id, Names: names, Serial: leaf.SerialNumber.Text(16), Reason: reason}
	}
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return spiffeid.ID{}, refuse(spiffeid.ID{}, "no workload identity: "+err.Error())
	}
	if !l.Allows(id) {
		return id, refuse(id, "identity not allowed (allowed: "+l.String()+")")
	}
	return id, nil
}

// Apply makes cfg accept only peers on the list: on a server the client's
// certificate, on a client the server's. It checks in VerifyConnection,
// which runs after the chain verified, on both sides and also on resumed
// sessions; a handshake with a peer the list refuses fails with a "bad
// certificate" alert. refused, when set, is told each refusal first, to
// log who was turned away. Apply returns cfg.
func (l *PeerAllowList) Apply(cfg *tls.Config, refused func(*PeerRefusedError)) *tls.Config {
	prev := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if prev != nil {
			if err := prev(cs); err != nil {
				return err
			}
		}
		var err error
		switch {
		case len(cs.PeerCertificates) == 0:
			err = &PeerRefusedError{Reason: "no certificate"}
		case len(cs.VerifiedChains) == 0:
			// Only a verified chain makes the URI SAN mean anything.
			err = &PeerRefusedError{Serial: cs.PeerCertificates[0].SerialNumber.Text(16), Reason: "certificate not verified"}
		default:
			_, err = l.Check(cs.PeerCertificates[0])
		}
		var pe *PeerRefusedError
		if errors.As(err, &pe) && refused != nil {
			refused(pe)
		}
		return err
	}
	return cfg
}

// PeerIdentity is the SPIFFE ID of the verified peer of a connection, the
// zero ID when it has none: for handlers that answer callers differently.
func PeerIdentity(cs *tls.ConnectionState) spiffeid.ID {
	if cs == nil || len(cs.VerifiedChains) == 0 {
		return spiffeid.ID{}
	}
	id, err := x509svid.IDFromCert(cs.VerifiedChains[0][0])
	if err != nil {
		return spiffeid.ID{}
	}
	return id
}
