package sqlstore

// Accounts database schema contract (schema set "accounts", used by the
// built-in accounts service). Version 1 is written once for every backend
// (sqlstore/migrations/accounts/0001_accounts.sql); the later ones in each
// backend's migrations/accounts/ mirror each other. Hashes and keys are
// lower-case hex, times are ms.
//
//	accounts          one row per account; norm_email (lower-cased) UNIQUE
//	accounts_tokens   session and keyFetch tokens (id = Hawk token id),
//	                  OAuth codes and refresh tokens (id = SHA-256 of the
//	                  secret), devices, revoked access-token ids; kind-specific
//	                  JSON in data; INDEX (uid, kind), INDEX (expires_at)
//	accounts_keys     OAuth RS256 signing keys (PKCS#8 PEM)
//	accounts_commands device command queues (accounts_commands.go)
//
// There are no foreign keys: DeleteAccount removes an account's tokens in
// the same transaction.

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/weave-sync/weave"
)

// AccountStore implements weave.AccountStore.
type AccountStore struct {
	db *DB
}

var _ weave.AccountStore = (*AccountStore)(nil)

// NewAccountStore returns an weave.AccountStore on db, whose "accounts" schema
// set must be migrated.
func NewAccountStore(db *DB) *AccountStore { return &AccountStore{db: db} }

// DB returns the underlying database.
func (s *AccountStore) DB() *DB { return s.db }

func (s *AccountStore) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.db.Timeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			return context.WithTimeout(ctx, s.db.Timeout)
		}
	}
	return ctx, func() {}
}

const accountCols = `uid, norm_email, email, auth_salt, verify_hash, scrypt_n, ka, wrap_wrap_kb, created_at, verifier_set, keys_changed, locale`

type rowScanner interface{ Scan(dest ...any) error }

func scanAccount(r rowScanner) (weave.Account, error) {
	var a weave.Account
	var salt, vh, ka, wwkb string
	err := r.Scan(&a.UID, &a.NormEmail, &a.Email, &salt, &vh, &a.ScryptN, &ka, &wwkb, &a.CreatedAt, &a.VerifierSet, &a.KeysChanged, &a.Locale)
	if err == sql.ErrNoRows {
		return a, weave.ErrAccountNotFound
	}
	if err != nil {
		return a, err
	}
	for _, f := range []struct {
		dst *[]byte
		src string
	}{{&a.AuthSalt, salt}, {&a.VerifyHash, vh}, {&a.KA, ka}, {&a.WrapWrapKb, wwkb}} {
		if *f.dst, err = hex.DecodeString(f.src); err != nil {
			return a, fmt.Errorf("accounts: corrupt hex in account %s: %w", a.UID, err)
		}
	}
	return a, nil
}

func (s *AccountStore) insertTokens(ctx context.Context, tx *sql.Tx, ts []weave.AccountToken) error {
	for _, t := range ts {
		if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO accounts_tokens (id, kind, uid, auth_key, data, created_at, expires_at, last_used)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), t.ID, t.Kind, t.UID, hex.EncodeToString(t.AuthKey), string(t.Data), t.CreatedAt, t.ExpiresAt, t.LastUsed); err != nil {
			return err
		}
	}
	return nil
}

// CreateAccount implements weave.AccountStore.
func (s *AccountStore) CreateAccount(ctx context.Context, a weave.Account, tokens []weave.AccountToken) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	exists := false
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		exists = false
		var n int
		if err := tx.QueryRowContext(ctx, s.db.Q(`SELECT COUNT(*) FROM accounts WHERE norm_email = ?`), a.NormEmail).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			exists = true
			return nil
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO accounts (`+accountCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			a.UID, a.NormEmail, a.Email, hex.EncodeToString(a.AuthSalt), hex.EncodeToString(a.VerifyHash), a.ScryptN,
			hex.EncodeToString(a.KA), hex.EncodeToString(a.WrapWrapKb), a.CreatedAt, a.VerifierSet, a.KeysChanged, a.Locale); err != nil {
			return err
		}
		return s.insertTokens(ctx, tx, tokens)
	})
	if err != nil {
		// A concurrent sign-up with the same email loses on the UNIQUE key.
		if _, e2 := s.AccountByEmail(ctx, a.NormEmail); e2 == nil {
			return weave.ErrEmailExists
		}
		return s.db.Classify(err)
	}
	if exists {
		return weave.ErrEmailExists
	}
	return nil
}

// AccountByEmail implements weave.AccountStore.
func (s *AccountStore) AccountByEmail(ctx context.Context, normEmail string) (weave.Account, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	a, err := scanAccount(s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT `+accountCols+` FROM accounts WHERE norm_email = ?`), normEmail))
	return a, s.db.Classify(err)
}

