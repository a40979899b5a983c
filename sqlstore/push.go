package sqlstore

// Push database schema contract (schema set "push", used by the push
// service with `weave serve --push`; it lives in the token database, which
// every weave process of a fleet shares). Its migrations are shared by
// every backend: sqlstore/migrations/push/. Times are ms since the epoch.
//
//	push_users     one row per UAID that registered a channel; node_id is
//	               the push service instance holding its connection ("" if
//	               none)
//	push_channels  (uaid, chid) PRIMARY KEY
//	push_messages  stored messages; id (the notification version) PRIMARY
//	               KEY; UNIQUE (uaid, chid, topic) with topic NULL when
//	               absent, so only topic messages collide; INDEX (uaid,
//	               created), INDEX (expires)
//	push_wakeups   append-only queue of "look at uaid's messages" per node;
//	               INDEX (node_id), INDEX (created)
//
// Wake-ups are inserted, never upserted, and taken by id: a reader sees a
// wake-up only once the transaction that stored its message committed, so
// the message is always visible to the read that follows.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/weave-sync/weave"
)

// SetPush is the schema set of the push service (package push).
const SetPush = "push"

// PushStore implements weave.PushStore.
type PushStore struct {
	db *DB
}

var _ weave.PushStore = (*PushStore)(nil)

// NewPushStore returns a weave.PushStore on db, whose "push" schema set must be
// migrated.
func NewPushStore(db *DB) *PushStore { return &PushStore{db: db} }

// queryRow runs a one-row read on the Read pool (no transaction: one
// statement is its own snapshot).
func (s *PushStore) queryRow(ctx context.Context, scan func(*sql.Row) error, query string, args ...any) error {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	return s.db.Classify(scan(s.db.Read.QueryRowContext(ctx, s.db.Q(query), args...)))
}

func (s *PushStore) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.db.Classify(s.db.WriteTx(ctx, fn))
}

func scanPushUser(r rowScanner) (weave.PushUser, error) {
	var u weave.PushUser
	err := r.Scan(&u.UAID, &u.Node, &u.Connected, &u.Created)
	if err == sql.ErrNoRows {
		return u, weave.ErrPushUnknownUser
	}
	return u, err
}

const pushUserCols = `uaid, node_id, connected, created`

// User implements weave.PushStore.
func (s *PushStore) User(ctx context.Context, uaid string) (weave.PushUser, error) {
	var u weave.PushUser
	err := s.queryRow(ctx, func(r *sql.Row) (err error) {
		u, err = scanPushUser(r)
		return err
	}, `SELECT `+pushUserCols+` FROM push_users WHERE uaid = ?`, uaid)
	return u, err
}

// Connect implements weave.PushStore.
func (s *PushStore) Connect(ctx context.Context, uaid, node string, now int64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Q(`UPDATE push_users SET node_id = ?, connected = ? WHERE uaid = ?`), node, now, uaid)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			// MySQL counts changed rows only; an unchanged row still exists.
			return s.exists(ctx, tx, uaid)
		}
		return nil
	})
}

func (s *PushStore) exists(ctx context.Context, tx *sql.Tx, uaid string) error {
	var one int
	err := tx.QueryRowContext(ctx, s.db.Q(`SELECT 1 FROM push_users WHERE uaid = ?`), uaid).Scan(&one)
	if err == sql.ErrNoRows {
		return weave.ErrPushUnknownUser
	}
	return err
}

// Disconnect implements weave.PushStore.
func (s *PushStore) Disconnect(ctx context.Context, uaid, node string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Q(`UPDATE push_users SET node_id = '' WHERE uaid = ? AND node_id = ?`), uaid, node)
		return err
	})
}

