package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestParsePeerAllowList(t *testing.T) {
	l, err := ParsePeerAllowList([]string{"spiffe://corp.example/payments/sender", "spiffe://corp.example/ops/*", " spiffe://partner.example/* "})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{
		"spiffe://corp.example/payments/sender":      true,
		"spiffe://corp.example/payments/sender/x":    false, // exact means exact
		"spiffe://corp.example/payments/receiver":    false,
		"spiffe://corp.example/ops/backup":           true,
		"spiffe://corp.example/ops/backup/nightly":   true,
		"spiffe://corp.example/ops":                  false, // below, not the prefix itself
		"spiffe://corp.example/opsx/backup":          false, // segment boundary
		"spiffe://other.example/payments/sender":     false,
		"spiffe://partner.example/anything":          true,
		"spiffe://sub.partner.example/anything":      false,
		"spiffe://corp.example.evil/payments/sender": false,
	} {
		if got := l.Allows(spiffeid.RequireFromString(id)); got != want {
			t.Errorf("Allows(%s) = %v, want %v", id, got, want)
		}
	}
	for _, bad := range [][]string{
		nil, {""}, {"payments/sender"}, {"https://corp.example/payments"}, {"spiffe://corp.example"},
		{"spiffe://Corp.example/x"}, {"spiffe://corp.example/a/../b"}, {"spiffe://corp.example/a/"},
	} {
		if _, err := ParsePeerAllowList(bad); err == nil {
			t.Errorf("ParsePeerAllowList(%q) accepted", bad)
		}
	}
}

// testPKI is a root and leaves signed by it, for handshakes in tests.
type testPKI struct {
	root *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &testPKI{root: root, key: key, pool: pool}
}

// leaf issues a mutual-TLS leaf for name with the URI SANs uris.
func (p *testPKI) leaf(t *testing.T, name string, uris ...string) *tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	for _, u := range uris {
		pu, _ := url.Parse(u)
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.root, key.Public(), p.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// handshake runs one mutual-TLS handshake over loopback and returns the
// server's and the client's errors.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		tc := tls.Server(c, server)
		err = tc.Handshake()
		if err == nil {
			_, err = tc.Read(make([]byte, 1)) // TLS 1.3: the client's certificate is judged after its Finished
		}
		done <- err
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), client)
	if err == nil {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, clientErr = c.Write([]byte("x"))
		buf := make([]byte, 1)
		if _, rerr := c.Read(buf); clientErr == nil && rerr != nil && !strings.Contains(rerr.Error(), "EOF") {
			clientErr = rerr
		}
		c.Close()
	} else {
		clientErr = err
	}
	return <-done, clientErr
}

// TestPeerAllowListHandshake: the receiver accepts the allowed caller and
// refuses, telling refused who it was, a caller of the same CA with
// another identity and one with none; the caller can check the receiver
// the same way.
func TestPeerAllowListHandshake(t *testing.T) {
	pki := newTestPKI(t)
	recvCert := pki.leaf(t, "receiver.test", "spiffe://corp.example/payments/receiver")
	allow, err := ParsePeerAllowList([]string{"spiffe://corp.example/payments/sender"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		caller *tls.Certificate
		ok     bool
		want   string
	}{
		{"ok/allowed-sender", pki.leaf(t, "sender.test", "spiffe://corp.example/payments/sender"), true, ""},
		{"fail/other-identity", pki.leaf(t, "batch.test", "spiffe://corp.example/reports/batch"), false, "spiffe://corp.example/reports/batch"},
		{"fail/no-identity", pki.leaf(t, "plain.test"), false, "no workload identity"},
		{"fail/two-uris", pki.leaf(t, "two.test", "spiffe://corp.example/payments/sender", "spiffe://corp.example/x"), false, "more than one URI SAN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var refusals []*PeerRefusedError
			server := allow.Apply(ServerTLSConfig(func() *tls.Certificate { return recvCert }, pki.pool),
				func(e *PeerRefusedError) { refusals = append(refusals, e) })
			client := ClientTLSConfig(func() *tls.Certificate { return tc.caller }, pki.pool)
			client.ServerName = "receiver.test"
			serr, cerr := handshake(t, server, client)
			if tc.ok {
				if serr != nil || cerr != nil || len(refusals) != 0 {
					t.Fatalf("allowed caller: server %v, client %v, refusals %v", serr, cerr, refusals)
				}
				return
			}
			var pe *PeerRefusedError
			if !errors.As(serr, &pe) || len(refusals) != 1 || !strings.Contains(refusals[0].Error(), tc.want) ||
				!strings.Contains(refusals[0].Error(), tc.caller.Leaf.DNSNames[0]) {
				t.Fatalf("server error %v, refusals %v; want one naming %q and the caller", serr, refusals, tc.want)
			}
			if cerr == nil {
				t.Fatal("the refused caller's connection worked")
			}
		})
	}
	t.Run("fail/caller-checks-receiver", func(t *testing.T) {
		onlyOther, _ := ParsePeerAllowList([]string{"spiffe://corp.example/payments/other"})
		caller := pki.leaf(t, "sender.test", "spiffe://corp.example/payments/sender")
		client := onlyOther.Apply(ClientTLSConfig(func() *tls.Certificate { return caller }, pki.pool), nil)
		client.ServerName = "receiver.test"
		_, cerr := handshake(t, ServerTLSConfig(func() *tls.Certificate { return recvCert }, pki.pool), client)
		var pe *PeerRefusedError
		if !errors.As(cerr, &pe) || pe.ID.String() != "spiffe://corp.example/payments/receiver" {
			t.Fatalf("client error %v, want a refusal of the receiver's identity", cerr)
		}
	})
}
