package http

import (
	"errors"
	"sync"
	"testing"
)

// recorder keeps what the server reports to its Observer.
type recorder struct {
	mu                      sync.Mutex
	auth                    []error
	opened, committed       int
	written, read           int
	writtenBytes, readBytes int64
	conflicts               []int
}

func (r *recorder) AuthFailed(err error) { r.mu.Lock(); r.auth = append(r.auth, err); r.mu.Unlock() }
func (r *recorder) BatchOpened()         { r.mu.Lock(); r.opened++; r.mu.Unlock() }
func (r *recorder) BatchCommitted(n int, b int64) {
	r.mu.Lock()
	r.committed++
	r.written += n
	r.writtenBytes += b
	r.mu.Unlock()
}
func (r *recorder) RecordsWritten(n int, b int64) {
	r.mu.Lock()
	r.written += n
	r.writtenBytes += b
	r.mu.Unlock()
}
func (r *recorder) RecordsRead(n int, b int64) {
	r.mu.Lock()
	r.read += n
	r.readBytes += b
	r.mu.Unlock()
}
func (r *recorder) Conflict(status int) {
	r.mu.Lock()
	r.conflicts = append(r.conflicts, status)
	r.mu.Unlock()
}

func TestObserver(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, func(c *Config) { c.Observer = rec })

	expect(t, e.do(req{method: "GET", path: e.u("/info/collections"), noAuth: true}), 401, "")
	other := e.tokenWith(tokenOpts{uid: e.uid + 1})
	expect(t, e.do(req{method: "GET", path: e.u("/info/collections"), creds: &other}), 401, "")

	expect(t, e.put(e.u("/storage/meta/global"), `{"payload":"abcd"}`), 200, "")
	expect(t, e.post(e.u("/storage/bookmarks"), `[{"id":"a","payload":"12"},{"id":"b","payload":"345"}]`), 200, "")
	w := e.post(e.u("/storage/history?batch=true"), `[{"id":"h1","payload":"x"}]`)
	expect(t, w, 202, "")
	batch := decode[struct{ Batch string }](t, w).Batch
	expect(t, e.post(e.u("/storage/history?commit=true&batch="+batch), `[{"id":"h2","payload":"yy"}]`), 200, "")
	expect(t, e.get(e.u("/storage/bookmarks?full=1")), 200, "")
	expect(t, e.get(e.u("/storage/meta/global")), 200, "")
	expect(t, e.post(e.u("/storage/bookmarks"), `[{"id":"c","payload":"1"}]`, "X-If-Unmodified-Since", "1.00"), 412, "")

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.auth) != 2 || !errors.Is(rec.auth[0], ErrMissingAuthorization) || !errors.Is(rec.auth[1], ErrUIDMismatch) {
		t.Errorf("auth failures %v, want [missing, uid mismatch]", rec.auth)
	}
	if rec.opened != 1 || rec.committed != 1 {
		t.Errorf("batches opened %d committed %d", rec.opened, rec.committed)
	}
	if rec.written != 5 || rec.writtenBytes != 4+2+3+1+2 {
		t.Errorf("written %d records, %d bytes", rec.written, rec.writtenBytes)
	}
	if rec.read != 3 || rec.readBytes != 2+3+4 {
		t.Errorf("read %d records, %d bytes", rec.read, rec.readBytes)
	}
	if len(rec.conflicts) != 1 || rec.conflicts[0] != 412 {
		t.Errorf("conflicts %v", rec.conflicts)
	}
}
