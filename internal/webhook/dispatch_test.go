package webhook

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// memStore is an outbox of one delivery, for the dispatcher's logic.
type memStore struct {
	mu       sync.Mutex
	d        Delivery
	due      time.Time
	finished []string
	retryAt  time.Time
}

func (m *memStore) ClaimDeliveries(_ context.Context, _ string, now time.Time, lease time.Duration, _ int) ([]Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.d.Status != "pending" || now.Before(m.due) {
		return nil, nil
	}
	m.due = now.Add(lease)
	m.d.Attempts++
	return []Delivery{m.d}, nil
}

func (m *memStore) FinishDelivery(_ context.Context, _, _ string, code int, errText string, _, retryAt time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.finished = append(m.finished, errText)
	switch {
	case errText == "":
		m.d.Status = "delivered"
	case retryAt.IsZero():
		m.d.Status = "failed"
	default:
		m.due, m.retryAt = retryAt, retryAt
	}
	return nil
}

func TestDispatcherSignsRetriesAndGivesUp(t *testing.T) {
	var mu sync.Mutex
	fail := true
	var got []*http.Request
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got, bodies = append(got, r), append(bodies, b)
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	ev, err := New(CertificateIssued, map[string]string{"serial": "01"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	st := &memStore{d: Delivery{ID: "d1", EventID: ev.ID, EventType: ev.Type, EndpointURL: srv.URL, Body: ev.Body,
		Secret: []byte("0123456789abcdef"), Status: "pending", CreatedAt: now}}
	d := &Dispatcher{Store: st, Client: NewClient(&net.Dialer{}, nil), Holder: "h", RetryBase: 10 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }}
	d.Once(context.Background())
	if len(got) != 1 || st.retryAt != now.Add(10*time.Second) {
		t.Fatalf("after a 500: %d requests, retry at %v", len(got), st.retryAt)
	}
	if !Verify([]byte("0123456789abcdef"), bodies[0], got[0].Header.Get(SignatureHeader)) || got[0].Header.Get(EventIDHeader) != ev.ID {
		t.Fatalf("bad signature or id: %v", got[0].Header)
	}
	now = now.Add(10 * time.Second)
	d.Once(context.Background())
	if st.retryAt != now.Add(20*time.Second) {
		t.Fatalf("second retry at %v, want the backoff doubled", st.retryAt)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	now = now.Add(20 * time.Second)
	d.Once(context.Background())
	if st.d.Status != "delivered" || len(got) != 3 || string(bodies[2]) != string(bodies[0]) {
		t.Fatalf("after recovery: %s, %d requests", st.d.Status, len(got))
	}
	// Past a day, a failure is final.
	st.d.Status, st.d.CreatedAt, st.due = "pending", now.Add(-24*time.Hour), time.Time{}
	mu.Lock()
	fail = true
	mu.Unlock()
	d.Once(context.Background())
	if st.d.Status != "failed" {
		t.Fatalf("after a day: %s, want failed", st.d.Status)
	}
}

func TestParseEvents(t *testing.T) {
	for in, want := range map[string]string{"": "", "all": "", "renewal.overdue, certificate.issued": "certificate.issued,renewal.overdue"} {
		if got, err := ParseEvents(in); err != nil || got != want {
			t.Errorf("ParseEvents(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseEvents("cert.issued"); err == nil {
		t.Error("an unknown event was accepted")
	}
	if !Wants("", RenewalOverdue) || Wants("certificate.issued", RenewalOverdue) {
		t.Error("Wants")
	}
}
