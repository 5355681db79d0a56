package integration

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/challenge/http01"
	"github.com/go-acme/lego/v4/lego"
	"github.com/go-acme/lego/v4/registration"
)

// legoUser is the account a lego client acts for.
type legoUser struct {
	key crypto.PrivateKey
	reg *registration.Resource
}

func (u *legoUser) GetEmail() string                        { return "ops@example.test" }
func (u *legoUser) GetRegistration() *registration.Resource { return u.reg }
func (u *legoUser) GetPrivateKey() crypto.PrivateKey        { return u.key }

// newAccountKey returns an account key: "rsa" (2048) or "ec" (P-256).
func newAccountKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	if kind == "rsa" {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newLegoClient returns a registered lego client for s, with http-01
// answered on the server's validation port.
func newLegoClient(t testing.TB, s *Server, keyKind string) (*lego.Client, *legoUser) {
	t.Helper()
	user := &legoUser{key: newAccountKey(t, keyKind)}
	cfg := lego.NewConfig(user)
	cfg.CADirURL = s.DirectoryURL()
	cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: s.TLSConfig()}}
	cfg.Certificate.Timeout = 30 * time.Second
	client, err := lego.NewClient(cfg)
	if err != nil {
		t.Fatalf("lego client: %v", err)
	}
	if err := client.Challenge.SetHTTP01Provider(http01.NewProviderServer("127.0.0.1", strconv.Itoa(s.HTTPPort))); err != nil {
		t.Fatal(err)
	}
	reg, err := client.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		t.Fatalf("lego register: %v", err)
	}
	user.reg = reg
	return client, user
}

// obtainWithLego gets a certificate for names over http-01 and returns the
// parsed leaf and the resource.
func obtainWithLego(t testing.TB, s *Server, names ...string) (*x509.Certificate, *certificate.Resource) {
	t.Helper()
	client, _ := newLegoClient(t, s, "ec")
	res, err := client.Certificate.Obtain(certificate.ObtainRequest{Domains: names, Bundle: true})
	if err != nil {
		t.Fatalf("lego obtain %v: %v\nserver output:\n%s", names, err, s.Output())
	}
	return parseLeaf(t, res.Certificate), res
}

// parseLeaf returns the first certificate of a PEM chain.
func parseLeaf(t testing.TB, chain []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(chain)
	if block == nil {
		t.Fatalf("no PEM certificate in %q", chain)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}
