package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/internal/dbtest"
	_ "github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

func records(prefix string, n, size int) []weave.Update {
	us := make([]weave.Update, n)
	for i := range us {
		us[i] = weave.Update{ID: fmt.Sprintf("%s%03d", prefix, i), Payload: weave.Some(strings.Repeat("p", size))}
	}
	return us
}

func integrityOK(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	var res string
	if err := s.DB().Read.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check: %q, %v", res, err)
	}
}

// ids reads the ids of a collection.
func ids(t *testing.T, s weave.Store, uid int64, coll string) map[string]bool {
	t.Helper()
	p, err := s.GetBSOs(context.Background(), uid, coll, weave.Query{IDsOnly: true})
	if err != nil {
		t.Fatalf("read %s while the disk is full: %v", coll, err)
	}
	out := map[string]bool{}
	for _, b := range p.BSOs {
		out[b.ID] = true
	}
	return out
}

// writeUntilFull posts batches of records until the store refuses one; it
// returns the ids acknowledged and those of the refused write.
func writeUntilFull(t *testing.T, s weave.Store, uid int64, coll string, batch func(i int) []weave.Update) (acked []string, refused []weave.Update) {
	t.Helper()
	for i := 0; i < 2000; i++ {
		us := batch(i)
		_, err := s.PostBSOs(context.Background(), uid, coll, us, weave.Precondition{})
		if err == nil {
			for _, u := range us {
				acked = append(acked, u.ID)
			}
			continue
		}
		if !errors.Is(err, weave.ErrStorageFull) || !errors.Is(err, weave.ErrUnavailable) {
			t.Fatalf("write %d on a full disk: %v, want weave.ErrStorageFull (an ErrUnavailable)", i, err)
		}
		return acked, us
	}
	t.Fatal("2000 writes and the disk never filled")
	return nil, nil
}

// resumes retries a write until it succeeds (the disk has room again).
func resumes(t *testing.T, s weave.Store, uid int64, coll string, us []weave.Update) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.PostBSOs(context.Background(), uid, coll, us, weave.Precondition{})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume within 5 s of space returning: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDiskFull fills the filesystem under a SQLite store: the write that
// finds no room fails with weave.ErrStorageFull (503 + Retry-After) and
// leaves nothing behind, reads go on, the database stays intact, and writes
// succeed again by themselves once space is freed.
func TestDiskFull(t *testing.T) {
	dir := dbtest.SmallDisk(t, "6m")
	s := openStore(t, "sqlite://"+filepath.Join(dir, "weave.db"), sqlstore.PoolOptions{Timeout: 5 * time.Second}, true, sqlstore.StoreOptions{})
	const uid = 1
	if _, err := s.PostBSOs(t.Context(), uid, "history", records("before", 20, 1000), weave.Precondition{}); err != nil {
		t.Fatal(err)
	}
	filler := dbtest.FillDisk(t, dir)
	acked, refused := writeUntilFull(t, s, uid, "history", func(i int) []weave.Update {
		return records(fmt.Sprintf("w%04d-", i), 50, 2000)
	})
	t.Logf("%d records written after the filler, then the disk was full", len(acked))

	have := ids(t, s, uid, "history")
	for i := range 20 {
		if id := fmt.Sprintf("before%03d", i); !have[id] {
			t.Errorf("record %s lost", id)
		}
	}
	for _, id := range acked {
		if !have[id] {
			t.Errorf("acknowledged record %s lost", id)
		}
	}
	for _, u := range refused {
		if have[u.ID] {
			t.Fatalf("record %s of the refused write is visible", u.ID)
		}
	}
	if _, _, err := s.CollectionTimestamps(t.Context(), uid); err != nil {
		t.Fatalf("info/collections on a full disk: %v", err)
	}
	integrityOK(t, s)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	resumes(t, s, uid, "history", refused)
	if have := ids(t, s, uid, "history"); !have[refused[0].ID] {
		t.Fatal("the write retried after space returned is not visible")
	}
	integrityOK(t, s)
}

// TestWALFullBehindLongReader keeps a read transaction open while a client
// rewrites its records: SQLite cannot checkpoint past the reader, so the WAL
// grows until the disk is full. Writes then fail with ErrStorageFull, reads
// go on, and once the reader is done writes resume without any other write
// having succeeded in between (nothing but the store's own checkpoint can
// make room).
func TestWALFullBehindLongReader(t *testing.T) {
	dir := dbtest.SmallDisk(t, "8m")
	s := openStore(t, "sqlite://"+filepath.Join(dir, "weave.db"), sqlstore.PoolOptions{Timeout: 5 * time.Second}, true, sqlstore.StoreOptions{})
	const uid = 1
	// The records are rewritten in place with payloads of the same size, so
	// the database file needs no more room once the WAL is checkpointed.
	same := records("r", 100, 2000)
	if _, err := s.PostBSOs(t.Context(), uid, "history", same, weave.Precondition{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Write.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}

	ctx := t.Context()
	conn, err := s.DB().Read.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reader, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRowContext(ctx, "SELECT COUNT(*) FROM bsos").Scan(&n); err != nil || n != 100 {
		t.Fatalf("long reader: %d rows, %v", n, err)
	}

	acked, refused := writeUntilFull(t, s, uid, "history", func(i int) []weave.Update { return same })
	wal, _ := os.Stat(filepath.Join(dir, "weave.db-wal"))
	t.Logf("%d rewrites acknowledged; WAL %d bytes when the disk filled", len(acked)/len(same), wal.Size())
	if len(acked) == 0 {
		t.Fatal("the disk was full before the reader held the WAL")
	}
	if got := ids(t, s, uid, "history"); len(got) != 100 {
		t.Fatalf("read with the WAL full: %d records", len(got))
	}
	integrityOK(t, s)

	if err := reader.Rollback(); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	resumes(t, s, uid, "history", refused)
	integrityOK(t, s)
}
