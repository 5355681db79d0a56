package storage

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/certmint/certmint/acme"
)

// CreateAuthorization inserts a pre-authorization (RFC 8555 §7.4.1) and
// its challenges in one transaction.
func (s *gormStore) CreateAuthorization(ctx context.Context, a *acme.Authorization) error {
	authzs := []acme.Authorization{*a}
	if err := s.tx(ctx, func(tx *gorm.DB) error { return insertAuthzs(ctx, tx, authzs, s.now()) }); err != nil {
		return fmt.Errorf("create authorization: %w", err)
	}
	*a = authzs[0]
	return nil
}

// GetAuthorization reads the authorization and its challenges.
func (s *gormStore) GetAuthorization(ctx context.Context, id string) (*acme.Authorization, error) {
	a, err := s.authzWithChallenges(s.r(ctx), id)
	if err != nil {
		return nil, fmt.Errorf("get authorization %s: %w", id, err)
	}
	return a, nil
}

func (s *gormStore) authzWithChallenges(db *gorm.DB, id string) (*acme.Authorization, error) {
	ctx := db.Statement.Context
	row, err := getRow[authzRow](ctx, db, id)
	if err != nil {
		return nil, err
	}
	var chals []challengeRow
	err = queryRows(ctx, db, "WHERE authz_id = ? ORDER BY position", []any{id}, func(c *challengeRow) {
		chals = append(chals, *c)
	})
	if err != nil {
		return nil, err
	}
	return row.toModel(chals), nil
}

// FindReusableAuthorization serves authorization reuse (and
// pre-authorization) through the partial idx_authz_reusable index; it
// picks the one that stays valid longest.
func (s *gormStore) FindReusableAuthorization(ctx context.Context, accountID, typ, value string, wildcard bool, validUntil time.Time) (*acme.Authorization, error) {
	db := s.r(ctx)
	var ids []string
	// authzValid is a literal, not a bound value: the index is partial.
	err := db.Model(&authzRow{}).Where("account_id = ? AND type = ? AND value = ? AND wildcard = ? AND "+authzValid+" AND expires > ?",
		accountID, typ, value, wildcard, ts(validUntil)).Order("expires DESC").Limit(1).Pluck("id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("find reusable authorization: %w", mapErr(err))
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("find reusable authorization: %w", ErrNotFound)
	}
	a, err := s.authzWithChallenges(db, ids[0])
	if err != nil {
		return nil, fmt.Errorf("find reusable authorization: %w", err)
	}
	return a, nil
}

// GetChallenge returns the challenge and its authorization with all of
// its challenges, among them the one asked for: two queries, the sibling
// challenges found through the one asked for.
func (s *gormStore) GetChallenge(ctx context.Context, id string) (*acme.Challenge, *acme.Authorization, error) {
	db := s.r(ctx)
	var chals []challengeRow
	err := queryRows(ctx, db, "WHERE authz_id = (SELECT authz_id FROM challenges WHERE id = ?) ORDER BY position",
		[]any{id}, func(c *challengeRow) { chals = append(chals, *c) })
	if err != nil {
		return nil, nil, fmt.Errorf("get challenge %s: %w", id, err)
	}
	if len(chals) == 0 {
		return nil, nil, fmt.Errorf("get challenge %s: %w", id, ErrNotFound)
	}
	row, err := getRow[authzRow](ctx, db, chals[0].AuthzID)
	if err != nil {
		return nil, nil, fmt.Errorf("get challenge %s: %w", id, err)
	}
	a := row.toModel(chals)
	for i := range a.Challenges {
		if a.Challenges[i].ID == id {
			c := a.Challenges[i]
			return &c, a, nil
		}
	}
	return nil, nil, fmt.Errorf("get challenge %s: %w", id, ErrNotFound)
}

// StartChallenge is one conditional UPDATE that also requires the
// authorization to be pending (RFC 8555 §7.5.1).
func (s *gormStore) StartChallenge(ctx context.Context, challengeID string) error {
	// A transaction of one statement, so that on SQLite it shares a commit
	// with its neighbours (groupcommit.go).
	err := s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&challengeRow{}).Where(`id = ? AND status = ?
			AND EXISTS (SELECT 1 FROM authorizations a WHERE a.id = challenges.authz_id AND a.status = ?)`,
			challengeID, acme.StatusPending, acme.StatusPending).Update("status", acme.StatusProcessing)
		return casDone(tx, res, "challenges", challengeID)
	})
	if err != nil {
		return fmt.Errorf("start challenge: %w", err)
	}
	return nil
}

