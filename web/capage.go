package web

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/certmint/certmint/ca"
	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/internal/truststore"
	"github.com/certmint/certmint/storage"
)

// CAOps is what the CA page reads and does beyond the CA in memory: the
// issuers as the database records them, and the rotations, carried out
// with the server's passphrase so no key passes through a form. The
// command wires it; nil leaves /ca read-only from the CA in memory.
type CAOps interface {
	Issuers(ctx context.Context) ([]ca.IssuerRecord, error)
	RotateIntermediate(ctx context.Context) (*ca.RotateResult, error)
	RotateRoot(ctx context.Context, overlap time.Duration) (*ca.RotateResult, error)
	// Switch moves issuance to the pending intermediate id now (the end
	// of a root rotation's overlap, brought forward).
	Switch(ctx context.Context, id string) error
	// Import completes the pending intermediate with its signed
	// certificate; ca.ErrBadInput names what is wrong with it.
	Import(ctx context.Context, certs []*x509.Certificate) (*ca.IssuerRecord, error)
	BundleFetches(ctx context.Context) ([]storage.BundleFetch, error)
	// Warning is the offline-root warning, or "".
	Warning() string
	// CRLURL is the configured --crl-url, from which each issuer's is made.
	CRLURL() string
}

// agentFetch is one agent's last fetch of the bundle.
type agentFetch struct {
	storage.BundleFetch
	Current bool // it received the bundle served now
}

type caPageData struct {
	Issuers  []ca.IssuerStatus
	Bundle   []ca.IssuerStatus
	Agents   []agentFetch
	Warning  string
	Pending  *ca.IssuerStatus
	CanAct   bool
	Error    string
	Notice   string
	Overlap  string
	Imported string
	// TrustDomain and SPIFFEBundleURL: workload identities, when on.
	TrustDomain, SPIFFEBundleURL string
}

func (s *server) caRecords(ctx context.Context) ([]ca.IssuerRecord, error) {
	if s.cfg.CAOps == nil {
		return nil, nil
	}
	return s.cfg.CAOps.Issuers(ctx)
}

// caPage is /ca: every root and intermediate with its state, validity,
// constraints, key location and CRL URL; the bundle of roots and which
// agents fetched it; rotation, the pending CSR and its import.
func (s *server) caPage(w http.ResponseWriter, r *http.Request) error {
	return s.renderCA(w, r, http.StatusOK, caPageData{Notice: noticeText(r.URL.Query().Get("done"))})
}

func (s *server) renderCA(w http.ResponseWriter, r *http.Request, status int, d caPageData) error {
	ctx := r.Context()
	recs, err := s.caRecords(ctx)
	if err != nil {
		return err
	}
	crlURL := ""
	if s.cfg.CAOps != nil {
		crlURL = s.cfg.CAOps.CRLURL()
		d.Warning = s.cfg.CAOps.Warning()
		d.CanAct = true
	}
	d.Issuers = ca.Status(recs, s.now(), crlURL)
	if td := s.cfg.TrustDomain.Name(); td != "" {
		d.TrustDomain = td
		d.SPIFFEBundleURL = strings.TrimSuffix(s.cfg.ACMEDirectoryURL, "/acme/directory") + "/spiffe/bundle"
	}
	var current []string
	for i := range d.Issuers {
		st := &d.Issuers[i]
		if st.InBundle {
			d.Bundle = append(d.Bundle, *st)
			current = append(current, st.SHA256)
		}
		if st.State == ca.StatePending && st.Role == ca.RoleIntermediate {
			d.Pending = st
		}
	}
	if s.cfg.CAOps != nil {
		fetches, err := s.cfg.CAOps.BundleFetches(ctx)
		if err != nil {
			return err
		}
		for _, f := range fetches {
			d.Agents = append(d.Agents, agentFetch{BundleFetch: f, Current: slices.Equal(f.Roots, current)})
		}
	}
	if d.Overlap == "" {
		d.Overlap = "720h"
	}
	s.render(w, r, status, "ca", "Certificate authority", "ca", d)
	return nil
}

func noticeText(code string) string {
	switch code {
	case "intermediate":
		return "The new intermediate is active; every server signs with it within a minute. The previous one is retiring: it keeps signing the CRL for what it issued."
	case "csr":
		return "The new intermediate is pending: download its CSR below, have the offline root sign it, then upload the certificate."
	case "root":
		return "The new root is in the bundle. Issuance switches to it at the end of the overlap, or when you switch below."
	case "switch":
		return "Issuance switched to the new chain; the old root left the bundle."
	case "import":
		return "The signed intermediate is active; every server signs with it within a minute."
	}
	return ""
}

// caConfirm is the confirmation page of a rotation or a switch.
func (s *server) caConfirm(kind string) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.cfg.CAOps == nil {
			return errorf(http.StatusNotFound, "Rotation is not available on this server.")
		}
		d := struct {
			Kind, ID, Overlap string
		}{Kind: kind, ID: r.PathValue("id"), Overlap: "720h"}
		s.render(w, r, http.StatusOK, "ca-confirm", "Confirm", "ca", d)
		return nil
	}
}

