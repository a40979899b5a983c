package sqlstore

// 1.1 account schema contract (schema set "tokens", migration 0003; SQLite's
// sqlite/migrations/tokens/0003_legacy_users.sql is the reference):
//
//	legacy_users
//	  username            VARCHAR(100) primary key, compared bytewise
//	  email               VARCHAR(255) NOT NULL DEFAULT ''
//	  password_hash       VARCHAR(255) NOT NULL   self-describing (weave.LegacyUserStore)
//	  created_at          BIGINT NOT NULL         ms
//	  password_changed_at BIGINT NOT NULL         ms
//	  reset_code_hash     VARCHAR(64) NOT NULL DEFAULT ''  hex SHA-256 of a reset key
//	  reset_expires_at    BIGINT NOT NULL DEFAULT 0        ms

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/weave-sync/weave"
)

// LegacyUserStore implements weave.LegacyUserStore.
type LegacyUserStore struct {
	db  *DB
	now func() time.Time
}

var _ weave.LegacyUserStore = (*LegacyUserStore)(nil)

// NewLegacyUserStore returns the 1.1 account store on db, whose "tokens"
// schema set must be migrated (usually the TokenDB's DB).
func NewLegacyUserStore(db *DB) *LegacyUserStore { return &LegacyUserStore{db: db, now: time.Now} }

const legacyUserCols = `username, email, password_hash, created_at, password_changed_at, reset_code_hash, reset_expires_at`

func scanLegacyUser(r rowScanner) (weave.LegacyUser, error) {
	var u weave.LegacyUser
	err := r.Scan(&u.Username, &u.Email, &u.PasswordHash, &u.CreatedAt, &u.PasswordChangedAt, &u.ResetCodeHash, &u.ResetExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return u, weave.ErrNotFound
	}
	return u, err
}

// CreateLegacyUser implements weave.LegacyUserStore.
func (s *LegacyUserStore) CreateLegacyUser(ctx context.Context, u weave.LegacyUser) error {
	if !weave.ValidLegacyUsername(u.Username) {
		return errors.New("sqlstore: invalid 1.1 username")
	}
	now := s.now().UnixMilli()
	if u.CreatedAt == 0 {
		u.CreatedAt = now
	}
	if u.PasswordChangedAt == 0 {
		u.PasswordChangedAt = u.CreatedAt
	}
	exists := false
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		exists = false
		var n int
		if err := tx.QueryRowContext(ctx, s.db.Q(`SELECT COUNT(*) FROM legacy_users WHERE username = ?`), u.Username).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			exists = true
			return nil
		}
		_, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO legacy_users (`+legacyUserCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`),
			u.Username, u.Email, u.PasswordHash, u.CreatedAt, u.PasswordChangedAt, u.ResetCodeHash, u.ResetExpiresAt)
		return err
	})
	if err != nil {
		// A concurrent sign-up of the same name loses on the primary key.
		if _, e2 := s.LegacyUser(ctx, u.Username); e2 == nil {
			return weave.ErrLegacyUserExists
		}
		return err
	}
	if exists {
		return weave.ErrLegacyUserExists
	}
	return nil
}

// LegacyUser implements weave.LegacyUserStore.
func (s *LegacyUserStore) LegacyUser(ctx context.Context, username string) (weave.LegacyUser, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	u, err := scanLegacyUser(s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT `+legacyUserCols+` FROM legacy_users WHERE username = ?`), username))
	return u, s.db.Classify(err)
}

// update runs one UPDATE of a user row and maps "no row" to ErrNotFound.
func (s *LegacyUserStore) update(ctx context.Context, username, query string, args ...any) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Q(query), args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			// MySQL counts changed rows, not matched ones: look again.
			var c int
			if err := tx.QueryRowContext(ctx, s.db.Q(`SELECT COUNT(*) FROM legacy_users WHERE username = ?`), username).Scan(&c); err != nil {
				return err
			}
			if c == 0 {
				return weave.ErrNotFound
			}
		}
		return nil
	})
}

// UpdateLegacyPassword implements weave.LegacyUserStore.
func (s *LegacyUserStore) UpdateLegacyPassword(ctx context.Context, username, oldHash, newHash string) error {
	now := s.now().UnixMilli()
	if oldHash == "" {
		return s.update(ctx, username, `UPDATE legacy_users SET password_hash = ?, password_changed_at = ?, reset_code_hash = '', reset_expires_at = 0
			WHERE username = ?`, newHash, now, username)
	}
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		var cur string
		err := tx.QueryRowContext(ctx, s.db.Q(`SELECT password_hash FROM legacy_users WHERE username = ?`+s.db.Dialect.ForUpdate()), username).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return weave.ErrNotFound
		}
		if err != nil {
			return err
		}
		if cur != oldHash {
			return weave.ErrConflict
		}
		_, err = tx.ExecContext(ctx, s.db.Q(`UPDATE legacy_users SET password_hash = ?, password_changed_at = ?, reset_code_hash = '', reset_expires_at = 0
			WHERE username = ?`), newHash, now, username)
		return err
	})
}

// SetLegacyEmail implements weave.LegacyUserStore.
func (s *LegacyUserStore) SetLegacyEmail(ctx context.Context, username, email string) error {
	return s.update(ctx, username, `UPDATE legacy_users SET email = ? WHERE username = ?`, email, username)
}

// SetLegacyResetCode implements weave.LegacyUserStore.
func (s *LegacyUserStore) SetLegacyResetCode(ctx context.Context, username, codeHash string, expiresAt int64) error {
	if codeHash == "" {
		expiresAt = 0
	}
	return s.update(ctx, username, `UPDATE legacy_users SET reset_code_hash = ?, reset_expires_at = ? WHERE username = ?`, codeHash, expiresAt, username)
}

// DeleteLegacyUser implements weave.LegacyUserStore.
func (s *LegacyUserStore) DeleteLegacyUser(ctx context.Context, username string) error {
	return s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM legacy_users WHERE username = ?`), username)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return weave.ErrNotFound
		}
		return nil
	})
}

// ListLegacyUsers implements weave.LegacyUserStore.
func (s *LegacyUserStore) ListLegacyUsers(ctx context.Context, after string, limit int) ([]weave.LegacyUser, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	if limit <= 0 {
		limit = 100
	}
	return readAll(ctx, s.db, scanLegacyUser, `SELECT `+legacyUserCols+` FROM legacy_users WHERE username > ? ORDER BY username LIMIT ?`, after, limit)
}

// CountLegacyUsers implements weave.LegacyUserStore.
func (s *LegacyUserStore) CountLegacyUsers(ctx context.Context) (int64, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	var n int64
	err := s.db.Read.QueryRowContext(ctx, `SELECT COUNT(*) FROM legacy_users`).Scan(&n)
	return n, s.db.Classify(err)
}
