package acme

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/certmint/certmint/acme/eab"
	"github.com/certmint/certmint/acme/revocation"
	"github.com/certmint/certmint/internal/audit"
)

// fakeStore is an in-memory Store for handler tests. It keeps the
// contract of each method as acme/store.go states it (conditional writes,
// ErrNotFound and ErrConflict), with one mutex standing in for the
// database's transactions. Values are copied in and out, so a handler
// cannot change stored state without a store call, as with a database.
type fakeStore struct {
	mu       sync.Mutex
	shared   bool
	nonces   map[string]time.Time
	settings map[string]string
	accounts map[string]Account
	orders   map[string]Order
	authzs   map[string]Authorization // challenges inside
	certs    map[string]Certificate
	eabKeys  map[string]eab.Key
	persist  map[string]DNSPersistMatch // by challenge ID
	audit    []audit.Event

	// failNext, when set, makes the next store call fail with this error
	// (for the database-down answers).
	failNext error
	// failOn makes the next call of the named method fail with its error,
	// for a failure after other calls succeeded; see failOnce.
	failOn map[string]error
}

// failOnce makes the next call of method (e.g. "CreateAccount") fail
// with err.
func (f *fakeStore) failOnce(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failOn == nil {
		f.failOn = map[string]error{}
	}
	f.failOn[method] = err
}

// injected returns and clears method's pending failure; the caller holds
// the mutex.
func (f *fakeStore) injected(method string) error {
	err := f.failOn[method]
	delete(f.failOn, method)
	if p, ok := err.(panicError); ok {
		panic(string(p))
	}
	return err
}

// panicError, injected with failOnce, makes the method panic instead.
type panicError string

func (p panicError) Error() string { return string(p) }

var _ Store = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{
		nonces: map[string]time.Time{}, settings: map[string]string{}, accounts: map[string]Account{},
		orders: map[string]Order{}, authzs: map[string]Authorization{}, certs: map[string]Certificate{},
		eabKeys: map[string]eab.Key{}, persist: map[string]DNSPersistMatch{},
	}
}

// lock takes the mutex and returns a pending injected failure, if any.
func (f *fakeStore) lock() error {
	f.mu.Lock()
	err := f.failNext
	f.failNext = nil
	return err
}

func notFound(what, id string) error { return fmt.Errorf("%s %s: %w", what, id, ErrNotFound) }
func conflict(what, id string) error { return fmt.Errorf("%s %s: %w", what, id, ErrConflict) }
func (f *fakeStore) Shared() bool    { return f.shared }
func copyAuthz(a Authorization) *Authorization {
	a.Challenges = append([]Challenge(nil), a.Challenges...)
	return &a
}

func (f *fakeStore) UseNonce(_ context.Context, nonce string, expires time.Time) error {
	if err := f.lock(); err != nil {
		defer f.mu.Unlock()
		return err
	}
	defer f.mu.Unlock()
	if err := f.injected("UseNonce"); err != nil {
		return err
	}
	if _, ok := f.nonces[nonce]; ok {
		return conflict("nonce", nonce)
	}
	f.nonces[nonce] = expires
	return nil
}

func (f *fakeStore) GetSetting(_ context.Context, key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.settings[key]
	if !ok {
		return "", notFound("setting", key)
	}
	return v, nil
}

func (f *fakeStore) InitSetting(_ context.Context, key, value string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.settings[key]; ok {
		return v, nil
	}
	f.settings[key] = value
	return value, nil
}

func (f *fakeStore) CreateAccount(_ context.Context, a *Account) error {
	if err := f.lock(); err != nil {
		defer f.mu.Unlock()
		return err
	}
	defer f.mu.Unlock()
	if err := f.injected("CreateAccount"); err != nil {
		return err
	}
	for _, x := range f.accounts {
		if x.KeyThumbprint == a.KeyThumbprint {
			return conflict("account key", a.KeyThumbprint)
		}
	}
	if a.ID == "" {
		a.ID = NewID()
	}
	f.accounts[a.ID] = *a
	return nil
}

func (f *fakeStore) GetAccount(_ context.Context, id string) (*Account, error) {
	if err := f.lock(); err != nil {
		defer f.mu.Unlock()
		return nil, err
	}
	defer f.mu.Unlock()
	a, ok := f.accounts[id]
	if !ok {
		return nil, notFound("account", id)
	}
	return &a, nil
}

