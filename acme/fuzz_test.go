package acme

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"net"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/idna"

	"github.com/certmint/certmint/acme/jws"
	"github.com/certmint/certmint/acme/revocation"
)

// The fuzz targets below run their seed corpora (testdata/fuzz/<Target>)
// with every `go test`; `go test -fuzz=<Target>` explores further. Each
// checks a property the server relies on, not only the absence of panics.

// fuzzOrderNames are the identifiers of the fixed order FuzzCheckCSR
// finalizes: a DNS name, a wildcard and an IP, as ParseIdentifier stores
// them in Order.Names.
const fuzzOrderNames = "example.test,*.wild.test,192.0.2.7"

// fuzzAccountKey is the account key of the fixed order: a CSR with it must
// be refused. It is fixed so that seeds signed with it stay meaningful.
func fuzzAccountKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	// A deterministic P-256 key: d = 0x1234... is valid (0 < d < N).
	d := make([]byte, 32)
	for i := range d {
		d[i] = byte(0x12 + i)
	}
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func fuzzCSR(t testing.TB, key any, cn string, dns []string, ips []net.IP) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn}, DNSNames: dns, IPAddresses: ips}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// FuzzCheckCSR feeds arbitrary DER to checkCSR for a fixed order. A CSR it
// accepts must be one the CA can sign as is: exactly the order's names,
// each with the SAN type of its identifier (a DNS SAN is never an IP
// address), a common name among them, an acceptable key that is not the
// account key.
func FuzzCheckCSR(f *testing.F) {
	acctKey := fuzzAccountKey(f)
	thumb, err := jws.Thumbprint(acctKey.Public())
	if err != nil {
		f.Fatal(err)
	}
	certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ip := net.ParseIP("192.0.2.7")
	names := []string{"example.test", "*.wild.test"}
	f.Add(fuzzCSR(f, certKey, "example.test", names, []net.IP{ip}))
	f.Add(fuzzCSR(f, certKey, "", []string{"*.WILD.test", "Example.TEST"}, []net.IP{ip}))
	f.Add(fuzzCSR(f, certKey, "example.test", []string{"example.test"}, []net.IP{ip}))
	f.Add(fuzzCSR(f, acctKey, "example.test", names, []net.IP{ip}))
	f.Add(fuzzCSR(f, certKey, "192.0.2.7", append(names, "192.0.2.7"), nil))
	// The common name carries one of the order's names, not the SANs
	// (RFC 8555 §7.4 allows it).
	f.Add(fuzzCSR(f, certKey, "Example.TEST", []string{"*.wild.test"}, []net.IP{ip}))
	f.Add(fuzzCSR(f, certKey, "192.0.2.7", names, nil))
	f.Add([]byte("not a CSR"))
	o := &Order{ID: "order", AccountID: "acct", Names: strings.Split(fuzzOrderNames, ",")}
	acct := &Account{ID: "acct", KeyThumbprint: thumb}
	s := &Server{}
	f.Fuzz(func(t *testing.T, der []byte) {
		csr, p := s.checkCSR(der, o, acct)
		if p != nil {
			if p.Type != ProblemNS+"badCSR" || p.Status != 400 {
				t.Fatalf("refusal is %s (%d), want badCSR (400)", p.Type, p.Status)
			}
			return
		}
		var got []string
		for _, n := range csr.DNSNames {
			if _, err := netip.ParseAddr(n); err == nil {
				t.Fatalf("accepted an IP address %q as a DNS SAN", n)
			}
			got = append(got, strings.ToLower(n))
		}
		for _, a := range csr.IPAddresses {
			got = append(got, canonicalIP(a))
		}
		sort.Strings(got)
		want := strings.Split(fuzzOrderNames, ",")
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("accepted SANs %q, want exactly %q", got, want)
		}
		if cn := csr.Subject.CommonName; cn != "" {
			if !contains(want, strings.ToLower(cn)) {
				t.Fatalf("accepted common name %q outside the order", cn)
			}
			listed := false
			for _, n := range csr.DNSNames {
				listed = listed || strings.EqualFold(n, cn)
			}
			for _, a := range csr.IPAddresses {
				listed = listed || a.Equal(net.ParseIP(cn))
			}
			if !listed {
				t.Fatalf("common name %q is not among the SANs the CA will sign", cn)
			}
		}
		if tp, _ := jws.Thumbprint(csr.PublicKey); tp == thumb {
			t.Fatal("accepted the account key")
		}
		switch k := csr.PublicKey.(type) {
		case *rsa.PublicKey:
			if k.N.BitLen() < 2048 {
				t.Fatalf("accepted a %d-bit RSA key", k.N.BitLen())
			}
		case *ecdsa.PublicKey:
		default:
			t.Fatalf("accepted a %T key", k)
		}
	})
}

