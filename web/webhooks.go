package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/certmint/certmint/acme/validate"
	"github.com/certmint/certmint/internal/audit"
	"github.com/certmint/certmint/internal/webhook"
	"github.com/certmint/certmint/storage"
)

// minWebhookSecret matches `certmint admin webhook add`: receivers must
// not verify against a guessable key.
const minWebhookSecret = 16

type webhookForm struct {
	URL    string
	Events []string
	Error  string
	Field  string // "url", "secret" or "events": where Error belongs
}

type webhooksData struct {
	Endpoints  []storage.WebhookEndpoint
	Deliveries []storage.WebhookDelivery
	Status     string
	Next       string
	First      bool
	Types      []string
	Form       webhookForm
}

// webhooks is /webhooks: the endpoints, the form to add one, and the
// deliveries newest first (status filter: pending, delivered, failed), so
// an operator sees what failed and why.
func (s *server) webhooks(w http.ResponseWriter, r *http.Request) error {
	return s.renderWebhooks(w, r, http.StatusOK, webhookForm{})
}

func (s *server) renderWebhooks(w http.ResponseWriter, r *http.Request, status int, form webhookForm) error {
	q := r.URL.Query()
	d := webhooksData{Status: q.Get("status"), First: q.Get("after") == "", Types: webhook.Types, Form: form}
	switch d.Status {
	case "", storage.DeliveryPending, storage.DeliveryDelivered, storage.DeliveryFailed:
	default:
		return errorf(http.StatusBadRequest, "Unknown delivery status %q.", d.Status)
	}
	var err error
	if d.Endpoints, err = s.store.ListWebhooks(r.Context()); err != nil {
		return err
	}
	list, err := s.store.ListDeliveries(r.Context(), d.Status, storage.Page{After: q.Get("after"), Limit: pageSize + 1})
	if err != nil {
		return err
	}
	d.Deliveries, d.Next = onePage(list, func(x *storage.WebhookDelivery) string { return x.ID })
	s.render(w, r, status, "webhooks", "Webhooks", "webhooks", d)
	return nil
}

// webhookAdd adds an endpoint. The secret is posted once and never shown
// again; a form that fails keeps the URL and events, not the secret.
func (s *server) webhookAdd(w http.ResponseWriter, r *http.Request) error {
	form := webhookForm{URL: strings.TrimSpace(r.PostForm.Get("url")), Events: r.PostForm["events"]}
	secret := strings.TrimSpace(r.PostForm.Get("secret"))
	events, err := webhook.ParseEvents(strings.Join(form.Events, ","))
	switch {
	case form.URL == "":
		form.Error, form.Field = "Give the receiver's URL, e.g. https://hooks.example.internal/certmint.", "url"
	case validate.CheckURL(form.URL, nil, nil) != nil:
		form.Error, form.Field = "URL: "+validate.CheckURL(form.URL, nil, nil).Error()+".", "url"
	case len(secret) < minWebhookSecret:
		form.Error, form.Field = "The secret must have at least 16 characters (e.g. the output of openssl rand -hex 32).", "secret"
	case err != nil:
		form.Error, form.Field = "Events: "+err.Error()+".", "events"
	}
	if form.Error != "" {
		return s.renderWebhooks(w, r, http.StatusBadRequest, form)
	}
	actor := ""
	if se := sessionFrom(r.Context()); se != nil {
		actor = se.Username
	}
	ep, err := s.store.AddWebhook(r.Context(), form.URL, secret, events,
		audit.Event{At: s.now(), Actor: actor, Action: audit.WebhookAdd, Detail: form.URL, RemoteAddr: remoteIP(r)})
	if err != nil {
		return err
	}
	s.log.Info("webhook endpoint added from the console", "endpoint", ep.ID, "user", actor)
	http.Redirect(w, r, "/webhooks", http.StatusSeeOther)
	return nil
}

func (s *server) webhookRemove(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	actor := ""
	if se := sessionFrom(r.Context()); se != nil {
		actor = se.Username
	}
	err := s.store.RemoveWebhook(r.Context(), id,
		audit.Event{At: s.now(), Actor: actor, Action: audit.WebhookRemove, Target: audit.Webhook(id), RemoteAddr: remoteIP(r)})
	if errors.Is(err, storage.ErrNotFound) {
		return errorf(http.StatusNotFound, "This webhook endpoint was removed already.")
	}
	if err != nil {
		return err
	}
	s.log.Info("webhook endpoint removed from the console", "endpoint", id, "user", actor)
	http.Redirect(w, r, "/webhooks", http.StatusSeeOther)
	return nil
}