// AccountByUID implements weave.AccountStore.
func (s *AccountStore) AccountByUID(ctx context.Context, uid string) (weave.Account, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	a, err := scanAccount(s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT `+accountCols+` FROM accounts WHERE uid = ?`), uid))
	return a, s.db.Classify(err)
}

// ListAccounts implements weave.AccountStore.
func (s *AccountStore) ListAccounts(ctx context.Context, afterUID string, limit int) ([]weave.Account, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if limit <= 0 {
		limit = 100
	}
	return readAll(ctx, s.db, scanAccount, `SELECT `+accountCols+` FROM accounts WHERE uid > ? ORDER BY uid LIMIT ?`, afterUID, limit)
}

// UpdateCredentials implements weave.AccountStore.
func (s *AccountStore) UpdateCredentials(ctx context.Context, a weave.Account, tokens []weave.AccountToken) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return s.db.Classify(s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE accounts SET auth_salt = ?, verify_hash = ?, scrypt_n = ?, ka = ?, wrap_wrap_kb = ?,
			verifier_set = ?, keys_changed = ? WHERE uid = ?`),
			hex.EncodeToString(a.AuthSalt), hex.EncodeToString(a.VerifyHash), a.ScryptN, hex.EncodeToString(a.KA),
			hex.EncodeToString(a.WrapWrapKb), a.VerifierSet, a.KeysChanged, a.UID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return weave.ErrAccountNotFound
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM accounts_tokens WHERE uid = ? AND kind <> ?`), a.UID, weave.AccountTokenDevice); err != nil {
			return err
		}
		return s.insertTokens(ctx, tx, tokens)
	}))
}

// DeleteAccount implements weave.AccountStore.
func (s *AccountStore) DeleteAccount(ctx context.Context, uid string) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return s.db.Classify(s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM accounts WHERE uid = ?`), uid)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return weave.ErrAccountNotFound
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM accounts_tokens WHERE uid = ?`), uid); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Q(`DELETE FROM accounts_commands WHERE uid = ?`), uid)
		return err
	}))
}

// PutToken implements weave.AccountStore.
func (s *AccountStore) PutToken(ctx context.Context, t weave.AccountToken) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return s.db.Classify(s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM accounts_tokens WHERE id = ?`), t.ID); err != nil {
			return err
		}
		return s.insertTokens(ctx, tx, []weave.AccountToken{t})
	}))
}

const tokenCols = `id, kind, uid, auth_key, data, created_at, expires_at, last_used`

func scanToken(r rowScanner) (weave.AccountToken, error) {
	var t weave.AccountToken
	var key, data string
	err := r.Scan(&t.ID, &t.Kind, &t.UID, &key, &data, &t.CreatedAt, &t.ExpiresAt, &t.LastUsed)
	if err == sql.ErrNoRows {
		return t, weave.ErrAccountNotFound
	}
	if err != nil {
		return t, err
	}
	// PostgreSQL pads CHAR(64) on the way out; device ids are 32 digits.
	t.ID = strings.TrimRight(t.ID, " ")
	t.Data = []byte(data)
	if t.AuthKey, err = hex.DecodeString(key); err != nil {
		return t, fmt.Errorf("accounts: corrupt token key: %w", err)
	}
	return t, nil
}