// AddChannel implements weave.PushStore.
func (s *PushStore) AddChannel(ctx context.Context, uaid, chid, node string, now int64, max int) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		// Lock the user row first, so that concurrent registrations of one
		// UAID count its channels one after the other.
		if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO push_users (uaid, node_id, connected, created) VALUES (?, ?, ?, ?)`+
			s.db.Dialect.UpsertSet([]string{"uaid"}, []string{"node_id = " + s.db.Dialect.Inserted("node_id"), "connected = " + s.db.Dialect.Inserted("connected")})),
			uaid, node, now, now); err != nil {
			return err
		}
		var one int
		err := tx.QueryRowContext(ctx, s.db.Q(`SELECT 1 FROM push_channels WHERE uaid = ? AND chid = ?`), uaid, chid).Scan(&one)
		if err == nil {
			return nil
		}
		if err != sql.ErrNoRows {
			return err
		}
		if max > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, s.db.Q(`SELECT COUNT(*) FROM push_channels WHERE uaid = ?`), uaid).Scan(&n); err != nil {
				return err
			}
			if n >= max {
				return weave.ErrPushTooManyChannels
			}
		}
		_, err = tx.ExecContext(ctx, s.db.Q(`INSERT INTO push_channels (uaid, chid, created) VALUES (?, ?, ?)`), uaid, chid, now)
		return err
	})
}

// RemoveChannel implements weave.PushStore.
func (s *PushStore) RemoveChannel(ctx context.Context, uaid, chid string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM push_channels WHERE uaid = ? AND chid = ?`), uaid, chid); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM push_messages WHERE uaid = ? AND chid = ?`), uaid, chid)
		return err
	})
}

// Route implements weave.PushStore.
func (s *PushStore) Route(ctx context.Context, uaid, chid string) (weave.PushUser, error) {
	var u weave.PushUser
	err := s.queryRow(ctx, func(r *sql.Row) error {
		var c sql.NullString
		err := r.Scan(&u.UAID, &u.Node, &u.Connected, &u.Created, &c)
		if err == sql.ErrNoRows {
			return weave.ErrPushUnknownUser
		}
		if err != nil {
			return err
		}
		if !c.Valid {
			return weave.ErrPushUnknownChannel
		}
		return nil
	}, `SELECT u.uaid, u.node_id, u.connected, u.created, c.chid
		FROM push_users u LEFT JOIN push_channels c ON c.uaid = u.uaid AND c.chid = ?
		WHERE u.uaid = ?`, chid, uaid)
	return u, err
}

// DeleteUser implements weave.PushStore.
func (s *PushStore) DeleteUser(ctx context.Context, uaid string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM push_messages WHERE uaid = ?`,
			`DELETE FROM push_channels WHERE uaid = ?`,
			`DELETE FROM push_wakeups WHERE uaid = ?`,
			`DELETE FROM push_users WHERE uaid = ?`,
		} {
			if _, err := tx.ExecContext(ctx, s.db.Q(q), uaid); err != nil {
				return err
			}
		}
		return nil
	})
}

func nullIfEmpty(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// Save implements weave.PushStore.
func (s *PushStore) Save(ctx context.Context, m weave.PushMessage, wake string) error {
	headers, err := json.Marshal(m.Headers)
	if err != nil {
		return err
	}
	if m.Headers == nil {
		headers = []byte("{}")
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		q := `INSERT INTO push_messages (id, uaid, chid, topic, data, headers, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
		if m.Topic != "" {
			// The newer message takes the older one's place (and its
			// version goes: an ack of it finds nothing, which is fine).
			// Only the topic key can collide: ids are random.
			q += s.db.Dialect.Upsert([]string{"uaid", "chid", "topic"}, []string{"id", "data", "headers", "created", "expires"})
		}
		if _, err := tx.ExecContext(ctx, s.db.Q(q), m.ID, m.UAID, m.ChannelID, nullIfEmpty(m.Topic), m.Data, string(headers), m.Created, m.Expires); err != nil {
			return err
		}
		if wake != "" {
			if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO push_wakeups (node_id, uaid, created) VALUES (?, ?, ?)`), wake, m.UAID, m.Created); err != nil {
				return err
			}
		}
		return nil
	})
}

// Stored implements weave.PushStore.
func (s *PushStore) Stored(ctx context.Context, uaid string) (int, error) {
	var n int
	err := s.queryRow(ctx, func(r *sql.Row) error { return r.Scan(&n) }, `SELECT COUNT(*) FROM push_messages WHERE uaid = ?`, uaid)
	return n, err
}

