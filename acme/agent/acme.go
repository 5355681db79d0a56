package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/challenge/dns01"
	"github.com/go-acme/lego/v4/challenge/http01"
	"github.com/go-acme/lego/v4/challenge/tlsalpn01"
	"github.com/go-acme/lego/v4/lego"
	"github.com/go-acme/lego/v4/registration"
)

// legoClient returns the cached lego client or makes one, which reads the
// directory (RFC 8555 §7.1.1). A failed request drops the cache, so a
// restarted server is read afresh.
func (a *Agent) legoClient() (*lego.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	if a.acct == nil {
		u, err := loadAccount(a.cfg.StateDir, a.cfg.DirectoryURL, a.cfg.Email)
		if err != nil {
			return nil, err
		}
		a.acct = u
	}
	lc := lego.NewConfig(a.acct)
	lc.CADirURL = a.cfg.DirectoryURL
	lc.UserAgent = "certmint-agent"
	lc.HTTPClient = a.httpClient()
	lc.Certificate.Timeout = a.cfg.Timeout
	client, err := lego.NewClient(lc)
	if err != nil {
		return nil, fmt.Errorf("read ACME directory %s: %w", a.cfg.DirectoryURL, unwrapURLError(err))
	}
	if err := a.setProvider(client); err != nil {
		return nil, err
	}
	a.client = client
	return client, nil
}

// httpClient talks to the ACME server, trusting only the CA's root.
func (a *Agent) httpClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: a.Roots(), MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	}}
}

func (a *Agent) setProvider(client *lego.Client) error {
	switch {
	case a.cfg.DNSPersist:
		return nil // no solver: obtainPersist answers the challenge
	case a.cfg.HTTP01Listen != "":
		host, port, _ := net.SplitHostPort(a.cfg.HTTP01Listen)
		return client.Challenge.SetHTTP01Provider(http01.NewProviderServer(host, port))
	case a.cfg.TLSALPN01Listen != "":
		host, port, _ := net.SplitHostPort(a.cfg.TLSALPN01Listen)
		return client.Challenge.SetTLSALPN01Provider(tlsalpn01.NewProviderServer(host, port))
	default:
		opts := []dns01.ChallengeOption{dns01.WrapPreCheck(func(_, _, _ string, _ dns01.PreCheckFunc) (bool, error) {
			return true, nil // the hook's contract: present returns once the record is live
		})}
		if len(a.cfg.DNS01Resolvers) > 0 {
			opts = []dns01.ChallengeOption{dns01.AddRecursiveNameservers(dns01.ParseNameservers(a.cfg.DNS01Resolvers)),
				dns01.DisableAuthoritativeNssPropagationRequirement()}
		}
		return client.Challenge.SetDNS01Provider(&DNSHook{Command: a.cfg.DNS01Hook}, opts...)
	}
}

// register makes the account once (RFC 8555 §7.3), with External Account
// Binding when configured (§7.3.4), and stores it.
func (a *Agent) register(client *lego.Client) error {
	if a.acct.reg != nil {
		return nil
	}
	var reg *registration.Resource
	var err error
	if a.cfg.EABKeyID != "" {
		reg, err = client.Registration.RegisterWithExternalAccountBinding(registration.RegisterEABOptions{
			TermsOfServiceAgreed: true, Kid: a.cfg.EABKeyID, HmacEncoded: a.cfg.EABHMAC})
	} else {
		reg, err = client.Registration.Register(registration.RegisterOptions{TermsOfServiceAgreed: true})
	}
	if err != nil {
		return fmt.Errorf("register ACME account: %w", err)
	}
	a.acct.reg = reg
	a.log.Info("registered ACME account", "account", reg.URI)
	return saveAccount(a.cfg.StateDir, a.cfg.DirectoryURL, reg)
}

// obtain orders a certificate with a fresh key, stores it and makes it
// current. When renewing it names the certificate it replaces (RFC 9773
// §5); lego drops that field when the server offers no ARI or answers
// alreadyReplaced.
func (a *Agent) obtain(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	names := strings.Join(a.cfg.Names, ",")
	client, err := a.legoClient()
	if err != nil {
		return err
	}
	if err := a.register(client); err != nil {
		a.client = nil
		return err
	}
	key, err := newKey(a.cfg.KeyType)
	if err != nil {
		return err
	}
	req := certificate.ObtainRequest{Domains: a.cfg.Names, PrivateKey: key, Bundle: true, Profile: a.cfg.Profile}
	if cur := a.Current(); cur != nil {
		req.ReplacesCertID, _ = certificate.MakeARICertID(cur.Leaf)
	}
	obtainFn := client.Certificate.Obtain
	if a.cfg.DNSPersist {
		obtainFn = a.obtainPersist
	}
	res, err := obtainFn(req)
	var pd *legoacme.ProblemDetails
	if err != nil && errors.As(err, &pd) && strings.HasSuffix(pd.Type, ":accountDoesNotExist") {
		// The server forgot us (a fresh database): register again, once.
		a.acct.reg = nil
		if err = a.register(client); err == nil {
			res, err = obtainFn(req)
		}
	}
	if err != nil && req.ReplacesCertID != "" && errors.As(err, &pd) {
		// A server that does not know the replaced certificate must not
		// block the renewal.
		req.ReplacesCertID = ""
		res, err = obtainFn(req)
	}
	if err != nil {
		a.client = nil
		return fmt.Errorf("obtain certificate for %s: %w", names, err)
	}
	chain, err := parseCerts(res.Certificate)
	if err != nil {
		return fmt.Errorf("obtain certificate for %s: %w", names, err)
	}
	cert := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	if err := checkCert(cert, a.cfg.Names, a.Root()); err != nil {
		return fmt.Errorf("obtain certificate for %s: %w", names, err)
	}
	if err := saveCert(a.cfg.StateDir, key, chain); err != nil {
		return err
	}
	action := ActionObtained
	if a.Current() != nil {
		action = ActionRenewed
	}
	a.setCurrent(cert)
	a.failures = 0
	a.log.Debug("new certificate", "names", names, "serial", chain[0].SerialNumber.Text(16),
		"not_after", chain[0].NotAfter)
	if a.cfg.OnRenew != nil {
		a.cfg.OnRenew(cert)
	}
	if a.cfg.OnEvent != nil {
		next, _ := a.plan(ctx) // asks for renewal information now; the loop reuses the answer
		a.emit(action, next)
	}
	return nil
}
