package validate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// ACMETLS1Protocol is the ALPN protocol of tls-alpn-01 (RFC 8737 §6.2).
const ACMETLS1Protocol = "acme-tls/1"

// OIDACMEIdentifier is id-pe-acmeIdentifier (RFC 8737 §6.1).
var OIDACMEIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// tlsALPN01 performs the handshake of RFC 8737 §3 and checks the
// self-signed validation certificate it is shown.
func (v *Validator) tlsALPN01(ctx context.Context, r Request) *Error {
	// RFC 8737 §3: SNI carries the name being validated. RFC 8738 §6: SNI
	// may not carry an address, so IP identifiers use the reverse-mapping
	// name (in-addr.arpa / ip6.arpa) instead.
	sni := r.Value
	if r.IdentType == IdentIP {
		arpa, err := dns.ReverseAddr(r.Value)
		if err != nil {
			return failf(KindTLS, "cannot build reverse name for %s", r.Value)
		}
		sni = strings.TrimSuffix(arpa, ".")
	}
	conn, err := v.dialTarget(ctx, r.Value, strconv.Itoa(v.cfg.TLSALPNPort))
	if err != nil {
		var (
			le *lookupError
			de *dialError
		)
		switch {
		case errors.As(err, &le):
			return &Error{Kind: KindDNS, Detail: le.Error()}
		case errors.As(err, &de):
			return failf(KindConnection, "tls-alpn-01: %s", de.Error())
		default:
			return failf(KindConnection, "tls-alpn-01: connecting to %s: %s", r.Value, errText(ctx, err))
		}
	}
	addr := conn.RemoteAddr().String()
	tc := tls.Client(conn, &tls.Config{
		ServerName: sni,
		NextProtos: []string{ACMETLS1Protocol},
		// The certificate is self-signed by design (RFC 8737 §3); it is
		// checked by hand below instead of against a trust store.
		InsecureSkipVerify: true, //nolint:gosec // RFC 8737 §3
		MinVersion:         tls.VersionTLS12,
	})
	defer tc.Close()
	if err := tc.HandshakeContext(ctx); err != nil {
		return failf(KindTLS, "TLS handshake with %s (SNI %q) for tls-alpn-01 failed: %s", addr, sni, errText(ctx, err))
	}
	cs := tc.ConnectionState()
	if cs.NegotiatedProtocol != ACMETLS1Protocol {
		return failf(KindTLS, "%s (SNI %q) did not negotiate ALPN protocol %q (got %q)", addr, sni, ACMETLS1Protocol, cs.NegotiatedProtocol)
	}
	if len(cs.PeerCertificates) == 0 {
		return failf(KindTLS, "%s (SNI %q) presented no certificate", addr, sni)
	}
	return checkALPNCert(cs.PeerCertificates[0], r, addr)
}

// checkALPNCert applies RFC 8737 §3 step 4 to the leaf: exactly one
// subjectAltName, equal to the identifier, and a critical acmeIdentifier
// extension holding the DER OCTET STRING of SHA-256(key authorization).
func checkALPNCert(leaf *x509.Certificate, r Request, addr string) *Error {
	if err := checkSingleSAN(leaf, r); err != "" {
		return failf(KindUnauthorized, "certificate presented by %s %s", addr, err)
	}
	var ext []byte
	found, critical := 0, false
	for _, e := range leaf.Extensions {
		if e.Id.Equal(OIDACMEIdentifier) {
			found++
			ext, critical = e.Value, e.Critical
		}
	}
	switch {
	case found == 0:
		return failf(KindUnauthorized, "certificate presented by %s has no acmeIdentifier extension (%s)", addr, OIDACMEIdentifier)
	case found > 1:
		return failf(KindUnauthorized, "certificate presented by %s has %d acmeIdentifier extensions, want one", addr, found)
	case !critical:
		return failf(KindUnauthorized, "certificate presented by %s has an acmeIdentifier extension that is not critical (RFC 8737 §3 requires critical)", addr)
	}
	sum := sha256.Sum256([]byte(r.KeyAuth))
	want, err := asn1.Marshal(sum[:])
	if err != nil {
		return failf(KindUnauthorized, "cannot encode expected acmeIdentifier value")
	}
	if !bytes.Equal(ext, want) {
		got := ext
		if len(got) > 40 {
			got = got[:40]
		}
		return failf(KindUnauthorized, "acmeIdentifier extension in certificate presented by %s does not match: expected %s, got %s",
			addr, hex.EncodeToString(want), hex.EncodeToString(got))
	}
	return nil
}

// checkSingleSAN returns "" if the certificate's subjectAltName holds
// exactly one entry and it is the identifier, else a description of what
// was found. Entries are counted in the raw extension so that name forms Go
// does not parse (otherName, directoryName ...) are counted too.
func checkSingleSAN(leaf *x509.Certificate, r Request) string {
	var names []asn1.RawValue
	for _, e := range leaf.Extensions {
		if !e.Id.Equal(oidSubjectAltName) {
			continue
		}
		if rest, err := asn1.Unmarshal(e.Value, &names); err != nil || len(rest) > 0 {
			return "has an unparseable subjectAltName extension"
		}
	}
	seen := describeSANs(leaf)
	want := "dNSName " + r.Value
	match := len(leaf.DNSNames) == 1 && strings.EqualFold(leaf.DNSNames[0], r.Value)
	if r.IdentType == IdentIP {
		want = "iPAddress " + r.Value
		ip, _ := netip.ParseAddr(r.Value)
		match = false
		if len(leaf.IPAddresses) == 1 {
			got, ok := netip.AddrFromSlice(leaf.IPAddresses[0])
			match = ok && got.Unmap() == ip.Unmap()
		}
	}
	if len(names) == 1 && match {
		return ""
	}
	return fmt.Sprintf("has %d subjectAltName entries %s; want exactly one, %s", len(names), seen, want)
}

// describeSANs lists the SANs Go parsed, for failure details.
func describeSANs(c *x509.Certificate) string {
	var s []string
	for _, n := range c.DNSNames {
		s = append(s, "dNSName "+n)
	}
	for _, ip := range c.IPAddresses {
		s = append(s, "iPAddress "+ip.String())
	}
	for _, e := range c.EmailAddresses {
		s = append(s, "rfc822Name "+e)
	}
	for _, u := range c.URIs {
		s = append(s, "URI "+u.String())
	}
	return quoteList(s, 5)
}
