package storage

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/certmint/certmint/acme"
	"github.com/certmint/certmint/acme/eab"
	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/internal/webhook"
)

func init() {
	suiteCases = append(suiteCases, suiteCase{"identity/workload", testWorkloadIdentity})
}

// testWorkloadIdentity: a key's workload path, the path an account was
// bound to (kept across a key change), and the SPIFFE ID of certificates
// and their lineage are stored, read back and found by search.
func testWorkloadIdentity(t *testing.T, s Store) {
	key := &eab.Key{HMACKey: []byte("k"), Label: "payments", Workload: "/payments/sender", Reusable: true}
	noErr(t, "create key", s.CreateEABKey(ctx(t), key))
	got, err := s.GetEABKey(ctx(t), key.ID)
	noErr(t, "get key", err)
	if got.Workload != "/payments/sender" {
		t.Fatalf("key workload = %q", got.Workload)
	}
	plainKey := &eab.Key{HMACKey: []byte("k"), Label: "billing team"}
	noErr(t, "create plain key", s.CreateEABKey(ctx(t), plainKey))
	for q, want := range map[string]string{"payments/sender": key.ID, "spiffe://corp.example/payments": key.ID, "BILLING": plainKey.ID, plainKey.ID: plainKey.ID} {
		keys, err := s.ListEABKeys(ctx(t), q, Page{})
		noErr(t, "list keys", err)
		if len(keys) != 1 || keys[0].ID != want {
			t.Fatalf("keys matching %q: %v, want only %s", q, keys, want)
		}
	}

	acct := &acme.Account{ID: acme.NewID(), KeyThumbprint: "tp-" + acme.NewID(), KeyJWK: "{}", Status: acme.StatusValid,
		EABKeyID: key.ID, Workload: key.Workload, CreatedAt: base}
	noErr(t, "create account", s.CreateAccount(ctx(t), acct))
	other := newAccount(t, s)
	noErr(t, "change key", s.ChangeAccountKey(ctx(t), acct.ID, acct.KeyThumbprint, "tp-rolled-"+acct.ID, "{}"))
	a, err := s.GetAccount(ctx(t), acct.ID)
	noErr(t, "get account", err)
	if a.Workload != "/payments/sender" {
		t.Fatalf("account workload after a key change = %q, want it kept", a.Workload)
	}
	for _, q := range []string{"payments/send", "spiffe://corp.example/payments/sender", "PAYMENTS"} {
		list, err := s.ListAccounts(ctx(t), q, Page{})
		noErr(t, "list accounts", err)
		if len(list) != 1 || list[0].ID != acct.ID {
			t.Fatalf("accounts matching %q: %v, want only %s", q, list, acct.ID)
		}
	}

	const id = "spiffe://corp.example/payments/Sender"
	_, err = s.AddWebhook(ctx(t), "https://127.0.0.1:1/hook", "s3cret", webhook.CertificateIssued, audit.Event{Actor: "cli", Action: audit.WebhookAdd})
	noErr(t, "add webhook", err)
	nb := base
	first := finalizeNames(t, s, acct, "", nb, nb.Add(90*time.Minute), "pay.idtest")
	noErr(t, "set identity", gormOf(s).db.Model(&certificateRow{}).Where("id = ?", first.ID).Update("identity", id).Error)
	// The identity goes in with the certificate (CompleteFinalize).
	o, authzs := newOrder(t, s, acct, "pay.idtest")
	validate(t, s, authzs[0], true)
	c := newCert(acct, o.ID, nb.Add(180*time.Minute))
	c.NotBefore, c.Names, c.Identity, c.ARIID = nb.Add(60*time.Minute), []string{"pay.idtest"}, id, "ari-"+acme.NewID()
	noErr(t, "finalize", s.CompleteFinalize(ctx(t), o.ID, c))
	cert, err := s.GetCertificate(ctx(t), c.ID)
	noErr(t, "get certificate", err)
	if cert.Identity != id {
		t.Fatalf("certificate identity = %q", cert.Identity)
	}
	// certificate.issued carries it; the one before had none when issued.
	deliveries, err := s.ClaimDeliveries(ctx(t), "r1", nb.Add(time.Hour), time.Minute, 10)
	noErr(t, "claim deliveries", err)
	identities := map[string]string{}
	for _, d := range deliveries {
		var body struct {
			Data struct {
				CertificateID string `json:"certificate_id"`
				Identity      string `json:"identity"`
			}
		}
		noErr(t, "decode delivery", json.Unmarshal(d.Body, &body))
		identities[body.Data.CertificateID] = body.Data.Identity
	}
	if len(identities) != 2 || identities[c.ID] != id || identities[first.ID] != "" {
		t.Fatalf("certificate.issued identities %v, want %s for %s only", identities, id, c.ID)
	}
	plain := finalizeNames(t, s, other, "", nb, nb.Add(90*time.Minute), "payments-sender.other.test")

	certs, err := s.ListCertificates(ctx(t), CertFilter{Query: "payments/sender"}, Page{})
	noErr(t, "list certificates", err)
	if len(certs) != 2 || certs[0].ID != c.ID {
		t.Fatalf("certificates matching the path: %d, want the 2 with the identity", len(certs))
	}
	certs, err = s.ListCertificates(ctx(t), CertFilter{Query: "payments-sender"}, Page{})
	noErr(t, "list certificates by name", err)
	if len(certs) != 1 || certs[0].ID != plain.ID {
		t.Fatalf("certificates matching a name: %v", certs)
	}

	// The renewal joined the first lineage and carries the identity.
	ls := lineages(t, s, LineageFilter{Pattern: "spiffe://corp.example/payments/*", Now: nb})
	if len(ls) != 1 || ls[0].CertificateID != c.ID || ls[0].Identity != id || ls[0].Renewals != 1 {
		t.Fatalf("lineages by identity: %+v", ls)
	}
	if ls := lineages(t, s, LineageFilter{Pattern: "pay.idtest", Now: nb}); len(ls) != 1 {
		t.Fatalf("lineages by name: %+v", ls)
	}
}
