package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/weave-sync/weave"
)

// metaGlobalPayload is what a session PUTs when meta/global is missing: a
// fixed text of about the size the Molotov script used.
const metaGlobalPayload = "loadtest meta/global record: fixed text standing in for the real\nstorage version and engine list.\n"

// runSession plays one session of the model for u. Session number n picks
// the random stream, so a seed reproduces the mix.
func (r *runner) runSession(ctx context.Context, u *user, n int64) error {
	// Step 0: the limits, once per user (or every session, the Molotov way).
	if u.legacy {
		// Sync 1.1 has no info/configuration: its limits are fixed.
		lim := legacyLimits()
		u.limits = &lim
	} else if u.limits == nil || r.cfg.InfoConfigurationEverySession {
		if err := r.infoConfiguration(ctx, u); err != nil {
			return err
		}
	}
	p := r.mix.newPlan(sessionRand(r.seed, n), *u.limits)
	if u.legacy {
		p.batch = false // 1.1 has no batch uploads
	}

	// Step 1: what changed; also the collection timestamps that guard our
	// uploads, as a client's last-sync times would.
	if err := r.infoCollections(ctx, u); err != nil {
		return err
	}

	// Step 2: meta/global, created when missing.
	for range p.metaGets {
		resp, err := r.do(ctx, u, request{kind: KindMetaGet, method: http.MethodGet, path: "/storage/meta/global",
			expect: []int{200, 404}})
		if err != nil {
			return err
		}
		if resp.status == http.StatusNotFound {
			body, _ := json.Marshal(map[string]string{"id": "global", "payload": metaGlobalPayload})
			if _, err := r.do(ctx, u, request{kind: KindMetaPut, method: http.MethodPut, path: "/storage/meta/global",
				body: body, expect: []int{200}}); err != nil {
				return err
			}
		}
	}

	// Steps 3 and 4: the clients collection.
	if p.clientsGet {
		if _, err := r.do(ctx, u, request{kind: KindClientsGet, method: http.MethodGet, path: "/storage/clients",
			query: newerQuery(p.clientsGetAgo), expect: []int{200, 404}}); err != nil {
			return err
		}
	}
	if p.clientsPost {
		d := strconv.Itoa(p.clientIndex)
		recs := []record{{ID: "client" + d, Payload: strings.Repeat(d, r.mix.clientRepeat)}}
		if err := r.upload(ctx, u, KindClientsPost, "clients", "", recs, 200); err != nil {
			return err
		}
	}

	// Step 5: collection reads.
	for _, g := range p.collGets {
		if _, err := r.do(ctx, u, request{kind: KindCollGet, method: http.MethodGet, path: "/storage/" + g.coll,
			query: newerQuery(g.ago), expect: []int{200, 404}}); err != nil {
			return err
		}
	}

	// Step 6: uploads, plain or as one batch.
	if err := r.uploads(ctx, u, p); err != nil {
		return err
	}

	// Step 7: deletes, rare.
	for _, c := range p.deletes {
		_, err := r.do(ctx, u, request{kind: KindDeleteColl, method: http.MethodDelete, path: "/storage/" + c,
			expect: []int{200, 204}})
		u.track.deleted(c, err)
		if err != nil {
			return err
		}
		delete(u.collTS, c)
	}
	if p.wipe {
		_, err := r.do(ctx, u, request{kind: KindDeleteStorage, method: http.MethodDelete, path: "/storage",
			expect: []int{200, 204}})
		u.track.wiped(err)
		if err != nil {
			return err
		}
		clear(u.collTS)
	}
	return nil
}

func newerQuery(ago int) string {
	newer := time.Now().Unix() - int64(ago)
	return "full=1&newer=" + strconv.FormatInt(newer, 10)
}

func (r *runner) infoConfiguration(ctx context.Context, u *user) error {
	var lim weave.Limits
	_, err := r.do(ctx, u, request{kind: KindInfoConfiguration, method: http.MethodGet, path: "/info/configuration",
		expect: []int{200}, keepBody: true, check: func(resp *response) error {
			// Keys the server leaves out keep their defaults.
			lim = weave.DefaultLimits()
			return json.Unmarshal(resp.body, &lim)
		}})
	if err != nil {
		return err
	}
	lim = normalizeLimits(lim)
	u.limits = &lim
	return nil
}

func (r *runner) infoCollections(ctx context.Context, u *user) error {
	var colls map[string]json.Number
	resp, err := r.do(ctx, u, request{kind: KindInfoCollections, method: http.MethodGet, path: "/info/collections",
		expect: []int{200, 404}, keepBody: true, check: func(resp *response) error {
			if resp.status != http.StatusOK {
				return nil
			}
			return json.Unmarshal(resp.body, &colls)
		}})
	if err != nil {
		return err
	}
	clear(u.collTS)
	if resp.status == http.StatusOK {
		for c, ts := range colls {
			u.collTS[c] = ts.String()
		}
	}
	return nil
}

// record is a BSO as uploaded.
type record struct {
	ID      string `json:"id"`
	Payload string `json:"payload"`
}

// postResult is the body of a POST to a collection.
type postResult struct {
	Modified json.Number                `json:"modified"`
	Batch    json.RawMessage            `json:"batch"`
	Success  []string                   `json:"success"`
	Failed   map[string]json.RawMessage `json:"failed"` // 1.5: a reason; 1.1: a list of them
}

