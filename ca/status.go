package ca

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"slices"
	"strings"
	"time"
)

// IssuerStatus is one issuer as `certmint ca status` and the console's CA
// page show it.
type IssuerStatus struct {
	ID          string     `json:"id"`
	Role        Role       `json:"role"`
	State       State      `json:"state"`
	Subject     string     `json:"subject,omitempty"`
	Parent      string     `json:"parent,omitempty"`
	NotBefore   *time.Time `json:"not_before,omitempty"`
	NotAfter    *time.Time `json:"not_after,omitempty"`
	DaysLeft    int        `json:"days_left"`
	Constraints string     `json:"constraints"`
	KeyLocation string     `json:"key_location"`
	CRLURL      string     `json:"crl_url,omitempty"`
	ActivateAt  *time.Time `json:"activate_at,omitempty"`
	SHA256      string     `json:"sha256,omitempty"`
	InBundle    bool       `json:"in_bundle"`
	HasCSR      bool       `json:"csr_pending"`
}

// Status describes recs for operators at now; crlURL is the configured
// --crl-url ("" when unknown, as on the command line).
func Status(recs []IssuerRecord, now time.Time, crlURL string) []IssuerStatus {
	out := make([]IssuerStatus, 0, len(recs))
	for _, r := range recs {
		s := IssuerStatus{ID: r.ID, Role: r.Role, State: r.State, Parent: r.ParentID, KeyLocation: recordKeyLocation(&r),
			ActivateAt: r.ActivateAt, Constraints: "none", InBundle: r.Role == RoleRoot && r.State == StateActive,
			HasCSR: r.State == StatePending && len(r.CertPEM) == 0}
		if r.Role == RoleIntermediate {
			s.CRLURL = IssuerCRLURL(crlURL, &Issuer{CRLName: r.CRLName})
		}
		if cert, err := parseRecordCert(&r); err == nil {
			nb, na := cert.NotBefore.UTC(), cert.NotAfter.UTC()
			s.Subject, s.NotBefore, s.NotAfter = cert.Subject.CommonName, &nb, &na
			s.DaysLeft = int(na.Sub(now).Hours() / 24)
			sum := sha256.Sum256(cert.Raw)
			s.SHA256 = hex.EncodeToString(sum[:])
			if c := describeConstraints(constraintsOf(cert)); c != "" {
				s.Constraints = c
			}
		} else if block, _ := pem.Decode(r.CSRPEM); block != nil {
			s.Subject = "(CSR out for signing)"
		}
		out = append(out, s)
	}
	// Roots first, then intermediates, each oldest first (recs' order).
	slices.SortStableFunc(out, func(a, b IssuerStatus) int { return strings.Compare(string(b.Role), string(a.Role)) })
	return out
}

func describeConstraints(n NameConstraints) string {
	var parts []string
	add := func(label string, list []string) {
		if len(list) > 0 {
			parts = append(parts, label+" "+strings.Join(list, ","))
		}
	}
	add("permitted DNS", n.PermittedDNS)
	add("excluded DNS", n.ExcludedDNS)
	var p, e []string
	for _, x := range n.PermittedIPs {
		p = append(p, x.String())
	}
	for _, x := range n.ExcludedIPs {
		e = append(e, x.String())
	}
	add("permitted IP", p)
	add("excluded IP", e)
	return strings.Join(parts, "; ")
}

// BundleOf is the PEM of every root clients should trust, from records.
func BundleOf(recs []IssuerRecord) []byte {
	var b []byte
	for _, r := range recs {
		if r.Role == RoleRoot && r.State == StateActive {
			if cert, err := parseRecordCert(&r); err == nil {
				b = append(b, certPEM(cert.Raw)...)
			}
		}
	}
	return b
}
