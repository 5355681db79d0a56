// Package webhook is certmint's operator notifications: the event
// vocabulary, the JSON each receiver gets, its HMAC signature, and the
// dispatcher that delivers the events queued in the database (the outbox)
// at least once. The store writes an event's deliveries in the same
// transaction as the change it reports, so an issued certificate is never
// left unannounced by a crash between the two.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Event types. They are plain strings: receivers switch on them, the
// console and `certmint admin webhook add --events` take them.
const (
	CertificateIssued  = "certificate.issued"
	CertificateRevoked = "certificate.revoked"
	RenewalOverdue     = "renewal.overdue"
	CAExpiring         = "ca.expiring"
	ValidationFailed   = "validation.failed"
)

// Types lists every event type, in the order the console shows them.
var Types = []string{CertificateIssued, CertificateRevoked, RenewalOverdue, CAExpiring, ValidationFailed}

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body,
// keyed with the endpoint's secret. EventIDHeader repeats the body's id so
// a receiver can drop a redelivery before parsing.
const (
	SignatureHeader = "Certmint-Signature"
	EventIDHeader   = "Certmint-Event-Id"
	EventTypeHeader = "Certmint-Event"
)

// Event is one notification as queued: its unique ID (the same for every
// endpoint it goes to and for every retry), its type and the JSON body.
type Event struct {
	ID   string
	Type string
	Body []byte
}

// envelope is the JSON every receiver gets.
type envelope struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Created string `json:"created"`
	Data    any    `json:"data"`
}

// New builds an event of type typ with data (a struct or map that
// encodes to a JSON object) created at now.
func New(typ string, data any, now time.Time) (Event, error) {
	id, err := newID(now)
	if err != nil {
		return Event{}, err
	}
	body, err := json.Marshal(envelope{ID: id, Type: typ, Created: now.UTC().Format(time.RFC3339), Data: data})
	if err != nil {
		return Event{}, fmt.Errorf("encode %s event: %w", typ, err)
	}
	return Event{ID: id, Type: typ, Body: body}, nil
}

// newID is "evt_" and a time-ordered hex ID: 48 bits of milliseconds and
// 80 random bits, unique without coordination between replicas.
func newID(now time.Time) (string, error) {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 0; i < 6; i++ {
		b[i] = byte(ms >> (40 - 8*i))
	}
	if _, err := rand.Read(b[6:]); err != nil {
		return "", fmt.Errorf("event id: %w", err)
	}
	return "evt_" + hex.EncodeToString(b[:]), nil
}

// Sign returns the Certmint-Signature value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a Certmint-Signature value in constant time; receivers
// written in Go can use it as is.
func Verify(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// ParseEvents turns a comma-separated list of event types into the
// canonical form stored with an endpoint: sorted, unique, "" for all.
// "all" and "*" mean every event.
func ParseEvents(list string) (string, error) {
	var out []string
	for _, e := range strings.Split(list, ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "":
			continue
		case e == "all" || e == "*":
			return "", nil
		case !slices.Contains(Types, e):
			return "", fmt.Errorf("unknown event %q; the events are %s", e, strings.Join(Types, ", "))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ","), nil
}

// Wants reports whether an endpoint subscribed to events (as stored by
// ParseEvents) gets an event of type typ.
func Wants(events, typ string) bool {
	return events == "" || slices.Contains(strings.Split(events, ","), typ)
}