func (f *fakeStore) GetAccountByThumbprint(_ context.Context, thumbprint string) (*Account, error) {
	if err := f.lock(); err != nil {
		defer f.mu.Unlock()
		return nil, err
	}
	defer f.mu.Unlock()
	for _, a := range f.accounts {
		if a.KeyThumbprint == thumbprint {
			return &a, nil
		}
	}
	return nil, notFound("account key", thumbprint)
}

func (f *fakeStore) UpdateAccountContact(_ context.Context, id string, contact []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("UpdateAccountContact"); err != nil {
		return err
	}
	a, ok := f.accounts[id]
	switch {
	case !ok:
		return notFound("account", id)
	case a.Status != StatusValid:
		return conflict("account", id)
	}
	a.Contact = contact
	f.accounts[id] = a
	return nil
}

func (f *fakeStore) DeactivateAccount(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("DeactivateAccount"); err != nil {
		return err
	}
	a, ok := f.accounts[id]
	switch {
	case !ok:
		return notFound("account", id)
	case a.Status != StatusValid:
		return conflict("account", id)
	}
	a.Status = StatusDeactivated
	f.accounts[id] = a
	return nil
}

func (f *fakeStore) ChangeAccountKey(_ context.Context, id, oldThumbprint, newThumbprint, newJWK string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("ChangeAccountKey"); err != nil {
		return err
	}
	a, ok := f.accounts[id]
	if !ok {
		return notFound("account", id)
	}
	if a.KeyThumbprint != oldThumbprint || a.Status != StatusValid {
		return conflict("account", id)
	}
	for _, x := range f.accounts {
		if x.KeyThumbprint == newThumbprint {
			return conflict("account key", newThumbprint)
		}
	}
	a.KeyThumbprint, a.KeyJWK = newThumbprint, newJWK
	f.accounts[id] = a
	return nil
}

func (f *fakeStore) ListOrderIDs(_ context.Context, accountID, after string, limit int) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("ListOrderIDs"); err != nil {
		return nil, err
	}
	ids := []string{}
	for id, o := range f.orders {
		if o.AccountID == accountID && id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	return ids, nil
}

func (f *fakeStore) GetEABKey(_ context.Context, id string) (*eab.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("GetEABKey"); err != nil {
		return nil, err
	}
	k, ok := f.eabKeys[id]
	if !ok {
		return nil, notFound("EAB key", id)
	}
	return &k, nil
}

func (f *fakeStore) BindEABKey(_ context.Context, id, accountID string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("BindEABKey"); err != nil {
		return err
	}
	k, ok := f.eabKeys[id]
	switch {
	case !ok:
		return notFound("EAB key", id)
	case k.Revoked, !k.Reusable && k.UsedBy != "":
		return conflict("EAB key", id)
	}
	if k.UsedBy == "" {
		k.UsedBy, k.UsedAt = accountID, &at
	}
	f.eabKeys[id] = k
	return nil
}

func (f *fakeStore) UnbindEABKey(_ context.Context, id, accountID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k, ok := f.eabKeys[id]; ok && k.UsedBy == accountID {
		k.UsedBy, k.UsedAt = "", nil
		f.eabKeys[id] = k
	}
	return nil
}

func (f *fakeStore) CreateOrder(_ context.Context, o *Order, newAuthzs []Authorization) error {
	if err := f.lock(); err != nil {
		defer f.mu.Unlock()
		return err
	}
	defer f.mu.Unlock()
	if err := f.injected("CreateOrder"); err != nil {
		return err
	}
	if o.ID == "" {
		o.ID = NewID()
	}
	for i := range newAuthzs {
		f.putAuthz(&newAuthzs[i])
	}
	f.orders[o.ID] = *o
	return nil
}

// putAuthz stores a with its challenges; the caller holds the mutex.
func (f *fakeStore) putAuthz(a *Authorization) {
	if a.ID == "" {
		a.ID = NewID()
	}
	for i := range a.Challenges {
		if a.Challenges[i].ID == "" {
			a.Challenges[i].ID = NewID()
		}
		a.Challenges[i].AuthzID = a.ID
	}
	f.authzs[a.ID] = *copyAuthz(*a)
}

