// Command floor is the least an ACME server can do per issuance, to
// measure what a complete flow must cost on this machine before any
// storage or framework: it keeps everything in memory and does only the
// work RFC 8555 requires of every flow, with certmint's own code for it.
//
//   - HTTPS with keep-alive (net/http, no framework);
//   - a fresh nonce on every response and its spending (§6.5);
//   - JWS parsing and signature checks of every request (acme/jws, §6.2);
//   - http-01 validation with certmint's validator: DNS look-ups and an
//     HTTP fetch over loopback (acme/validate, §8.3);
//   - the CSR's parsing and signature check, and signing the certificate
//     with certmint's CA (ca.Issue, §7.4).
//
// It has no database, no audit, no rate limits, no policy and no error
// documents beyond a status code: it is not a server to use, only a
// yardstick. scripts/bench-floor.sh runs `certmint bench` against it.
//
//	go run ./scripts/floor -listen 127.0.0.1:14700 -http01-port 15702 \
//	  -dns-resolver 127.0.0.1:15753 -root-out /tmp/floor-root.pem
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/certmint/certmint/acme/jws"
	"github.com/certmint/certmint/acme/validate"
	"github.com/certmint/certmint/ca"
)

type order struct {
	account *account
	names   []string
	authzs  []string
	status  string
	cert    string
}

type authz struct {
	account *account
	name    string
	token   string
	status  string
}

type account struct {
	key   *jws.JWK
	thumb string
}

// server holds all state in maps under one mutex: a floor, not a design.
type server struct {
	ca   *ca.CA
	va   *validate.Validator
	base string

	mu       sync.Mutex
	nonces   map[string]bool
	accounts map[string]*account
	orders   map[string]*order
	authzs   map[string]*authz
	certs    map[string][]byte
}

func main() {
	listen := flag.String("listen", "127.0.0.1:14700", "HTTPS listen address")
	httpPort := flag.Int("http01-port", 80, "port http-01 validation connects to")
	resolver := flag.String("dns-resolver", "", "DNS server (host:port) for validation look-ups")
	rootOut := flag.String("root-out", "", "file to write the root certificate to (PEM)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:14799)")
	flag.Parse()
	if *pprofAddr != "" {
		go func() { log.Println(http.ListenAndServe(*pprofAddr, nil)) }()
	}

	dir, err := os.MkdirTemp("", "certmint-floor-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	authority, err := ca.Open(ca.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	if *rootOut != "" {
		if err := os.WriteFile(*rootOut, authority.RootPEM(), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	tlsCert, err := serverCert(authority, *listen)
	if err != nil {
		log.Fatal(err)
	}
	s := &server{
		ca:       authority,
		va:       validate.New(validate.Config{HTTPPort: *httpPort, Resolver: *resolver}),
		base:     "https://" + *listen,
		nonces:   map[string]bool{},
		accounts: map[string]*account{},
		orders:   map[string]*order{},
		authzs:   map[string]*authz{},
		certs:    map[string][]byte{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dir", s.directory)
	mux.HandleFunc("/nonce", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Replay-Nonce", s.nonce())
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /account", s.newAccount)
	mux.HandleFunc("POST /order", s.authenticated(s.newOrder))
	mux.HandleFunc("POST /order/{id}", s.authenticated(s.getOrder))
	mux.HandleFunc("POST /authz/{id}", s.authenticated(s.getAuthz))
	mux.HandleFunc("POST /chall/{id}", s.authenticated(s.challenge))
	mux.HandleFunc("POST /finalize/{id}", s.authenticated(s.finalize))
	mux.HandleFunc("POST /cert/{id}", s.authenticated(s.certificate))
	srv := &http.Server{Addr: *listen, Handler: mux,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12}}
	log.Printf("floor: listening on https://%s/dir", *listen)
	log.Fatal(srv.ListenAndServeTLS("", ""))
}

// serverCert issues the HTTPS certificate for the listen address's IP.
func serverCert(c *ca.CA, listen string) (tls.Certificate, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := ca.NewSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	der, err := c.Issue(ca.Template{PublicKey: key.Public(), IPAddresses: []net.IP{net.ParseIP(host)}, Serial: serial})
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, c.Intermediate().Raw}, PrivateKey: key}, nil
}

func (s *server) directory(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{
		"newNonce": s.base + "/nonce", "newAccount": s.base + "/account", "newOrder": s.base + "/order",
	})
}

func randID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *server) nonce() string {
	n := randID()
	s.mu.Lock()
	s.nonces[n] = true
	s.mu.Unlock()
	return n
}

