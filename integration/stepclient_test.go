package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestStepClientZeroTimes: smallstep's Go ACME client, as `step ca
// certificate` drives it, issues a certificate with no dates given. Its
// newOrder payload is a struct whose time.Time fields are tagged
// omitempty, which encoding/json never omits, so it sends
// "notBefore":"0001-01-01T00:00:00Z" and the same notAfter (issue 26).
// A recording proxy between client and server captures that payload, so
// the test shows the zero times really went over the wire and were taken
// as "not given": the certificate gets the default profile's validity.
func TestStepClientZeroTimes(t *testing.T) {
	client := testdataTool(t, "stepclient", ".") // before the server: the first build takes minutes
	const validity = 48 * time.Hour
	s := StartServer(t, ServerOptions{Args: []string{"--profile", "short=48h", "--default-profile", "short"}})
	rec := startRecordingProxy(t, s)

	dir := t.TempDir()
	roots := filepath.Join(dir, "roots.pem")
	proxyCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rec.srv.Certificate().Raw})
	if err := os.WriteFile(roots, append(append([]byte{}, s.RootPEM...), proxyCert...), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, client, rec.srv.URL+"/acme/directory", roots, "127.0.0.1:"+strconv.Itoa(s.HTTPPort), "step.test")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("stepclient: %v\n%s\nserver output:\n%s", err, stderr.String(), s.Output())
	}
	t.Logf("smallstep client issuance in %s", time.Since(start).Round(time.Millisecond))

	orders := rec.payloads("/acme/new-order")
	if len(orders) != 1 {
		t.Fatalf("proxy saw %d newOrder requests, want 1", len(orders))
	}
	var sent map[string]any
	if err := json.Unmarshal(orders[0], &sent); err != nil {
		t.Fatalf("newOrder payload %s: %v", orders[0], err)
	}
	if sent["notBefore"] != "0001-01-01T00:00:00Z" || sent["notAfter"] != "0001-01-01T00:00:00Z" {
		t.Fatalf("newOrder payload %s, want the zero times this client sends", orders[0])
	}
	t.Logf("newOrder payload on the wire: %s", orders[0])

	leaf := checkCertificate(t, s, stdout.Bytes(), []string{"step.test"}, validity)
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != validity {
		t.Fatalf("certificate lasts %s, want the default profile's %s", got, validity)
	}
}

// recordingProxy is a TLS reverse proxy in front of a Server that keeps
// the decoded JWS payload of every POST, for what a client really sent.
// It passes the Host header on, so the server builds its URLs (and checks
// the JWS url) for the proxy's address.
type recordingProxy struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen map[string][][]byte // path -> payloads
}

func startRecordingProxy(t *testing.T, s *Server) *recordingProxy {
	t.Helper()
	target, err := url.Parse("https://127.0.0.1:" + strconv.Itoa(s.Port))
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{seen: map[string][][]byte{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{TLSClientConfig: s.TLSConfig()},
	}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			p.record(r.URL.Path, body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// record keeps the payload of a flattened JWS (RFC 7515 §7.2.2) body.
func (p *recordingProxy) record(path string, body []byte) {
	var jws struct {
		Payload string `json:"payload"`
	}
	if json.Unmarshal(body, &jws) != nil {
		return
	}
	payload, err := base64.RawURLEncoding.DecodeString(jws.Payload)
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[path] = append(p.seen[path], payload)
}

// payloads returns the payloads posted to path so far.
func (p *recordingProxy) payloads(path string) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.seen[path]...)
}
