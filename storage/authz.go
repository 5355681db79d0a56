package storage

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

func normAuthz(a *Authorization) {
	a.Expires = utc(a.Expires)
	a.CreatedAt = utc(a.CreatedAt)
	for i := range a.Challenges {
		a.Challenges[i].Validated = utcp(a.Challenges[i].Validated)
	}
}

// CreateAuthorization inserts a pre-authorization (RFC 8555 §7.4.1) and
// its challenges in one transaction.
func (s *gormStore) CreateAuthorization(ctx context.Context, a *Authorization) error {
	authzs := []Authorization{*a}
	if err := s.tx(ctx, func(tx *gorm.DB) error { return insertAuthzs(tx, authzs, s.now()) }); err != nil {
		return fmt.Errorf("create authorization: %w", err)
	}
	*a = authzs[0]
	return nil
}

// GetAuthorization is one query with its challenges (hotread.go).
func (s *gormStore) GetAuthorization(ctx context.Context, id string) (*Authorization, error) {
	a, err := s.hot.authzRows(ctx, authzByID, id)
	if err != nil {
		return nil, fmt.Errorf("get authorization %s: %w", id, err)
	}
	return a, nil
}

// FindReusableAuthorization serves authorization reuse (and
// pre-authorization) through the partial idx_authz_reusable index; it picks the one
// that stays valid longest. Hand-written (hotread.go): every new order
// asks it once per identifier.
func (s *gormStore) FindReusableAuthorization(ctx context.Context, accountID, typ, value string, wildcard bool, validUntil time.Time) (*Authorization, error) {
	a, err := s.hot.findReusable(ctx, accountID, typ, value, wildcard, validUntil)
	if err != nil {
		return nil, fmt.Errorf("find reusable authorization: %w", err)
	}
	return a, nil
}

// GetChallenge is one query (hotread.go): the challenge's authorization
// with all of its challenges, among them the one asked for.
func (s *gormStore) GetChallenge(ctx context.Context, id string) (*Challenge, *Authorization, error) {
	a, err := s.hot.authzRows(ctx, authzByChallenge, id)
	if err != nil {
		return nil, nil, fmt.Errorf("get challenge %s: %w", id, err)
	}
	c, err := challengeOf(a, id)
	if err != nil {
		return nil, nil, fmt.Errorf("get challenge: %w", err)
	}
	return c, a, nil
}

// StartChallenge is one conditional UPDATE that also requires the
// authorization to be pending (RFC 8555 §7.5.1).
func (s *gormStore) StartChallenge(ctx context.Context, challengeID string) error {
	// A transaction of one statement, so that on SQLite it shares a commit
	// with its neighbours (groupcommit.go).
	err := s.tx(ctx, func(tx *gorm.DB) error {
		res, err := rawExec(tx, `UPDATE challenges SET status = ? WHERE id = ? AND status = ?
			AND EXISTS (SELECT 1 FROM authorizations a WHERE a.id = challenges.authz_id AND a.status = ?)`,
			StatusProcessing, challengeID, StatusPending, StatusPending)
		return casRaw(tx, res, err, "challenges", challengeID)
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
func (s *gormStore) CompleteChallenge(ctx context.Context, challengeID string, valid bool, problemJSON string, at time.Time) error {
	chStatus, azStatus := StatusValid, StatusValid
	var validated *time.Time
	if valid {
		v := ts(at)
		validated, problemJSON = &v, ""
	} else {
		chStatus, azStatus = StatusInvalid, StatusInvalid
	}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var authzIDs []string
		res := tx.Raw(`UPDATE challenges SET status = ?, validated = ?, error = ?
			WHERE id = ? AND status IN (?, ?) RETURNING authz_id`,
			chStatus, validated, problemJSON, challengeID, StatusPending, StatusProcessing).Scan(&authzIDs)
		if res.Error != nil {
			return res.Error
		}
		if len(authzIDs) == 0 {
			return casDone(tx, res, "challenges", challengeID)
		}
		authzID := authzIDs[0]
		ar, err := rawExec(tx, `UPDATE authorizations SET status = ? WHERE id = ? AND status = ?`,
			azStatus, authzID, StatusPending)
		if err != nil {
			return err
		}
		if n, err := ar.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if !valid {
			_, err := rawExec(tx, `UPDATE orders SET status = ?, error = ?
				WHERE id IN (`+pendingOrdersOf+`)`,
				StatusInvalid, problemJSON, authzID, StatusPending)
			return err
		}
		if s.engine == enginePostgres {
			var locked []string
			if err := tx.Raw(`SELECT id FROM orders WHERE status = ?
				AND id IN (SELECT order_id FROM order_authzs WHERE authz_id = ?)
				ORDER BY id FOR UPDATE`, StatusPending, authzID).Scan(&locked).Error; err != nil {
				return err
			}
			if len(locked) == 0 {
				return nil
			}
		}
		_, err = rawExec(tx, `UPDATE orders SET status = ?
			WHERE id IN (`+pendingOrdersOf+`)
			AND NOT EXISTS (SELECT 1 FROM order_authzs oa JOIN authorizations a ON a.id = oa.authz_id
				WHERE oa.order_id = orders.id AND a.status <> ?)`,
			StatusReady, authzID, StatusPending, StatusValid)
		return err
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
		res := tx.Model(&Authorization{}).Where("id = ? AND status IN ?", id, []string{StatusPending, StatusValid}).
			Update("status", StatusDeactivated)
		if err := casDone(tx, res, "authorizations", id); err != nil {
			return err
		}
		return tx.Exec(`UPDATE orders SET status = ?
			WHERE id IN (SELECT o.id FROM order_authzs oa CROSS JOIN orders o
				WHERE o.id = oa.order_id AND oa.authz_id = ? AND o.status IN ?)`,
			StatusInvalid, id, []string{StatusPending, StatusReady}).Error
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