// Token implements weave.AccountStore.
func (s *AccountStore) Token(ctx context.Context, id string) (weave.AccountToken, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	t, err := scanToken(s.db.Read.QueryRowContext(ctx, s.db.Q(`SELECT `+tokenCols+` FROM accounts_tokens WHERE id = ?`), id))
	return t, s.db.Classify(err)
}

// TakeToken implements weave.AccountStore.
func (s *AccountStore) TakeToken(ctx context.Context, id string) (weave.AccountToken, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var t weave.AccountToken
	err := s.db.WriteTx(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = scanToken(tx.QueryRowContext(ctx, s.db.Q(`SELECT `+tokenCols+` FROM accounts_tokens WHERE id = ?`+s.db.Dialect.ForUpdate()), id))
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM accounts_tokens WHERE id = ?`), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return weave.ErrAccountNotFound
		}
		return nil
	})
	return t, s.db.Classify(err)
}

// DeleteToken implements weave.AccountStore; deleting a missing token is not an error.
func (s *AccountStore) DeleteToken(ctx context.Context, id string) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, err := s.db.Write.ExecContext(ctx, s.db.Q(`DELETE FROM accounts_tokens WHERE id = ?`), id)
	return s.db.Classify(err)
}

// TouchToken implements weave.AccountStore.
func (s *AccountStore) TouchToken(ctx context.Context, id string, lastUsed int64) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, err := s.db.Write.ExecContext(ctx, s.db.Q(`UPDATE accounts_tokens SET last_used = ? WHERE id = ?`), lastUsed, id)
	return s.db.Classify(err)
}

// SwapTokenData implements weave.AccountStore.
func (s *AccountStore) SwapTokenData(ctx context.Context, id string, prev, next []byte) (bool, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	res, err := s.db.Write.ExecContext(ctx, s.db.Q(`UPDATE accounts_tokens SET data = ? WHERE id = ? AND data = ?`), string(next), id, string(prev))
	if err != nil {
		return false, s.db.Classify(err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Tokens implements weave.AccountStore.
func (s *AccountStore) Tokens(ctx context.Context, uid, kind string) ([]weave.AccountToken, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return readAll(ctx, s.db, scanToken, `SELECT `+tokenCols+` FROM accounts_tokens WHERE uid = ? AND kind = ? ORDER BY created_at, id`, uid, kind)
}

// PurgeExpired implements weave.AccountStore.
func (s *AccountStore) PurgeExpired(ctx context.Context, now int64) (int64, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var total int64
	for _, q := range []string{`DELETE FROM accounts_tokens WHERE expires_at > 0 AND expires_at < ?`,
		`DELETE FROM accounts_commands WHERE expires_at < ?`} {
		res, err := s.db.Write.ExecContext(ctx, s.db.Q(q), now)
		if err != nil {
			return total, s.db.Classify(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// SigningKeys implements weave.AccountStore.
func (s *AccountStore) SigningKeys(ctx context.Context) ([]weave.OAuthSigningKey, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	rows, err := s.db.Read.QueryContext(ctx, `SELECT kid, private_pem, created_at FROM accounts_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, s.db.Classify(err)
	}
	defer rows.Close()
	var out []weave.OAuthSigningKey
	for rows.Next() {
		var k weave.OAuthSigningKey
		if err := rows.Scan(&k.KID, &k.PrivatePEM, &k.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, s.db.Classify(rows.Err())
}

// AddSigningKey implements weave.AccountStore.
func (s *AccountStore) AddSigningKey(ctx context.Context, k weave.OAuthSigningKey) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if k.CreatedAt == 0 {
		k.CreatedAt = time.Now().UnixMilli()
	}
	_, err := s.db.Write.ExecContext(ctx, s.db.Q(`INSERT INTO accounts_keys (kid, private_pem, created_at) VALUES (?, ?, ?)`+
		s.db.Dialect.Upsert([]string{"kid"}, nil)), k.KID, k.PrivatePEM, k.CreatedAt)
	return s.db.Classify(err)
}