func (r *runner) uploads(ctx context.Context, u *user, p plan) error {
	if len(p.posts) == 0 {
		return nil
	}
	payloadSource := u.creds.id // the Molotov script repeats the token id
	recs := make([][]record, len(p.posts))
	for i, po := range p.posts {
		recs[i] = make([]record, len(po.items))
		for j, it := range po.items {
			recs[i][j] = record{ID: it.id, Payload: fill(payloadSource, it.size)}
		}
	}
	if !p.batch {
		for i, po := range p.posts {
			if err := r.upload(ctx, u, KindCollPost, po.coll, "", recs[i], 200); err != nil {
				return err
			}
		}
		return nil
	}

	// One batch on one collection, as Firefox uploads: open with
	// batch=true, append with batch=<id>, commit with commit=true on the
	// last POST; a single POST opens and commits at once. Every request
	// carries X-If-Unmodified-Since with the collection timestamp seen at
	// the start, so a concurrent writer would make it fail with 412.
	coll := p.posts[0].coll
	last := len(p.posts) - 1
	if last == 0 {
		// Servers treat this exactly like a plain POST, so it is counted
		// as one.
		return r.upload(ctx, u, KindCollPost, coll, "batch=true&commit=true", recs[0], 200)
	}
	var batchID string
	defer u.track.batchEnded() // anything staged but not committed is gone
	for i := range p.posts {
		switch i {
		case 0:
			var res postResult
			if err := r.uploadResult(ctx, u, KindBatchOpen, coll, "batch=true", recs[i], 202, &res); err != nil {
				return err
			}
			id, err := batchIDOf(res.Batch)
			if err != nil {
				return err
			}
			batchID = id
		case last:
			q := "batch=" + url.QueryEscape(batchID) + "&commit=true"
			if err := r.upload(ctx, u, KindBatchCommit, coll, q, recs[i], 200); err != nil {
				return err
			}
		default:
			if err := r.upload(ctx, u, KindBatchAppend, coll, "batch="+url.QueryEscape(batchID), recs[i], 202); err != nil {
				return err
			}
		}
	}
	return nil
}

func batchIDOf(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil && s != "" {
		return s, nil
	}
	// Some servers render the id as a number.
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil && n != "" {
		return n.String(), nil
	}
	return "", fmt.Errorf("batch open answered without a batch id: %s", raw)
}

func (r *runner) upload(ctx context.Context, u *user, kind Kind, coll, query string, recs []record, want int) error {
	var res postResult
	return r.uploadResult(ctx, u, kind, coll, query, recs, want, &res)
}

// uploadResult POSTs recs and checks that the server took every one of
// them; the verifier learns what was acknowledged.
func (r *runner) uploadResult(ctx context.Context, u *user, kind Kind, coll, query string, recs []record, want int, res *postResult) error {
	body, err := json.Marshal(recs)
	if err != nil {
		return err
	}
	hdr := map[string]string{"X-If-Unmodified-Since": "0"}
	if ts, ok := u.collTS[coll]; ok {
		hdr["X-If-Unmodified-Since"] = ts
	}
	if u.legacy {
		hdr = nil // the UXP client never sends it
	}
	resp, err := r.do(ctx, u, request{kind: kind, method: http.MethodPost, path: "/storage/" + coll, query: query,
		body: body, header: hdr, expect: []int{want}, keepBody: true, check: func(resp *response) error {
			if err := json.Unmarshal(resp.body, res); err != nil {
				return fmt.Errorf("unreadable POST result: %v", err)
			}
			return checkAllStored(recs, res)
		}})
	staged := kind == KindBatchOpen || kind == KindBatchAppend
	u.track.posted(coll, recs, staged, kind == KindBatchCommit, err)
	if err != nil {
		return err
	}
	if lm := resp.header.Get("X-Last-Modified"); lm != "" && !staged {
		u.collTS[coll] = lm
	}
	return nil
}

// checkAllStored fails unless every record sent is listed in success and
// none in failed.
func checkAllStored(recs []record, res *postResult) error {
	if len(res.Failed) > 0 {
		for id, why := range res.Failed {
			return fmt.Errorf("%d of %d records failed, e.g. %q: %s", len(res.Failed), len(recs), id, string(why))
		}
	}
	ok := make(map[string]bool, len(res.Success))
	for _, id := range res.Success {
		ok[id] = true
	}
	for _, rec := range recs {
		if !ok[rec.ID] {
			return fmt.Errorf("record %q is in neither success nor failed (%d of %d listed)", rec.ID, len(res.Success), len(recs))
		}
	}
	return nil
}

// fill returns n bytes of src repeated.
func fill(src string, n int) string {
	if src == "" {
		src = "x"
	}
	var b bytes.Buffer
	b.Grow(n)
	for b.Len() < n {
		b.WriteString(src[:min(len(src), n-b.Len())])
	}
	return b.String()
}

// sessionOutcome classifies how a session ended, for the report.
func (r *runner) sessionOutcome(err error) {
	var se *statusError
	switch {
	case err == nil:
		r.rec.sessionsOK.Add(1)
	case errors.Is(err, errCut):
		r.rec.sessionsCut.Add(1)
	case errors.As(err, &se) && se.backoff:
		r.rec.sessionsBackedOff.Add(1)
	default:
		r.rec.sessionsFailed.Add(1)
	}
}
