package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/weave-sync/weave/internal/dbtest"
	"github.com/weave-sync/weave/mysql"
	"github.com/weave-sync/weave/sqlstore"
)

// pipelineDB opens a fresh database whose write pool has one connection,
// so that every transaction runs on the connection the one before left.
func pipelineDB(t *testing.T) (*sqlstore.DB, *sqlstore.DB) {
	t.Helper()
	ctx := t.Context()
	url := dbtest.MySQL(t)
	db, err := mysql.Open(ctx, url, sqlstore.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.Write.SetMaxOpenConns(1)
	if _, err := db.Write.ExecContext(ctx, `CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB`); err != nil {
		t.Fatal(err)
	}
	other, err := mysql.Open(ctx, url, sqlstore.PoolOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return db, other
}

func ids(t *testing.T, db *sqlstore.DB) int {
	t.Helper()
	var n int
	if err := db.Read.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPipelineHeldStatements: statements whose results are not read go
// with the next statement or the COMMIT, and commit with it.
func TestPipelineHeldStatements(t *testing.T) {
	db, other := pipelineDB(t)
	ctx := sqlstore.DeferExecs(t.Context())
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (?)`, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.RowsAffected(); err == nil {
		t.Error("a held statement reports a result")
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the transaction's query sees %d rows (%v), want its held insert", n, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (?)`, 2); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, other); got != 0 {
		t.Fatalf("%d rows visible before the commit", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, other); got != 2 {
		t.Fatalf("%d rows after the commit, want 2", got)
	}
}

// TestPipelineFailedStatementRollsBack: when a held statement fails, the
// server runs nothing after it (not the COMMIT); the error comes from the
// call that sent it, nothing of the transaction is committed, and the
// pooled connection is not left inside the transaction.
func TestPipelineFailedStatementRollsBack(t *testing.T) {
	db, other := pipelineDB(t)
	for _, via := range []string{"commit", "query"} {
		t.Run(via, func(t *testing.T) {
			ctx := sqlstore.DeferExecs(t.Context())
			tx, err := db.Write.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []int{10, 10, 11} { // the second fails on the key
				if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (?)`, id); err != nil {
					t.Fatal(err)
				}
			}
			if via == "query" {
				var n int
				err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n)
				_ = tx.Rollback()
			} else {
				err = tx.Commit()
			}
			var me *mysqldrv.MySQLError
			if !errors.As(err, &me) || me.Number != 1062 {
				t.Fatalf("got %v, want the held statement's duplicate-key error", err)
			}
			// The next statement on the one connection commits on its own.
			if _, err := db.Write.ExecContext(t.Context(), `INSERT INTO t VALUES (?)`, 20); err != nil {
				t.Fatal(err)
			}
			if got := ids(t, other); got != 1 {
				t.Fatalf("%d rows visible, want only the autocommitted one (the connection stayed in the transaction?)", got)
			}
			if _, err := db.Write.ExecContext(t.Context(), `DELETE FROM t`); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPipelineEmptyTransaction: a transaction that runs no statement costs
// no round trip and leaves nothing open.
func TestPipelineEmptyTransaction(t *testing.T) {
	db, _ := pipelineDB(t)
	for _, end := range []func(*sql.Tx) error{(*sql.Tx).Commit, (*sql.Tx).Rollback} {
		tx, err := db.Write.BeginTx(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := end(tx); err != nil {
			t.Fatal(err)
		}
	}
}