// caRotateIntermediate (POST) rotates the intermediate.
func (s *server) caRotateIntermediate(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.CAOps == nil {
		return errorf(http.StatusNotFound, "Rotation is not available on this server.")
	}
	res, err := s.cfg.CAOps.RotateIntermediate(r.Context())
	if errors.Is(err, ca.ErrBadInput) {
		return s.renderCA(w, r, http.StatusConflict, caPageData{Error: err.Error()})
	}
	if err != nil {
		return fmt.Errorf("rotate the intermediate: %w", err)
	}
	done := "intermediate"
	detail := "new intermediate active"
	if res.CSR != nil {
		done, detail = "csr", "new intermediate pending: CSR for the offline root"
	}
	s.audit(r, "", audit.CARotateIntermediate, audit.Issuer(res.Issuer.ID), detail)
	http.Redirect(w, r, "/ca?done="+done, http.StatusSeeOther)
	return nil
}

// caRotateRoot (POST) starts a root rotation with the overlap given.
func (s *server) caRotateRoot(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.CAOps == nil {
		return errorf(http.StatusNotFound, "Rotation is not available on this server.")
	}
	in := strings.TrimSpace(r.PostForm.Get("overlap"))
	overlap, err := time.ParseDuration(in)
	if err != nil || overlap < 0 {
		return s.renderCA(w, r, http.StatusBadRequest, caPageData{Error: fmt.Sprintf("Overlap %q is not a duration such as 720h (30 days) or 0 to switch at once.", in), Overlap: in})
	}
	res, err := s.cfg.CAOps.RotateRoot(r.Context(), overlap)
	if errors.Is(err, ca.ErrBadInput) {
		return s.renderCA(w, r, http.StatusConflict, caPageData{Error: err.Error(), Overlap: in})
	}
	if err != nil {
		return fmt.Errorf("rotate the root: %w", err)
	}
	s.audit(r, "", audit.CARotateRoot, audit.Issuer(res.Root.ID), "overlap "+overlap.String()+", new intermediate "+res.Issuer.ID)
	http.Redirect(w, r, "/ca?done=root", http.StatusSeeOther)
	return nil
}

// caSwitch (POST) ends a root rotation's overlap now.
func (s *server) caSwitch(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.CAOps == nil {
		return errorf(http.StatusNotFound, "Rotation is not available on this server.")
	}
	id := r.PathValue("id")
	err := s.cfg.CAOps.Switch(r.Context(), id)
	if errors.Is(err, ca.ErrBadInput) || errors.Is(err, ca.ErrIssuerConflict) {
		return s.renderCA(w, r, http.StatusConflict, caPageData{Error: err.Error()})
	}
	if err != nil {
		return fmt.Errorf("switch issuance: %w", err)
	}
	s.audit(r, "", audit.CASwitch, audit.Issuer(id), "issuance switched before the end of the overlap")
	http.Redirect(w, r, "/ca?done=switch", http.StatusSeeOther)
	return nil
}

// caCSR serves a pending intermediate's CSR for the offline root.
func (s *server) caCSR(w http.ResponseWriter, r *http.Request) error {
	recs, err := s.caRecords(r.Context())
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	for _, rec := range recs {
		if rec.ID == id && len(rec.CSRPEM) > 0 && rec.State == ca.StatePending {
			s.audit(r, "", audit.CACSRDownload, audit.Issuer(id), "")
			w.Header().Set("Content-Type", "application/pkcs10")
			w.Header().Set("Content-Disposition", `attachment; filename="intermediate-`+shortID(id)+`.csr"`)
			_, _ = w.Write(rec.CSRPEM)
			return nil
		}
	}
	return errorf(http.StatusNotFound, "No pending CSR %s.", id)
}

// caImport (POST) completes the pending intermediate with the pasted
// certificate; what is wrong with it is shown next to the field.
func (s *server) caImport(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.CAOps == nil {
		return errorf(http.StatusNotFound, "Import is not available on this server.")
	}
	text := r.PostForm.Get("certificate")
	certs, err := truststore.ParseCerts([]byte(text))
	if err != nil {
		return s.renderCA(w, r, http.StatusBadRequest, caPageData{Imported: text, Error: "Paste the signed intermediate certificate in PEM (-----BEGIN CERTIFICATE-----): " + err.Error() + "."})
	}
	rec, err := s.cfg.CAOps.Import(r.Context(), certs)
	if errors.Is(err, ca.ErrBadInput) || errors.Is(err, ca.ErrIssuerConflict) {
		return s.renderCA(w, r, http.StatusBadRequest, caPageData{Imported: text, Error: err.Error()})
	}
	if err != nil {
		return fmt.Errorf("import the intermediate: %w", err)
	}
	s.audit(r, "", audit.CAImport, audit.Issuer(rec.ID), "signed intermediate "+certs[0].Subject.CommonName)
	http.Redirect(w, r, "/ca?done=import", http.StatusSeeOther)
	return nil
}

// caBundle serves the bundle of roots to trust now.
func (s *server) caBundle(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="bundle.pem"`)
	_, err := w.Write(s.cfg.CA.BundlePEM())
	return err
}
