package main

import (
	"github.com/weave-sync/weave/metrics"
	"github.com/weave-sync/weave/sqlite"
	"github.com/weave-sync/weave/sqlstore"
)

// watchDatabases registers the collectors of the databases and the node
// table.
func watchDatabases(m *metrics.Metrics, dbs *sqlstore.Databases, tokens *sqlstore.TokenDB) error {
	add := func(name string, db *sqlstore.DB, url string) error {
		d := metrics.Database{Name: name, Kind: db.Dialect.Name(), Read: db.Read, Write: db.Write}
		if d.Kind == "sqlite" {
			d.Path, _ = sqlite.PathFromURL(url)
		}
		if db.GroupCommit {
			d.GroupCommit = func() metrics.GroupCommit {
				s := db.GroupStats()
				return metrics.GroupCommit{Groups: s.Groups, Members: s.Members, Queued: s.Queued, Wait: s.Wait}
			}
		}
		return m.WatchDB(d)
	}
	if err := add("storage", dbs.Storage, dbs.StorageURL); err != nil {
		return err
	}
	if dbs.Tokens != dbs.Storage {
		if err := add("tokens", dbs.Tokens, dbs.TokenURL); err != nil {
			return err
		}
	}
	return m.WatchNodes(tokens.Nodes)
}