func (f *fakeStore) GetOrder(_ context.Context, id string) (*Order, error) {
	if err := f.lock(); err != nil {
		defer f.mu.Unlock()
		return nil, err
	}
	defer f.mu.Unlock()
	if err := f.injected("GetOrder"); err != nil {
		return nil, err
	}
	o, ok := f.orders[id]
	if !ok {
		return nil, notFound("order", id)
	}
	o.AuthzIDs = append([]string(nil), o.AuthzIDs...)
	return &o, nil
}

func (f *fakeStore) CreateAuthorization(_ context.Context, a *Authorization) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("CreateAuthorization"); err != nil {
		return err
	}
	f.putAuthz(a)
	return nil
}

func (f *fakeStore) FindReusableAuthorization(_ context.Context, accountID, typ, value string, wildcard bool, validUntil time.Time) (*Authorization, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("FindReusableAuthorization"); err != nil {
		return nil, err
	}
	var best *Authorization
	for _, a := range f.authzs {
		if a.AccountID == accountID && a.Type == typ && a.Value == value && a.Wildcard == wildcard &&
			a.Status == StatusValid && a.Expires.After(validUntil) && (best == nil || a.Expires.After(best.Expires)) {
			best = copyAuthz(a)
		}
	}
	if best == nil {
		return nil, notFound("reusable authorization", value)
	}
	return best, nil
}

func (f *fakeStore) CountPendingAuthorizations(_ context.Context, accountID string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("CountPendingAuthorizations"); err != nil {
		return 0, err
	}
	var n int64
	for _, a := range f.authzs {
		if a.AccountID == accountID && a.Status == StatusPending {
			n++
		}
	}
	return n, nil
}

func (f *fakeStore) GetAuthorization(_ context.Context, id string) (*Authorization, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("GetAuthorization"); err != nil {
		return nil, err
	}
	a, ok := f.authzs[id]
	if !ok {
		return nil, notFound("authorization", id)
	}
	return copyAuthz(a), nil
}

// challengeAt finds challenge id; the caller holds the mutex.
func (f *fakeStore) challengeAt(id string) (Authorization, int, bool) {
	for _, a := range f.authzs {
		for i := range a.Challenges {
			if a.Challenges[i].ID == id {
				return a, i, true
			}
		}
	}
	return Authorization{}, 0, false
}

func (f *fakeStore) GetChallenge(_ context.Context, id string) (*Challenge, *Authorization, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("GetChallenge"); err != nil {
		return nil, nil, err
	}
	a, i, ok := f.challengeAt(id)
	if !ok {
		return nil, nil, notFound("challenge", id)
	}
	ch := a.Challenges[i]
	return &ch, copyAuthz(a), nil
}

func (f *fakeStore) StartChallenge(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, i, ok := f.challengeAt(id)
	switch {
	case !ok:
		return notFound("challenge", id)
	case a.Status != StatusPending || a.Challenges[i].Status != StatusPending:
		return conflict("challenge", id)
	}
	a.Challenges[i].Status = StatusProcessing
	f.authzs[a.ID] = a
	return nil
}

func (f *fakeStore) CompleteChallenge(_ context.Context, id string, failure *Problem, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("CompleteChallenge"); err != nil {
		return err
	}
	a, i, ok := f.challengeAt(id)
	if !ok {
		return notFound("challenge", id)
	}
	ch := &a.Challenges[i]
	if ch.Status != StatusPending && ch.Status != StatusProcessing {
		return conflict("challenge", id)
	}
	status := StatusValid
	if failure != nil {
		status = StatusInvalid
	} else {
		ch.Validated = &at
	}
	ch.Status, ch.Error = status, failure
	if a.Status != StatusPending {
		f.authzs[a.ID] = a
		return nil
	}
	a.Status = status
	f.authzs[a.ID] = a
	for oid, o := range f.orders {
		if o.Status != StatusPending || !contains(o.AuthzIDs, a.ID) {
			continue
		}
		if failure != nil {
			o.Status, o.Error = StatusInvalid, failure
		} else if f.allValid(o.AuthzIDs) {
			o.Status = StatusReady
		}
		f.orders[oid] = o
	}
	return nil
}

func (f *fakeStore) allValid(ids []string) bool {
	for _, id := range ids {
		if f.authzs[id].Status != StatusValid {
			return false
		}
	}
	return true
}

