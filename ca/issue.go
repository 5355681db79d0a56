package ca

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
)

// Profile is a named set of leaf certificate parameters (the ACME profiles
// draft exposes these names to clients).
type Profile struct {
	Name        string
	Description string
	Validity    time.Duration
	ExtKeyUsage []x509.ExtKeyUsage
}

// DefaultProfile is 90 days with serverAuth and clientAuth: services of an
// internal fleet use one certificate both to serve and to authenticate as a
// client in mutual TLS.
func DefaultProfile() Profile {
	return Profile{
		Name:        "default",
		Description: "90-day certificate for TLS servers and clients (mutual TLS)",
		Validity:    90 * 24 * time.Hour,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
}

// Template describes a leaf certificate to issue.
type Template struct {
	PublicKey crypto.PublicKey
	// CommonName is optional; when set it must equal one of DNSNames or
	// IPAddresses. When empty the subject is empty and the SAN extension
	// is marked critical (RFC 5280 §4.2.1.6).
	CommonName  string
	DNSNames    []string
	IPAddresses []net.IP
	// URI, when set, is the certificate's one URI SAN: the workload's
	// SPIFFE ID, which an X509-SVID carries exactly once (X509-SVID §2)
	// beside any DNS names and IP addresses.
	URI *url.URL
	// NotBefore defaults to now minus one minute of backdating.
	NotBefore time.Time
	// NotAfter defaults to NotBefore + Profile.Validity; it is clamped to
	// the NotAfter of the intermediate and of the root.
	NotAfter time.Time
	// Profile defaults to DefaultProfile when it is the zero value.
	Profile Profile
	// CRLURL, when set, becomes the CRL distribution point.
	CRLURL string
	// Serial is required; use NewSerial. The caller stores it so that its
	// uniqueness is enforced by the database.
	Serial *big.Int
}

// Issue signs a leaf certificate with the intermediate and returns its DER.
// The leaf carries BasicConstraints CA:false and KeyUsage, both critical;
// the profile's ExtKeyUsage; SKI (RFC 5280 §4.2.1.2 method 1) and AKI (the
// intermediate's SKI); the SANs; and the optional CRL distribution point.
func (c *CA) Issue(t Template) ([]byte, error) {
	ch := c.snap()
	tmpl, err := c.leafTemplate(ch, t)
	if err != nil {
		return nil, fmt.Errorf("ca: issue: %w", err)
	}
	if t.CRLURL != "" {
		tmpl.CRLDistributionPoints = []string{IssuerCRLURL(t.CRLURL, ch.active())}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ch.inter, t.PublicKey, ch.signer)
	if err != nil {
		return nil, fmt.Errorf("ca: issue serial %x: %w", t.Serial, err)
	}
	return der, nil
}

// leafTemplate validates t and turns it into an x509 template.
func (c *CA) leafTemplate(ch *chain, t Template) (*x509.Certificate, error) {
	if t.PublicKey == nil {
		return nil, errors.New("no public key")
	}
	if t.Serial == nil || t.Serial.Sign() <= 0 {
		return nil, errors.New("serial must be positive")
	}
	// RFC 5280 §4.1.2.2: at most 20 octets.
	if len(t.Serial.Bytes()) > 20 || (len(t.Serial.Bytes()) == 20 && t.Serial.Bit(159) == 1) {
		return nil, errors.New("serial longer than 20 octets")
	}
	if len(t.DNSNames) == 0 && len(t.IPAddresses) == 0 {
		return nil, errors.New("no DNS names or IP addresses")
	}
	for _, n := range t.DNSNames {
		if n == "" || strings.ContainsAny(n, " \t\r\n/") {
			return nil, fmt.Errorf("invalid DNS name %q", n)
		}
	}
	for _, ip := range t.IPAddresses {
		if ip.To16() == nil {
			return nil, fmt.Errorf("invalid IP address %v", ip)
		}
	}
	if t.CommonName != "" && !nameListed(t.CommonName, t.DNSNames, t.IPAddresses) {
		return nil, fmt.Errorf("common name %q is not among the DNS names or IP addresses", t.CommonName)
	}
	if t.URI != nil && (t.URI.Scheme == "" || t.URI.Host == "" || t.URI.RawQuery != "" || t.URI.Fragment != "") {
		return nil, fmt.Errorf("invalid URI SAN %q: it must be absolute, without query or fragment", t.URI)
	}
	if err := checkNames(ch, t.DNSNames, t.IPAddresses, t.URI); err != nil {
		return nil, err
	}

	p := t.Profile
	if p.Name == "" && p.Validity == 0 && len(p.ExtKeyUsage) == 0 {
		p = DefaultProfile()
	}
	if len(p.ExtKeyUsage) == 0 {
		return nil, fmt.Errorf("profile %q has no extended key usage", p.Name)
	}

	notBefore := t.NotBefore
	if notBefore.IsZero() {
		notBefore = c.now().Add(-backdate)
	}
	if notBefore.Before(ch.inter.NotBefore) {
		notBefore = ch.inter.NotBefore
	}
	notAfter := t.NotAfter
	if notAfter.IsZero() {
		if p.Validity <= 0 {
			return nil, fmt.Errorf("profile %q has no validity", p.Name)
		}
		notAfter = notBefore.Add(p.Validity)
	}
	// A leaf must not outlive its issuer, or it fails path validation in
	// its last days (RFC 5280 §6.1.3 checks every certificate's validity).
	// An imported intermediate may outlive its root, so both bound it.
	for _, ca := range []*x509.Certificate{ch.inter, ch.root} {
		if notAfter.After(ca.NotAfter) {
			notAfter = ca.NotAfter
		}
	}
	if !notAfter.After(notBefore) {
		return nil, errors.New("NotAfter is not after NotBefore")
	}

	ski, err := subjectKeyID(t.PublicKey)
	if err != nil {
		return nil, err
	}
	// RFC 5280 §4.2.1.3; keyEncipherment only for RSA key transport
	// (RFC 8446 makes it unused in TLS 1.3, older clients still check it).
	// Never keyCertSign or cRLSign: with CA:false that makes every leaf a
	// valid X509-SVID leaf too (X509-SVID §4.3).
	ku := x509.KeyUsageDigitalSignature
	if _, ok := t.PublicKey.(*rsa.PublicKey); ok {
		ku |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          t.Serial,
		Subject:               pkix.Name{CommonName: t.CommonName},
		NotBefore:             notBefore.UTC(),
		NotAfter:              notAfter.UTC(),
		KeyUsage:              ku,
		ExtKeyUsage:           append([]x509.ExtKeyUsage(nil), p.ExtKeyUsage...),
		BasicConstraintsValid: true,
		IsCA:                  false,
		SubjectKeyId:          ski,
		AuthorityKeyId:        ch.inter.SubjectKeyId,
		DNSNames:              append([]string(nil), t.DNSNames...),
		IPAddresses:           append([]net.IP(nil), t.IPAddresses...),
	}
	if t.URI != nil {
		tmpl.URIs = []*url.URL{t.URI}
	}
	return tmpl, nil
}

// nameListed reports whether cn is one of the DNS names (case-insensitive)
// or the textual form of one of the IPs.
func nameListed(cn string, dns []string, ips []net.IP) bool {
	for _, d := range dns {
		if strings.EqualFold(cn, d) {
			return true
		}
	}
	if ip := net.ParseIP(cn); ip != nil {
		for _, x := range ips {
			if x.Equal(ip) {
				return true
			}
		}
	}
	return false
}

// ChainPEM returns the leaf in PEM followed by the intermediate that
// signed it, in PEM: the application/pem-certificate-chain body of an ACME
// download (RFC 8555 §7.4.2). The intermediate is found by the leaf's
// authority key identifier, so a certificate issued before a rotation is
// served with the chain it was issued with. The root is left out: clients
// already trust it.
func (c *CA) ChainPEM(leafDER []byte) []byte {
	ch := c.snap()
	inter := ch.interPEM
	if leaf, err := x509.ParseCertificate(leafDER); err == nil {
		if iss := ch.find(hex.EncodeToString(leaf.AuthorityKeyId)); iss != nil && iss.Role == RoleIntermediate && iss.pem != nil {
			inter = iss.pem
		}
	}
	var b bytes.Buffer
	b.Write(certPEM(leafDER))
	b.Write(inter)
	return b.Bytes()
}

// NewSerial returns a random serial number with 127 bits of entropy: 16
// random bytes with the top bit cleared, so its DER encoding is positive and
// at most 16 octets (RFC 5280 §4.1.2.2 allows 20). It is never zero.
func NewSerial() (*big.Int, error) {
	b := make([]byte, 16)
	for {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("ca: serial: %w", err)
		}
		b[0] &= 0x7f
		n := new(big.Int).SetBytes(b)
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// subjectKeyID computes the key identifier of RFC 5280 §4.2.1.2 method 1:
// the SHA-1 of the subjectPublicKey BIT STRING value. Go since 1.25 would
// use a truncated SHA-256 instead; method 1 is what other CAs and most
// tooling expect.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	var spki struct {
		Algorithm        pkix.AlgorithmIdentifier
		SubjectPublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	sum := sha1.Sum(spki.SubjectPublicKey.Bytes)
	return sum[:], nil
}
