package http

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/weave-sync/weave"
)

// GET /info/collections: every collection with its timestamp; the resource
// for conditional headers is the storage timestamp.
func (s *Server) infoCollections(rq *request) error {
	ctx := rq.r.Context()
	cp := collsPool.Get().(*[]weave.CollectionTimestamp)
	defer func() {
		clear(*cp)
		*cp = (*cp)[:0]
		collsPool.Put(cp)
	}()
	colls, storageTS, err := weave.AppendCollectionTimestamps(ctx, s.store, rq.uid, (*cp)[:0])
	*cp = colls
	if err != nil {
		return err
	}
	if err := rq.pre.checkRead(storageTS); err != nil {
		return err
	}
	slices.SortFunc(colls, func(a, b weave.CollectionTimestamp) int { return strings.Compare(a.Name, b.Name) })
	bp := getBuf()
	defer putBuf(bp)
	b := append((*bp)[:0], '{')
	for i, c := range colls {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, c.Name)
		b = append(b, ':')
		b = appendTimestamp(b, c.Modified)
	}
	b = append(b, '}')
	*bp = b
	rq.setLastModified(storageTS)
	rq.w.setHeader("X-Weave-Records", strconv.Itoa(len(colls)))
	writeJSON(rq, http.StatusOK, b)
	return nil
}

// collsPool holds the slices info/collections reads into.
var collsPool = sync.Pool{New: func() any { c := make([]weave.CollectionTimestamp, 0, 16); return &c }}

// storageRead fetches the storage timestamp for the conditional headers of
// the other info endpoints and applies them.
func (s *Server) storageRead(rq *request) error {
	ts, err := s.store.LastModified(rq.r.Context(), rq.uid)
	if err != nil {
		return err
	}
	if err := rq.pre.checkRead(ts); err != nil {
		return err
	}
	rq.setLastModified(ts)
	return nil
}

// GET /info/quota: [used_KB, quota_KB or null].
func (s *Server) infoQuota(rq *request) error {
	if err := s.storageRead(rq); err != nil {
		return err
	}
	used, err := s.store.Usage(rq.r.Context(), rq.uid)
	if err != nil {
		return err
	}
	b := append(make([]byte, 0, 48), '[')
	b = appendKB(b, used)
	b = append(b, ',')
	if s.limits.QuotaBytes > 0 {
		b = appendKB(b, s.limits.QuotaBytes)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, ']')
	writeJSON(rq, http.StatusOK, b)
	return nil
}

// GET /info/collection_usage: payload KB per collection.
func (s *Server) infoUsage(rq *request) error {
	if err := s.storageRead(rq); err != nil {
		return err
	}
	usage, err := s.store.CollectionUsage(rq.r.Context(), rq.uid)
	if err != nil {
		return err
	}
	return writeMap(rq, usage, appendKB)
}

// GET /info/collection_counts: live BSOs per collection.
func (s *Server) infoCounts(rq *request) error {
	if err := s.storageRead(rq); err != nil {
		return err
	}
	counts, err := s.store.CollectionCounts(rq.r.Context(), rq.uid)
	if err != nil {
		return err
	}
	return writeMap(rq, counts, func(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) })
}

func writeMap(rq *request, m map[string]int64, appendValue func([]byte, int64) []byte) error {
	names := sortedKeys(m)
	b := append(make([]byte, 0, 32*len(names)+2), '{')
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, name)
		b = append(b, ':')
		b = appendValue(b, m[name])
	}
	b = append(b, '}')
	rq.w.setHeader("X-Weave-Records", strconv.Itoa(len(names)))
	writeJSON(rq, http.StatusOK, b)
	return nil
}

// GET /info/configuration: all six limits, always (storage-1.5.md §18 #13).
func (s *Server) infoConfiguration(rq *request) error {
	writeJSON(rq, http.StatusOK, s.configJSON)
	return nil
}

func configJSON(l weave.Limits) []byte {
	b, _ := json.Marshal(l) // six int64 fields: cannot fail
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
