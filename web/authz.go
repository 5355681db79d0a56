package web

import (
	"context"
	"net/http"
	"time"

	"github.com/certmint/certmint/acme"
)

type authzView struct {
	acme.Authorization
	Challenges []challengeView
	Now        time.Time
}

type challengeView struct {
	acme.Challenge
	Problem *problem
	// Persist is the _validation-persist record a dns-persist-01 challenge
	// matched (draft-ietf-acme-dns-persist), so the operator sees which
	// published record the authorization rests on.
	Persist *acme.DNSPersistMatch
}

// authzView loads an authorization with its challenges, their problems
// and, for dns-persist-01, the record that matched: what the order and
// authorization pages show.
func (s *server) authzView(ctx context.Context, id string) (authzView, error) {
	a, err := s.store.GetAuthorization(ctx, id)
	if err != nil {
		return authzView{}, err
	}
	matches, err := s.store.DNSPersistMatches(ctx, []string{a.ID})
	if err != nil {
		return authzView{}, err
	}
	v := authzView{Authorization: *a, Now: s.now()}
	for _, c := range a.Challenges {
		cv := challengeView{Challenge: c, Problem: problemView(c.Error)}
		if m, ok := matches[c.ID]; ok {
			cv.Persist = &m
		}
		v.Challenges = append(v.Challenges, cv)
	}
	return v, nil
}

// authz is an authorization's page: its identifier, state and challenges.
func (s *server) authz(w http.ResponseWriter, r *http.Request) error {
	v, err := s.authzView(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	name := v.Value
	if v.Wildcard {
		name = "*." + name
	}
	s.render(w, r, http.StatusOK, "authz", "Authorization "+name, "orders", v)
	return nil
}