// FuzzParseIdentifier checks that ParseIdentifier is a normalization: an
// accepted identifier is ASCII, its normal form parses to itself, and a
// refusal names the identifier so it can be a subproblem (RFC 8555 §6.7.1).
func FuzzParseIdentifier(f *testing.F) {
	for _, seed := range [][2]string{
		{"dns", "example.test"}, {"dns", "*.Example.TEST"}, {"dns", "a..b"}, {"dns", "-a.test"},
		{"dns", "a.*.test"}, {"dns", "192.0.2.1"}, {"ip", "192.0.2.1"}, {"ip", "::ffff:10.0.0.1"},
		{"ip", "fe80::1%eth0"}, {"ip", "2001:DB8::1"}, {"email", "a@b.test"}, {"dns", "\u212a.test"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, typ, value string) {
		n, p := ParseIdentifier(Identifier{Type: typ, Value: value})
		if p != nil {
			if p.Identifier == nil || p.Identifier.Value != value || p.Identifier.Type != typ {
				t.Fatalf("problem %v does not name the identifier", p)
			}
			if p.Status != 400 {
				t.Fatalf("refusal status %d, want 400", p.Status)
			}
			return
		}
		if n.Type != typ {
			t.Fatalf("type %q became %q", typ, n.Type)
		}
		for i := 0; i < len(value); i++ {
			if value[i] >= 0x80 {
				t.Fatalf("accepted non-ASCII identifier %q as %q", value, n.name())
			}
		}
		if n.Type == "dns" && !strings.EqualFold(n.name(), value) {
			t.Fatalf("dns %q normalized to %q, want a case change only", value, n.name())
		}
		if n.Type == "dns" {
			// A host name under IDNA2008's registration rules, whose
			// last label cannot read as part of an IP address.
			if ascii, err := idna.Registration.ToASCII(n.Value); err != nil || ascii != n.Value {
				t.Fatalf("accepted %q, which IDNA2008 registration refuses: %v", value, err)
			}
			labels := strings.Split(n.Value, ".")
			if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
				t.Fatalf("accepted %q with an all-digit last label", value)
			}
		}
		again, p := ParseIdentifier(Identifier{Type: n.Type, Value: n.name()})
		if p != nil || again != n {
			t.Fatalf("normal form %q of %q does not re-parse to itself: %+v %v", n.name(), value, again, p)
		}
		if n.Type == "ip" {
			a := netip.MustParseAddr(n.Value)
			if a.Is4In6() || a.Zone() != "" {
				t.Fatalf("ip %q normalized to non-canonical %q", value, n.Value)
			}
		}
	})
}

// givenTime reports whether a decoded newOrder timestamp counts as given:
// present, not null, and not Go's zero time.
func givenTime(v string) bool {
	t, err := time.Parse(time.RFC3339, v)
	return v != "" && (err != nil || !t.IsZero())
}

