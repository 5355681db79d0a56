package agent

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/acme/api"
	"github.com/go-acme/lego/v4/certcrypto"
	"github.com/go-acme/lego/v4/certificate"
)

// dns-persist-01 (draft-ietf-acme-dns-persist-01): the operator publishes
// one TXT record per name, once, at "_validation-persist.<name>", naming the
// CA and this agent's account (`certmint admin dns-persist-record` prints
// it). The agent then needs no DNS credentials and no listener: answering
// the challenge is an empty POST, and the server looks the record up.
//
// lego v4 has no dns-persist-01 solver and its solver table is closed to
// new types, so with Config.DNSPersist the agent runs the order itself on
// lego's ACME API client (RFC 8555 §7.4 to §7.4.2). Its errors are lego's,
// so obtain's retries (an unknown account, an unknown replaced
// certificate) work the same.

// challengeDNSPersist01 is the challenge type (draft §3.1).
const challengeDNSPersist01 = "dns-persist-01"

// obtainPersist is certificate.Certifier.Obtain for dns-persist-01.
func (a *Agent) obtainPersist(req certificate.ObtainRequest) (*certificate.Resource, error) {
	core, err := api.New(a.httpClient(), "certmint-agent", a.cfg.DirectoryURL, a.acct.reg.URI, a.acct.key)
	if err != nil {
		return nil, fmt.Errorf("read ACME directory %s: %w", a.cfg.DirectoryURL, unwrapURLError(err))
	}
	deadline := a.cfg.Now().Add(a.cfg.Timeout)
	order, err := core.Orders.NewWithOptions(req.Domains, &api.OrderOptions{Profile: req.Profile, ReplacesCertID: req.ReplacesCertID})
	if err != nil {
		return nil, err
	}
	for _, u := range order.Authorizations {
		if err := a.persistAuthorize(core, u, deadline); err != nil {
			return nil, err
		}
	}
	csr, err := certcrypto.CreateCSR(req.PrivateKey, certcrypto.CSROptions{Domain: req.Domains[0], SAN: req.Domains})
	if err != nil {
		return nil, fmt.Errorf("make the CSR: %w", err)
	}
	o, err := core.Orders.UpdateForCSR(order.Finalize, csr)
	for err == nil && o.Status != legoacme.StatusValid {
		switch {
		case o.Status == legoacme.StatusInvalid:
			return nil, fmt.Errorf("the order became invalid: %w", o.Err())
		case !a.cfg.Now().Before(deadline):
			return nil, fmt.Errorf("the order is still %s after %s", o.Status, a.cfg.Timeout)
		}
		time.Sleep(time.Second)
		o, err = core.Orders.Get(order.Location)
	}
	if err != nil {
		return nil, err
	}
	cert, issuer, err := core.Certificates.Get(o.Certificate, true)
	if err != nil {
		return nil, err
	}
	return &certificate.Resource{Domain: req.Domains[0], CertURL: o.Certificate, Certificate: cert, IssuerCertificate: issuer}, nil
}

// persistAuthorize answers the dns-persist-01 challenge of one
// authorization (an empty POST, RFC 8555 §7.5.1) and waits for the
// authorization to be valid. An authorization that is valid already (the
// server reused it) needs nothing.
func (a *Agent) persistAuthorize(core *api.Core, authzURL string, deadline time.Time) error {
	authz, err := core.Authorizations.Get(authzURL)
	if err != nil {
		return err
	}
	if authz.Status == legoacme.StatusValid {
		return nil
	}
	name := authz.Identifier.Value
	if authz.Wildcard {
		name = "*." + name
	}
	var url string
	for _, ch := range authz.Challenges {
		if ch.Type == challengeDNSPersist01 {
			url = ch.URL
		}
	}
	if url == "" {
		return fmt.Errorf("the server offers no %s for %s (certmint offers it when started with --dns-persist-issuer)", challengeDNSPersist01, name)
	}
	chlng, err := core.Challenges.New(url)
	if err != nil {
		return err
	}
	status, wait := chlng.Status, retryAfter(chlng.RetryAfter)
	for {
		switch status {
		case legoacme.StatusValid:
			a.log.Info("dns-persist-01 record accepted", "name", name)
			return nil
		case legoacme.StatusInvalid:
			// The problem names what the server found at _validation-persist;
			// the operator also needs the account the record must name.
			cause := errors.New("the authorization is invalid")
			for _, ch := range authz.Challenges {
				if ch.Type == challengeDNSPersist01 && ch.Error != nil {
					cause = ch.Err()
				}
			}
			if chlng.Error != nil {
				cause = chlng.Err()
			}
			return fmt.Errorf("%s for %s (the record must name accounturi=%s): %w", challengeDNSPersist01, name, a.acct.reg.URI, cause)
		case legoacme.StatusPending, legoacme.StatusProcessing:
		default:
			return fmt.Errorf("%s for %s: the authorization is %s", challengeDNSPersist01, name, status)
		}
		if !a.cfg.Now().Add(wait).Before(deadline) {
			return fmt.Errorf("%s for %s: still %s after %s", challengeDNSPersist01, name, status, a.cfg.Timeout)
		}
		time.Sleep(wait)
		if authz, err = core.Authorizations.Get(authzURL); err != nil {
			return err
		}
		status, wait = authz.Status, time.Second
		chlng.Error = nil
	}
}

// retryAfter reads a Retry-After in seconds, between 1 and 10.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return time.Second
	}
	return time.Duration(min(n, 10)) * time.Second
}