// verify parses and checks a request JWS: structure, URL, nonce spent
// once (§6.4, §6.5), and the signature with the embedded key or the
// account's.
func (s *server) verify(w http.ResponseWriter, r *http.Request) (*jws.Message, *account, bool) {
	w.Header().Set("Replay-Nonce", s.nonce())
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return nil, nil, false
	}
	m, err := jws.Parse(body, jws.ParseOptions{RequireNonce: true})
	if err != nil || m.Header.URL != s.base+r.URL.Path {
		http.Error(w, "malformed", http.StatusBadRequest)
		return nil, nil, false
	}
	s.mu.Lock()
	fresh := s.nonces[m.Header.Nonce]
	delete(s.nonces, m.Header.Nonce)
	acct := s.accounts[m.Header.KID]
	s.mu.Unlock()
	if !fresh {
		http.Error(w, "badNonce", http.StatusBadRequest)
		return nil, nil, false
	}
	key := m.Header.JWK
	if key == nil {
		if acct == nil {
			http.Error(w, "accountDoesNotExist", http.StatusBadRequest)
			return nil, nil, false
		}
		key = acct.key
	}
	if err := m.Verify(key.Key); err != nil {
		http.Error(w, "bad signature", http.StatusBadRequest)
		return nil, nil, false
	}
	return m, acct, true
}

func (s *server) newAccount(w http.ResponseWriter, r *http.Request) {
	m, _, ok := s.verify(w, r)
	if !ok || m.Header.JWK == nil {
		return
	}
	id := s.base + "/acct/" + randID()
	s.mu.Lock()
	s.accounts[id] = &account{key: m.Header.JWK, thumb: m.Header.JWK.Thumbprint()}
	s.mu.Unlock()
	w.Header().Set("Location", id)
	writeJSON(w, http.StatusCreated, map[string]string{"status": "valid"})
}

type handler func(w http.ResponseWriter, r *http.Request, m *jws.Message, a *account)

func (s *server) authenticated(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m, a, ok := s.verify(w, r)
		if !ok {
			return
		}
		if a == nil {
			http.Error(w, "kid required", http.StatusBadRequest)
			return
		}
		h(w, r, m, a)
	}
}

func (s *server) newOrder(w http.ResponseWriter, r *http.Request, m *jws.Message, a *account) {
	var req struct {
		Identifiers []struct{ Type, Value string }
	}
	if err := json.Unmarshal(m.Payload, &req); err != nil || len(req.Identifiers) == 0 {
		http.Error(w, "malformed", http.StatusBadRequest)
		return
	}
	o := &order{account: a, status: "pending"}
	s.mu.Lock()
	for _, id := range req.Identifiers {
		zid := randID()
		s.authzs[zid] = &authz{account: a, name: strings.ToLower(id.Value), token: randID(), status: "pending"}
		o.names = append(o.names, strings.ToLower(id.Value))
		o.authzs = append(o.authzs, zid)
	}
	oid := randID()
	s.orders[oid] = o
	body := s.orderJSON(oid, o)
	s.mu.Unlock()
	w.Header().Set("Location", s.base+"/order/"+oid)
	writeJSON(w, http.StatusCreated, body)
}

// orderJSON is called with s.mu held.
func (s *server) orderJSON(id string, o *order) map[string]any {
	urls := make([]string, len(o.authzs))
	for i, z := range o.authzs {
		urls[i] = s.base + "/authz/" + z
	}
	out := map[string]any{"status": o.status, "authorizations": urls, "finalize": s.base + "/finalize/" + id}
	if o.cert != "" {
		out["certificate"] = s.base + "/cert/" + o.cert
	}
	return out
}