// FuzzRequestPayloads decodes arbitrary payloads into the request types
// of newAccount, newOrder, finalize and revokeCert, the way handlers do,
// and runs the checks that follow decoding: checkContacts,
// checkIdentifiers and orderValidity. Whatever they accept must respect
// the limits they promise.
func FuzzRequestPayloads(f *testing.F) {
	for _, seed := range []string{
		`{"contact":["mailto:ops@example.test"],"termsOfServiceAgreed":true}`,
		`{"contact":["mailto:a@b.test?subject=x","tel:+1"],"onlyReturnExisting":true}`,
		`{"contact":"mailto:x@y.test"}`,
		`{"identifiers":[{"type":"dns","value":"a.test"},{"type":"ip","value":"192.0.2.1"}],"notBefore":"2026-03-01T12:00:00Z","notAfter":"2026-03-05T12:00:00Z"}`,
		`{"identifiers":[{"type":"dns","value":"a.test"},{"type":"dns","value":"A.test"}]}`,
		`{"identifiers":[],"notAfter":"9999-12-31T23:59:59Z"}`,
		`{"csr":"MIIB","profile":"tls-server"}`,
		`{"certificate":"AAAA","reason":4}`,
		`{"reason":-1}`,
		`[`, ``, `null`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const maxValidity = 90 * 24 * time.Hour
	s := &Server{cfg: Config{MaxIdentifiers: 10}}
	f.Fuzz(func(t *testing.T, payload []byte) {
		r := &request{msg: &jws.Message{PayloadB64: "x", Payload: payload}}

		var acct newAccountRequest
		if r.decode(&acct) == nil {
			if back, err := checkContacts(acct.Contact); err == nil && len(back) > 0 {
				// Kept as sent but for spaces and tabs around the address,
				// and the normal form is accepted as it is.
				for i, c := range acct.Contact {
					if addr, _ := strings.CutPrefix(c, "mailto:"); back[i] != "mailto:"+strings.Trim(addr, " \t") {
						t.Fatalf("contact %q kept as %q", c, back[i])
					}
				}
				if again, err := checkContacts(back); err != nil || !reflect.DeepEqual(again, back) {
					t.Fatalf("normal form %q re-checks as %q, %v", back, again, err)
				}
				if len(back) > 10 {
					t.Fatalf("accepted %d contacts", len(back))
				}
				for _, c := range back {
					if !strings.HasPrefix(c, "mailto:") || strings.ContainsAny(c, "?,\r\n") {
						t.Fatalf("accepted contact %q", c)
					}
				}
			}
		}

		var order newOrderRequest
		if r.decode(&order) == nil {
			if ids, err := s.checkIdentifiers(order.Identifiers); err == nil {
				if len(ids) == 0 || len(ids) > s.cfg.MaxIdentifiers {
					t.Fatalf("accepted %d identifiers", len(ids))
				}
				seen := map[normalizedIdentifier]bool{}
				for _, id := range ids {
					if seen[id] {
						t.Fatalf("accepted duplicate identifier %+v", id)
					}
					seen[id] = true
				}
			} else if _, ok := err.(*Problem); !ok {
				t.Fatalf("checkIdentifiers error %T is not a problem", err)
			}
			nb, na, p := orderValidity(order.NotBefore, order.NotAfter, now, maxValidity)
			if p == nil && nb != nil {
				if !na.After(*nb) || na.Sub(*nb) > maxValidity {
					t.Fatalf("accepted validity %s .. %s", nb, na)
				}
				if nb.Before(now.Add(-24*time.Hour)) || nb.After(now.Add(30*24*time.Hour)) {
					t.Fatalf("accepted notBefore %s", nb)
				}
			}
			// Absent, null and Go's zero time all mean "not given"
			// (RFC 8555 §7.4 makes both fields optional).
			if p == nil && (nb == nil) != (!givenTime(order.NotBefore) && !givenTime(order.NotAfter)) {
				t.Fatalf("validity %q..%q gave %v..%v", order.NotBefore, order.NotAfter, nb, na)
			}
			if p == nil && givenTime(order.NotAfter) {
				if want, _ := time.Parse(time.RFC3339, order.NotAfter); !na.Equal(want) {
					t.Fatalf("notAfter %q became %v", order.NotAfter, na)
				}
			}
		}

		var fin finalizeRequest
		if r.decode(&fin) == nil {
			_, _ = base64.RawURLEncoding.DecodeString(fin.CSR)
		}
		var rev revokeRequest
		if r.decode(&rev) == nil && rev.Reason != nil && revocation.Accepted(*rev.Reason) {
			if *rev.Reason == 2 || *rev.Reason == 6 || *rev.Reason < 0 || *rev.Reason > 10 {
				t.Fatalf("accepted reason %d", *rev.Reason)
			}
		}
	})
}
