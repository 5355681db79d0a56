package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

// TestCrashConsistency runs issuance load on SQLite and kills the server
// with SIGKILL at random moments, restarting it on the same data. After
// each crash the database must pass PRAGMA integrity_check, hold every
// certificate a client received (a certificate is stored before it is
// returned), have unique serials, and no order may be stuck in processing
// or be valid without its certificate.
func TestCrashConsistency(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped with -short")
	}
	s := StartServer(t, ServerOptions{})

	// One http-01 responder for all clients: each records its key
	// authorizations by token before accepting a challenge.
	var keyAuths sync.Map
	stop := serveHTTP01(t, s, func(token string) string {
		v, _ := keyAuths.Load(token)
		ka, _ := v.(string)
		return ka
	})
	defer stop()

	const workers = 3
	clients := make([]*acme.Client, workers)
	for i := range clients {
		clients[i] = newXClient(t, s)
	}
	var (
		mu       sync.Mutex
		received []string // serials, lowercase hex as stored
		failures int
	)
	loadCtx, stopLoad := context.WithTimeout(context.Background(), 20*time.Second)
	defer stopLoad()
	var wg sync.WaitGroup
	for w, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; loadCtx.Err() == nil; n++ {
				serial, err := crashFlow(loadCtx, c, &keyAuths, fmt.Sprintf("w%d-%d.crash.test", w, n))
				mu.Lock()
				if err == nil {
					received = append(received, serial)
				} else {
					failures++
				}
				mu.Unlock()
				if err != nil {
					// The server is down or restarting: back off a little.
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}

	for kill := 1; kill <= 4; kill++ {
		time.Sleep(time.Duration(1500+mrand.IntN(2500)) * time.Millisecond)
		s.Kill()
		// Checked on the file as the crash left it, before the server
		// reopens it.
		checkIntegrity(t, s, fmt.Sprintf("after kill %d", kill))
		s.Start()
		time.Sleep(300 * time.Millisecond)
		mu.Lock()
		got := append([]string(nil), received...)
		mu.Unlock()
		checkCrashState(t, s, got, fmt.Sprintf("after restart %d", kill))
	}
	wg.Wait()
	checkIntegrity(t, s, "at the end")
	checkCrashState(t, s, received, "at the end")
	t.Logf("%d certificates received, %d flows cut by crashes", len(received), failures)
	if len(received) == 0 {
		t.Fatal("no certificate was issued under load")
	}
}

// crashFlow runs one order from newOrder to certificate and returns the
// leaf's serial. Every step has a short deadline: a dead server fails fast.
func crashFlow(ctx context.Context, c *acme.Client, keyAuths *sync.Map, name string) (string, error) {
	ders, err := orderCert(ctx, c, keyAuths, name)
	if err != nil {
		return "", err
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(leaf.SerialNumber.Bytes()), nil
}

// orderCert runs one http-01 order for name within 8 seconds and returns
// the certificate chain (DER, leaf first). keyAuths is where the test's
// http-01 responder finds the answer for each token.
func orderCert(ctx context.Context, c *acme.Client, keyAuths *sync.Map, name string) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	order, err := c.AuthorizeOrder(ctx, acme.DomainIDs(name))
	if err != nil {
		return nil, err
	}
	for _, u := range order.AuthzURLs {
		a, err := c.GetAuthorization(ctx, u)
		if err != nil {
			return nil, err
		}
		for _, ch := range a.Challenges {
			if ch.Type != "http-01" || a.Status != acme.StatusPending {
				continue
			}
			ka, err := c.HTTP01ChallengeResponse(ch.Token)
			if err != nil {
				return nil, err
			}
			keyAuths.Store(ch.Token, ka)
			if _, err := c.Accept(ctx, ch); err != nil {
				return nil, err
			}
		}
		if _, err := c.WaitAuthorization(ctx, u); err != nil {
			return nil, err
		}
	}
	if _, err := c.WaitOrder(ctx, order.URI); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, key)
	if err != nil {
		return nil, err
	}
	ders, _, err := c.CreateOrderCert(ctx, order.FinalizeURL, csr, true)
	return ders, err
}

// checkIntegrity runs PRAGMA integrity_check on the server's database.
func checkIntegrity(t *testing.T, s *Server, when string) {
	t.Helper()
	db := openDB(t, s)
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil {
		t.Fatalf("%s: integrity_check: %v", when, err)
	}
	if res != "ok" {
		t.Fatalf("%s: integrity_check says %q", when, res)
	}
}

// checkCrashState checks the certificates and orders after a restart.
func checkCrashState(t *testing.T, s *Server, received []string, when string) {
	t.Helper()
	db := openDB(t, s)
	defer db.Close()
	stored := map[string]bool{}
	rows, err := db.Query("SELECT serial FROM certificates")
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	for rows.Next() {
		var serial string
		if err := rows.Scan(&serial); err != nil {
			t.Fatal(err)
		}
		stored[serial] = true
	}
	rows.Close()
	for _, serial := range received {
		if !stored[serial] {
			t.Errorf("%s: certificate %s was received by a client but is not in the database", when, serial)
		}
	}
	var dups []string
	rows, err = db.Query("SELECT serial, COUNT(*) FROM certificates GROUP BY serial HAVING COUNT(*) > 1")
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	for rows.Next() {
		var serial string
		var n int
		_ = rows.Scan(&serial, &n)
		dups = append(dups, fmt.Sprintf("%s x%d", serial, n))
	}
	rows.Close()
	if len(dups) > 0 {
		t.Errorf("%s: duplicate serials: %s", when, strings.Join(dups, ", "))
	}
	// Finalize moves an order from ready to valid in the transaction that
	// stores its certificate, so no crash can leave an order in between
	// (in "processing", or valid without its certificate).
	var processing, orphaned int
	err = db.QueryRow(`SELECT
		COALESCE(SUM(CASE WHEN status = 'processing' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN status = 'valid' AND NOT EXISTS
			(SELECT 1 FROM certificates c WHERE c.id = orders.certificate_id) THEN 1 ELSE 0 END), 0)
		FROM orders`).Scan(&processing, &orphaned)
	if err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	if processing > 0 {
		t.Errorf("%s: %d orders stuck in processing; finalize must never leave one there", when, processing)
	}
	if orphaned > 0 {
		t.Errorf("%s: %d valid orders without their certificate", when, orphaned)
	}
}
