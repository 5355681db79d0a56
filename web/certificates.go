package web

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/acme/revocation"
	"github.com/certmint/certmint/storage"
)

// certState is the badge of a certificate at now.
func certState(c *acme.Certificate, now time.Time) string {
	switch {
	case c.Revoked:
		return "revoked"
	case !c.NotAfter.After(now):
		return "expired"
	case c.NotAfter.Before(now.Add(30 * 24 * time.Hour)):
		return "expiring"
	}
	return "valid"
}

type certRow struct {
	acme.Certificate
	State string
	Names []string
}

type certListData struct {
	Q, State, Within, Account string
	Rows                      []certRow
	Next                      string
	First                     bool
	DirectoryURL              string
	Total                     int64 // matching the filter, all pages
}

func (s *server) certificates(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	now := s.now().UTC()
	d := certListData{Q: strings.TrimSpace(q.Get("q")), State: q.Get("state"), Within: q.Get("within"),
		Account: q.Get("account"), First: q.Get("after") == "", DirectoryURL: s.cfg.ACMEDirectoryURL}
	f := storage.CertFilter{Query: d.Q, AccountID: d.Account, State: d.State, Now: now, Within: 30 * 24 * time.Hour}
	switch d.State {
	case "", "valid", "expiring", "expired", "revoked":
	default:
		return errorf(http.StatusBadRequest, "Unknown filter state=%q; use valid, expiring, expired or revoked.", d.State)
	}
	if d.Within != "" {
		days, err := strconv.Atoi(strings.TrimSuffix(d.Within, "d"))
		if err != nil || days < 1 || days > 3650 {
			return errorf(http.StatusBadRequest, "within=%q must be a number of days, e.g. 7d.", d.Within)
		}
		f.Within = time.Duration(days) * 24 * time.Hour
	}
	list, err := s.store.ListCertificates(r.Context(), f, storage.Page{After: q.Get("after"), Limit: pageSize + 1})
	if err != nil {
		return err
	}
	list, d.Next = onePage(list, func(x *acme.Certificate) string { return x.ID })
	if d.Total, err = s.store.CountCertificates(r.Context(), f); err != nil {
		return err
	}
	for i := range list {
		d.Rows = append(d.Rows, certRow{Certificate: list[i], State: certState(&list[i], now), Names: list[i].Names})
	}
	s.render(w, r, http.StatusOK, "certificates", "Certificates", "certificates", d)
	return nil
}

type certDetail struct {
	Cert        *acme.Certificate
	State       string
	Names       []string
	Subject     string
	Issuer      string
	KeyAlg      string
	SigAlg      string
	KeyUsage    []string
	ExtKeyUsage []string
	SHA256      string
	Lifetime    string
	Reasons     any
}

func (s *server) loadCert(r *http.Request) (*certDetail, error) {
	c, err := s.store.GetCertificate(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	d := &certDetail{Cert: c, State: certState(c, s.now()), Names: c.Names, Reasons: revocation.Reasons}
	sum := sha256.Sum256(c.DER)
	d.SHA256 = colonHex(hex.EncodeToString(sum[:]))
	if x, err := x509.ParseCertificate(c.DER); err == nil {
		d.Subject, d.Issuer = x.Subject.String(), x.Issuer.String()
		d.KeyAlg, d.SigAlg = keyDescription(x), x.SignatureAlgorithm.String()
		d.KeyUsage = keyUsages(x.KeyUsage)
		for _, u := range x.ExtKeyUsage {
			d.ExtKeyUsage = append(d.ExtKeyUsage, extKeyUsageName(u))
		}
		d.Lifetime = relTime(x.NotBefore, x.NotAfter)
		d.Lifetime = strings.TrimPrefix(d.Lifetime, "in ")
	}
	return d, nil
}

func (s *server) certificate(w http.ResponseWriter, r *http.Request) error {
	d, err := s.loadCert(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "certificate", "Certificate "+firstName(d.Names), "certificates", d)
	return nil
}

func (s *server) certificatePEM(w http.ResponseWriter, r *http.Request) error {
	c, err := s.store.GetCertificate(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	name := strings.NewReplacer("*", "wildcard", "/", "_", `"`, "").Replace(firstName(c.Names))
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.pem"`, name, c.Serial[:min(8, len(c.Serial))]))
	chain := []byte(c.ChainPEM)
	if len(chain) == 0 { // stored as DER only; the chain comes from the CA
		chain = s.cfg.CA.ChainPEM(c.DER)
	}
	_, err = w.Write(chain)
	return err
}

func (s *server) revokeForm(w http.ResponseWriter, r *http.Request) error {
	d, err := s.loadCert(r)
	if err != nil {
		return err
	}
	if d.Cert.Revoked {
		http.Redirect(w, r, "/certificates/"+d.Cert.ID, http.StatusSeeOther)
		return nil
	}
	s.render(w, r, http.StatusOK, "revoke", "Revoke certificate", "certificates", d)
	return nil
}

// revoke goes through the same revocation.Revoker as ACME revocation, so
// whichever comes second sees the certificate revoked.
func (s *server) revoke(w http.ResponseWriter, r *http.Request) error {
	c, err := s.store.GetCertificate(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	reason, err := strconv.Atoi(r.PostForm.Get("reason"))
	if err != nil || !revocation.Accepted(reason) {
		return errorf(http.StatusBadRequest, "Choose a revocation reason from the list.")
	}
	err = s.revoker.Revoke(r.Context(), revocation.Certificate{ID: c.ID, Serial: c.Serial, Names: c.Names},
		revocation.Request{Reason: reason, Actor: sessionFrom(r.Context()).Username, RemoteAddr: remoteIP(r), Via: "the console"})
	if errors.Is(err, revocation.ErrAlreadyRevoked) {
		return errorf(http.StatusConflict, "This certificate was revoked already.")
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/certificates/"+c.ID, http.StatusSeeOther)
	return nil
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

func keyDescription(x *x509.Certificate) string {
	switch k := x.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d-bit", k.Size()*8)
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return x.PublicKeyAlgorithm.String()
}

func keyUsages(ku x509.KeyUsage) []string {
	names := []string{"digitalSignature", "contentCommitment", "keyEncipherment", "dataEncipherment",
		"keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly"}
	var out []string
	for i, n := range names {
		if ku&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

func extKeyUsageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "serverAuth"
	case x509.ExtKeyUsageClientAuth:
		return "clientAuth"
	case x509.ExtKeyUsageCodeSigning:
		return "codeSigning"
	case x509.ExtKeyUsageEmailProtection:
		return "emailProtection"
	case x509.ExtKeyUsageOCSPSigning:
		return "OCSPSigning"
	}
	return fmt.Sprintf("usage %d", u)
}