// CompleteChallenge runs in one transaction of at most four statements
// (five on Postgres): the challenge, its authorization, then the orders
// using it. If the authorization left pending meanwhile (deactivated,
// expired), only the challenge result is recorded.
//
// On Postgres the orders are locked before the readiness check: two
// authorizations of one order completing at the same time would otherwise
// each see the other still pending (READ COMMITTED) and leave the order
// pending forever. SQLite serializes write transactions, so it needs no lock.
func (s *gormStore) CompleteChallenge(ctx context.Context, challengeID string, failure *acme.Problem, at time.Time) error {
	valid := failure == nil
	chStatus, azStatus := acme.StatusValid, acme.StatusValid
	var validated *time.Time
	problemJSON := encodeProblem(failure)
	if valid {
		v := ts(at)
		validated = &v
	} else {
		chStatus, azStatus = acme.StatusInvalid, acme.StatusInvalid
	}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var authzIDs []string
		res := tx.Raw(`UPDATE challenges SET status = ?, validated = ?, error = ?
			WHERE id = ? AND status IN (?, ?) RETURNING authz_id`,
			chStatus, validated, problemJSON, challengeID, acme.StatusPending, acme.StatusProcessing).Scan(&authzIDs)
		if res.Error != nil {
			return res.Error
		}
		if len(authzIDs) == 0 {
			return casDone(tx, res, "challenges", challengeID)
		}
		authzID := authzIDs[0]
		ar := tx.Model(&authzRow{}).Where("id = ? AND status = ?", authzID, acme.StatusPending).Update("status", azStatus)
		if ar.Error != nil || ar.RowsAffected == 0 {
			return mapErr(ar.Error)
		}
		if !valid {
			if err := recordValidationFailed(tx, authzID, challengeID, failure, at); err != nil {
				return err
			}
			return mapErr(tx.Exec(`UPDATE orders SET status = ?, error = ?
				WHERE id IN (`+pendingOrdersOf+`)`,
				acme.StatusInvalid, problemJSON, authzID, acme.StatusPending).Error)
		}
		if s.engine == enginePostgres {
			var locked []string
			if err := tx.Raw(`SELECT id FROM orders WHERE status = ?
				AND id IN (SELECT order_id FROM order_authzs WHERE authz_id = ?)
				ORDER BY id FOR UPDATE`, acme.StatusPending, authzID).Scan(&locked).Error; err != nil {
				return err
			}
			if len(locked) == 0 {
				return nil
			}
		}
		return mapErr(tx.Exec(`UPDATE orders SET status = ?
			WHERE id IN (`+pendingOrdersOf+`)
			AND NOT EXISTS (SELECT 1 FROM order_authzs oa JOIN authorizations a ON a.id = oa.authz_id
				WHERE oa.order_id = orders.id AND a.status <> ?)`,
			acme.StatusReady, authzID, acme.StatusPending, acme.StatusValid).Error)
	})
	if err != nil {
		return fmt.Errorf("complete challenge %s: %w", challengeID, err)
	}
	return nil
}

// DeactivateAuthorization (RFC 8555 §7.5.2) also invalidates the pending
// and ready orders that need the authorization, in the same transaction.
func (s *gormStore) DeactivateAuthorization(ctx context.Context, id string) error {
	err := s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&authzRow{}).Where("id = ? AND status IN ?", id, []string{acme.StatusPending, acme.StatusValid}).
			Update("status", acme.StatusDeactivated)
		if err := casDone(tx, res, "authorizations", id); err != nil {
			return err
		}
		return tx.Exec(`UPDATE orders SET status = ?
			WHERE id IN (SELECT o.id FROM order_authzs oa CROSS JOIN orders o
				WHERE o.id = oa.order_id AND oa.authz_id = ? AND o.status IN ?)`,
			acme.StatusInvalid, id, []string{acme.StatusPending, acme.StatusReady}).Error
	})
	if err != nil {
		return fmt.Errorf("deactivate authorization: %w", err)
	}
	return nil
}

// pendingOrdersOf selects the pending orders that use one authorization
// (parameters: authorization ID, pending status). The outer UPDATE then
// matches by primary key only: with "status = ?" next to "id IN (...)",
// SQLite's planner walked every pending order of the server instead.
// CROSS JOIN makes SQLite start from the authorization's links (Postgres
// plans it like any join).
const pendingOrdersOf = `SELECT o.id FROM order_authzs oa CROSS JOIN orders o
	WHERE o.id = oa.order_id AND oa.authz_id = ? AND o.status = ?`