// Pending implements weave.PushStore.
func (s *PushStore) Pending(ctx context.Context, uaid string, now int64, limit int) ([]weave.PushMessage, error) {
	if limit <= 0 {
		return nil, nil
	}
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	var out []weave.PushMessage
	err := func() error {
		// Topic messages first (autopush's order), then by age; the id
		// breaks ties so the order is stable.
		rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT id, chid, topic, data, headers, created, expires FROM push_messages
			WHERE uaid = ? AND expires > ?
			ORDER BY CASE WHEN topic IS NULL THEN 1 ELSE 0 END, created, id LIMIT ?`), uaid, now, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m := weave.PushMessage{UAID: uaid}
			var topic sql.NullString
			var headers string
			if err := rows.Scan(&m.ID, &m.ChannelID, &topic, &m.Data, &headers, &m.Created, &m.Expires); err != nil {
				return err
			}
			m.Topic = topic.String
			if err := json.Unmarshal([]byte(headers), &m.Headers); err != nil {
				return fmt.Errorf("push: corrupt headers of message %s: %w", m.ID, err)
			}
			if len(m.Headers) == 0 {
				m.Headers = nil
			}
			out = append(out, m)
		}
		return rows.Err()
	}()
	return out, s.db.Classify(err)
}

// Delete implements weave.PushStore.
func (s *PushStore) Delete(ctx context.Context, uaid, id string) (bool, error) {
	var found bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM push_messages WHERE id = ? AND uaid = ?`), id, uaid)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		found = n > 0
		return err
	})
	return found, err
}

// Cancel implements weave.PushStore.
func (s *PushStore) Cancel(ctx context.Context, id string) (bool, error) {
	var found bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM push_messages WHERE id = ?`), id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		found = n > 0
		return err
	})
	return found, err
}

// Wakeups implements weave.PushStore.
func (s *PushStore) Wakeups(ctx context.Context, node string, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	var uaids []string
	err := s.write(ctx, func(tx *sql.Tx) error {
		uaids = uaids[:0]
		rows, err := tx.QueryContext(ctx, s.db.Q(`SELECT id, uaid FROM push_wakeups WHERE node_id = ? LIMIT ?`), node, limit)
		if err != nil {
			return err
		}
		var ids []any
		for rows.Next() {
			var id int64
			var uaid string
			if err := rows.Scan(&id, &uaid); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
			uaids = append(uaids, uaid)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, s.db.Q(`DELETE FROM push_wakeups WHERE id IN (?`+strings.Repeat(`, ?`, len(ids)-1)+`)`), ids...)
		return err
	})
	return uaids, err
}

// PurgeExpired implements weave.PushStore.
func (s *PushStore) PurgeExpired(ctx context.Context, now, staleBefore int64, limit int) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		// Bounded batches keep each transaction short; ids first because
		// MySQL cannot DELETE … LIMIT from a subquery on the same table.
		rows, err := tx.QueryContext(ctx, s.db.Q(`SELECT id FROM push_messages WHERE expires <= ? LIMIT ?`), now, limit)
		if err != nil {
			return err
		}
		var ids []any
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := errors.Join(rows.Close(), rows.Err()); err != nil {
			return err
		}
		if len(ids) > 0 {
			res, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM push_messages WHERE id IN (?`+strings.Repeat(`, ?`, len(ids)-1)+`) AND expires <= ?`), append(ids, now)...)
			if err != nil {
				return err
			}
			if n, err = res.RowsAffected(); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.db.Q(`DELETE FROM push_wakeups WHERE created < ?`), staleBefore)
		return err
	})
	return n, err
}

// Broadcasts implements weave.PushStore.
func (s *PushStore) Broadcasts(ctx context.Context) (map[string]string, error) {
	ctx, cancel := s.db.withTimeout(ctx)
	defer cancel()
	out := map[string]string{}
	err := func() error {
		rows, err := s.db.Read.QueryContext(ctx, `SELECT id, version FROM push_broadcasts`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, version string
			if err := rows.Scan(&id, &version); err != nil {
				return err
			}
			out[id] = version
		}
		return rows.Err()
	}()
	return out, s.db.Classify(err)
}

// SetBroadcast implements weave.PushStore: a delete and an insert in one
// transaction, the same on every backend.
func (s *PushStore) SetBroadcast(ctx context.Context, id, version string, now int64) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM push_broadcasts WHERE id = ?`), id); err != nil {
			return err
		}
		if version == "" {
			return nil
		}
		_, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO push_broadcasts (id, version, updated) VALUES (?, ?, ?)`), id, version, now)
		return err
	})
}
