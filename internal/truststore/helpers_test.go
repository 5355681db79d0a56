package truststore

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// newCert makes a certificate signed by parent (self-signed when parent
// is nil); ca says whether it is a CA.
func newCert(t *testing.T, cn string, ca bool, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: ca, BasicConstraintsValid: true,
	}
	if ca {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func newRoot(t *testing.T, cn string) *x509.Certificate {
	c, _ := newCert(t, cn, true, nil, nil)
	return c
}

// call is one recorded tool run.
type call struct {
	env   []string
	stdin []byte
	args  []string // the tool first
}

// recorder is a runner that records the calls and answers with out.
type recorder struct {
	calls []call
	out   func(args []string) ([]byte, error)
}

func (r *recorder) run(_ context.Context, env []string, stdin []byte, name string, args ...string) ([]byte, error) {
	r.calls = append(r.calls, call{env: env, stdin: stdin, args: append([]string{name}, args...)})
	if r.out != nil {
		return r.out(args)
	}
	return nil, nil
}

func (c call) String() string { return strings.Join(c.args, " ") }