func (f *fakeStore) DeactivateAuthorization(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("DeactivateAuthorization"); err != nil {
		return err
	}
	a, ok := f.authzs[id]
	switch {
	case !ok:
		return notFound("authorization", id)
	case a.Status != StatusPending && a.Status != StatusValid:
		return conflict("authorization", id)
	}
	a.Status = StatusDeactivated
	f.authzs[id] = a
	for oid, o := range f.orders {
		if (o.Status == StatusPending || o.Status == StatusReady) && contains(o.AuthzIDs, id) {
			o.Status = StatusInvalid
			f.orders[oid] = o
		}
	}
	return nil
}

func (f *fakeStore) ListProcessingChallenges(_ context.Context, limit int) ([]Challenge, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Challenge
	for _, a := range f.authzs {
		for _, ch := range a.Challenges {
			if ch.Status == StatusProcessing && len(out) < limit {
				out = append(out, ch)
			}
		}
	}
	return out, nil
}

func (f *fakeStore) CompleteFinalize(_ context.Context, orderID string, cert *Certificate, events ...audit.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("CompleteFinalize"); err != nil {
		return err
	}
	o, ok := f.orders[orderID]
	if !ok {
		return notFound("order", orderID)
	}
	if o.Status != StatusReady {
		return conflict("order", orderID)
	}
	for _, c := range f.certs {
		if c.Serial == cert.Serial {
			return conflict("serial", cert.Serial)
		}
	}
	if cert.ID == "" {
		cert.ID = NewID()
	}
	o.Status, o.CertificateID = StatusValid, cert.ID
	f.orders[orderID] = o
	f.certs[cert.ID] = *cert
	f.audit = append(f.audit, events...)
	return nil
}

func (f *fakeStore) GetCertificate(_ context.Context, id string) (*Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("GetCertificate"); err != nil {
		return nil, err
	}
	c, ok := f.certs[id]
	if !ok {
		return nil, notFound("certificate", id)
	}
	return &c, nil
}

func (f *fakeStore) GetCertificateBySerial(_ context.Context, serialHex string) (*Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("GetCertificateBySerial"); err != nil {
		return nil, err
	}
	for _, c := range f.certs {
		if c.Serial == strings.ToLower(serialHex) {
			return &c, nil
		}
	}
	return nil, notFound("certificate serial", serialHex)
}

func (f *fakeStore) MarkReplaced(_ context.Context, certID, orderID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("MarkReplaced"); err != nil {
		return err
	}
	c, ok := f.certs[certID]
	if !ok {
		return notFound("certificate", certID)
	}
	if c.ReplacedBy != "" && f.orders[c.ReplacedBy].Status != StatusInvalid {
		return conflict("certificate", certID)
	}
	c.ReplacedBy = orderID
	f.certs[certID] = c
	return nil
}

func (f *fakeStore) ClearReplaced(_ context.Context, certID, orderID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.certs[certID]; ok && c.ReplacedBy == orderID {
		c.ReplacedBy = ""
		f.certs[certID] = c
	}
	return nil
}

func (f *fakeStore) RevokeCertificate(_ context.Context, id string, reason int, at time.Time, e audit.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.injected("RevokeCertificate"); err != nil {
		return err
	}
	c, ok := f.certs[id]
	if !ok {
		return notFound("certificate", id)
	}
	if c.Revoked {
		return fmt.Errorf("%w: %w", revocation.ErrAlreadyRevoked, conflict("certificate", id))
	}
	c.Revoked, c.RevokedAt, c.RevocationReason = true, &at, reason
	f.certs[id] = c
	f.audit = append(f.audit, e)
	return nil
}

// expireNonces deletes used nonces whose expiry passed before now, as the
// store's sweep does.
func (f *fakeStore) expireNonces(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for n, exp := range f.nonces {
		if exp.Before(now) {
			delete(f.nonces, n)
		}
	}
}

func (f *fakeStore) RecordDNSPersistMatch(_ context.Context, m DNSPersistMatch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.persist[m.ChallengeID] = m
	if a, ok := f.authzs[m.AuthzID]; ok && m.PersistUntil != nil && a.Expires.After(*m.PersistUntil) {
		a.Expires = *m.PersistUntil
		f.authzs[a.ID] = a
	}
	return nil
}
