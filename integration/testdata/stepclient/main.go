// Command stepclient issues one certificate over http-01 with smallstep's
// ACME client (github.com/smallstep/certificates/ca.ACMEClient), the way
// `step ca certificate` does against a private ACME CA: the newOrder
// payload is an acme/api.NewOrderRequest marshalled as it is, so an order
// with no dates given carries Go's zero time for notBefore and notAfter
// (a time.Time with omitempty is never omitted).
//
// Usage: stepclient DIRECTORY_URL ROOTS_PEM HTTP01_ADDR NAME
//
// It answers http-01 on HTTP01_ADDR and prints the certificate chain
// (PEM) on stdout; any failure is one line on stderr and exit status 1.
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/smallstep/certificates/acme"
	acmeAPI "github.com/smallstep/certificates/acme/api"
	"github.com/smallstep/certificates/ca"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: stepclient DIRECTORY_URL ROOTS_PEM HTTP01_ADDR NAME")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3], os.Args[4]); err != nil {
		fmt.Fprintln(os.Stderr, "stepclient:", err)
		os.Exit(1)
	}
}

func run(dir, roots, httpAddr, name string) error {
	ac, err := ca.NewACMEClient(dir, nil, ca.WithRootFile(roots))
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	// As `step ca certificate --acme` builds it when neither --not-before
	// nor --not-after is given: both fields stay time.Time{}.
	payload, err := json.Marshal(acmeAPI.NewOrderRequest{
		Identifiers: []acme.Identifier{{Type: "dns", Value: name}},
	})
	if err != nil {
		return err
	}
	order, err := ac.NewOrder(payload)
	if err != nil {
		return fmt.Errorf("new order: %w", err)
	}
	thumb, err := ac.Key.Thumbprint(crypto.SHA256)
	if err != nil {
		return err
	}
	stop, err := serveHTTP01(httpAddr, base64.RawURLEncoding.EncodeToString(thumb))
	if err != nil {
		return err
	}
	defer stop()
	for _, url := range order.AuthorizationURLs {
		if err := authorize(ac, url); err != nil {
			return err
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}}, key)
	if err != nil {
		return err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return err
	}
	if err := ac.FinalizeOrder(order.FinalizeURL, csr); err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	// The order URL is the newOrder answer's Location (kept in ID).
	for deadline := time.Now().Add(30 * time.Second); order.Status != acme.StatusValid; time.Sleep(200 * time.Millisecond) {
		if order, err = ac.GetOrder(order.ID); err != nil {
			return fmt.Errorf("get order: %w", err)
		}
		if order.Status == acme.StatusInvalid || time.Now().After(deadline) {
			return fmt.Errorf("order is %s", order.Status)
		}
	}
	leaf, chain, err := ac.GetCertificate(order.CertificateURL)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	for _, c := range append([]*x509.Certificate{leaf}, chain...) {
		if err := pem.Encode(os.Stdout, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}); err != nil {
			return err
		}
	}
	return nil
}

// authorize answers the authorization's http-01 challenge and waits until
// it is valid.
func authorize(ac *ca.ACMEClient, url string) error {
	az, err := ac.GetAuthz(url)
	if err != nil {
		return fmt.Errorf("get authorization: %w", err)
	}
	var ch *acme.Challenge
	for _, c := range az.Challenges {
		if c.Type == acme.HTTP01 {
			ch = c
		}
	}
	if ch == nil {
		return fmt.Errorf("authorization for %s offers no http-01 challenge", az.Identifier.Value)
	}
	if err := ac.ValidateChallenge(ch.URL); err != nil {
		return fmt.Errorf("answer challenge: %w", err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if ch, err = ac.GetChallenge(ch.URL); err != nil {
			return fmt.Errorf("get challenge: %w", err)
		}
		switch {
		case ch.Status == acme.StatusValid:
			return nil
		case ch.Status == acme.StatusInvalid:
			return fmt.Errorf("challenge invalid: %v", ch.Error)
		case time.Now().After(deadline):
			return errors.New("challenge still " + string(ch.Status) + " after 30s")
		}
	}
}

// serveHTTP01 answers every http-01 token with its key authorization
// (RFC 8555 §8.3) on addr.
func serveHTTP01(addr, thumbprint string) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, "/.well-known/acme-challenge/")
		if !ok || token == "" || strings.Contains(token, "/") {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, token+"."+thumbprint)
	})}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}