func (s *server) getOrder(w http.ResponseWriter, r *http.Request, m *jws.Message, a *account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orders[r.PathValue("id")]
	if o == nil || o.account != a {
		http.NotFound(w, r)
		return
	}
	s.refresh(o)
	writeJSON(w, http.StatusOK, s.orderJSON(r.PathValue("id"), o))
}

// refresh makes a pending order ready once all its authorizations are
// valid (§7.1.6); called with s.mu held.
func (s *server) refresh(o *order) {
	if o.status != "pending" {
		return
	}
	for _, z := range o.authzs {
		if s.authzs[z].status != "valid" {
			return
		}
	}
	o.status = "ready"
}

func (s *server) getAuthz(w http.ResponseWriter, r *http.Request, m *jws.Message, a *account) {
	id := r.PathValue("id")
	s.mu.Lock()
	z := s.authzs[id]
	var body map[string]any
	if z != nil && z.account == a {
		body = map[string]any{"status": z.status, "identifier": map[string]string{"type": "dns", "value": z.name},
			"challenges": []any{map[string]string{"type": "http-01", "url": s.base + "/chall/" + id, "token": z.token, "status": z.status}}}
	}
	s.mu.Unlock()
	if body == nil {
		http.NotFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// challenge validates at once and answers with the result, as certmint
// does for a quick validation.
func (s *server) challenge(w http.ResponseWriter, r *http.Request, m *jws.Message, a *account) {
	id := r.PathValue("id")
	s.mu.Lock()
	z := s.authzs[id]
	s.mu.Unlock()
	if z == nil || z.account != a {
		http.NotFound(w, r)
		return
	}
	err := s.va.Validate(r.Context(), validate.Request{Type: "http-01", IdentType: "dns", Value: z.name,
		Token: z.token, KeyAuth: z.token + "." + a.thumb})
	status := "valid"
	if err != nil {
		status = "invalid"
	}
	s.mu.Lock()
	z.status = status
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"type": "http-01", "url": s.base + "/chall/" + id,
		"token": z.token, "status": status})
}

func (s *server) finalize(w http.ResponseWriter, r *http.Request, m *jws.Message, a *account) {
	oid := r.PathValue("id")
	s.mu.Lock()
	o := s.orders[oid]
	if o != nil {
		s.refresh(o)
	}
	s.mu.Unlock()
	if o == nil || o.account != a || o.status != "ready" {
		http.Error(w, "orderNotReady", http.StatusForbidden)
		return
	}
	var req struct{ CSR string }
	if err := json.Unmarshal(m.Payload, &req); err != nil {
		http.Error(w, "malformed", http.StatusBadRequest)
		return
	}
	der, err := base64.RawURLEncoding.DecodeString(req.CSR)
	if err != nil {
		http.Error(w, "badCSR", http.StatusBadRequest)
		return
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil || csr.CheckSignature() != nil || !sameNames(csr.DNSNames, o.names) {
		http.Error(w, "badCSR", http.StatusBadRequest)
		return
	}
	serial, err := ca.NewSerial()
	if err != nil {
		http.Error(w, "serial", http.StatusInternalServerError)
		return
	}
	cert, err := s.ca.Issue(ca.Template{PublicKey: csr.PublicKey, CommonName: csr.Subject.CommonName,
		DNSNames: csr.DNSNames, Serial: serial})
	if err != nil {
		http.Error(w, "sign", http.StatusInternalServerError)
		return
	}
	cid := randID()
	s.mu.Lock()
	s.certs[cid] = s.ca.ChainPEM(cert)
	o.status, o.cert = "valid", cid
	body := s.orderJSON(oid, o)
	s.mu.Unlock()
	w.Header().Set("Location", s.base+"/order/"+oid)
	writeJSON(w, http.StatusOK, body)
}

func sameNames(csr, order []string) bool {
	a := make([]string, len(csr))
	for i, n := range csr {
		a[i] = strings.ToLower(n)
	}
	b := slices.Clone(order)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func (s *server) certificate(w http.ResponseWriter, r *http.Request, m *jws.Message, a *account) {
	s.mu.Lock()
	chain := s.certs[r.PathValue("id")]
	s.mu.Unlock()
	if chain == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.Write(chain)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("floor: marshal: %v", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
