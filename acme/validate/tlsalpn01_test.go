package validate

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// alpnCert describes the validation certificate an applicant's TLS server
// presents (RFC 8737 §3), with knobs for the ways it can be wrong.
type alpnCert struct {
	dnsNames    []string
	ips         []net.IP
	keyAuth     string
	noExt       bool
	nonCritical bool
}

func (c alpnCert) build(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "acme-tls-alpn-01"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     c.dnsNames,
		IPAddresses:  c.ips,
	}
	if !c.noExt {
		sum := sha256.Sum256([]byte(c.keyAuth))
		val, err := asn1.Marshal(sum[:])
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: OIDACMEIdentifier, Critical: !c.nonCritical, Value: val}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// alpnServer is a TLS server on a free loopback port presenting cert; it
// records the SNI it was sent.
type alpnServer struct {
	port string
	mu   sync.Mutex
	sni  string
}

func newALPNServer(t *testing.T, cert tls.Certificate, protos []string) *alpnServer {
	t.Helper()
	s := &alpnServer{}
	cfg := &tls.Config{
		NextProtos: protos,
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			s.mu.Lock()
			s.sni = h.ServerName
			s.mu.Unlock()
			return &cert, nil
		},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, s.port, _ = net.SplitHostPort(l.Addr().String())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			tc := tls.Server(c, cfg)
			_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
			_ = tc.Handshake()
			tc.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return s
}

func TestTLSALPN01(t *testing.T) {
	ka := keyAuth("tok")
	acme := []string{ACMETLS1Protocol}
	dnsSrv := newTestDNS(t, true, "svc.test. A 127.0.0.1")
	tests := []struct {
		name    string
		ident   string
		value   string
		cert    alpnCert
		protos  []string
		wantSNI string
		kind    Kind
		subs    []string
	}{
		{name: "ok/tls-alpn-01", ident: IdentDNS, value: "svc.test", protos: acme,
			cert: alpnCert{dnsNames: []string{"svc.test"}, keyAuth: ka}, wantSNI: "svc.test"},
		{name: "ok/tls-alpn-01-ip", ident: IdentIP, value: "127.0.0.1", protos: acme,
			cert: alpnCert{ips: []net.IP{net.ParseIP("127.0.0.1")}, keyAuth: ka}, wantSNI: "1.0.0.127.in-addr.arpa"},
		{name: "fail/tls-alpn-01-noncritical-ext", ident: IdentDNS, value: "svc.test", protos: acme,
			cert: alpnCert{dnsNames: []string{"svc.test"}, keyAuth: ka, nonCritical: true},
			kind: KindUnauthorized, subs: []string{"not critical"}},
		{name: "fail/tls-alpn-01-no-ext", ident: IdentDNS, value: "svc.test", protos: acme,
			cert: alpnCert{dnsNames: []string{"svc.test"}, noExt: true},
			kind: KindUnauthorized, subs: []string{"no acmeIdentifier extension"}},
		{name: "fail/tls-alpn-01-wrong-digest", ident: IdentDNS, value: "svc.test", protos: acme,
			cert: alpnCert{dnsNames: []string{"svc.test"}, keyAuth: "other.keyauth"},
			kind: KindUnauthorized, subs: []string{"does not match"}},
		{name: "fail/tls-alpn-01-wrong-san", ident: IdentDNS, value: "svc.test", protos: acme,
			cert: alpnCert{dnsNames: []string{"other.test"}, keyAuth: ka},
			kind: KindUnauthorized, subs: []string{`"dNSName other.test"`, "svc.test"}},
		{name: "fail/tls-alpn-01-extra-san", ident: IdentDNS, value: "svc.test", protos: acme,
			cert: alpnCert{dnsNames: []string{"svc.test", "extra.test"}, keyAuth: ka},
			kind: KindUnauthorized, subs: []string{"2 subjectAltName entries", "extra.test"}},
		{name: "fail/tls-alpn-01-ip-with-dns-san", ident: IdentIP, value: "127.0.0.1", protos: acme,
			cert: alpnCert{dnsNames: []string{"127.0.0.1"}, keyAuth: ka},
			kind: KindUnauthorized, subs: []string{"iPAddress 127.0.0.1"}},
		{name: "fail/tls-alpn-01-no-alpn", ident: IdentDNS, value: "svc.test", protos: nil,
			cert: alpnCert{dnsNames: []string{"svc.test"}, keyAuth: ka},
			kind: KindTLS, subs: []string{"did not negotiate", ACMETLS1Protocol, "127.0.0.1:"}},
		{name: "fail/tls-alpn-01-other-alpn", ident: IdentDNS, value: "svc.test", protos: []string{"h2"},
			cert: alpnCert{dnsNames: []string{"svc.test"}, keyAuth: ka},
			kind: KindTLS, subs: []string{"handshake", "127.0.0.1:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newALPNServer(t, tc.cert.build(t), tc.protos)
			port, _ := strconv.Atoi(srv.port)
			v := New(Config{TLSALPNPort: port, Resolver: dnsSrv.Addr})
			err := v.Validate(context.Background(), Request{
				Type: TypeTLSALPN01, IdentType: tc.ident, Value: tc.value, Token: "tok", KeyAuth: ka,
			})
			if tc.kind != "" {
				wantKind(t, err, tc.kind, tc.subs...)
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if srv.sni != tc.wantSNI {
				t.Errorf("SNI = %q, want %q", srv.sni, tc.wantSNI)
			}
		})
	}
}

func TestTLSALPN01Refused(t *testing.T) {
	port := freePort(t)
	p, _ := strconv.Atoi(port)
	v := New(Config{TLSALPNPort: p})
	err := v.Validate(context.Background(), Request{Type: TypeTLSALPN01, IdentType: IdentIP, Value: "127.0.0.1", Token: "tok", KeyAuth: keyAuth("tok")})
	wantKind(t, err, KindConnection, "127.0.0.1:"+port)
}
