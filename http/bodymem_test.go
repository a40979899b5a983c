package http

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

func TestReadGrowing(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 10000) // 160 000 bytes
	for _, tc := range []struct {
		name string
		n    int
		hint int64
		wrap func(io.Reader) io.Reader
	}{
		{"exact hint", len(data), int64(len(data)), nil},
		{"unknown length", len(data), -1, nil},
		{"hint too small", len(data), 100, nil},
		{"hint too large", 1000, int64(len(data)), nil},
		{"empty", 0, 0, nil},
		{"one byte at a time", 50000, 50000, iotest.OneByteReader},
		{"EOF with data", 3000, 3000, iotest.DataErrReader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(data[:tc.n])
			if tc.wrap != nil {
				r = tc.wrap(r)
			}
			got, err := readGrowing(r, tc.hint, nil)
			if err != nil || !bytes.Equal(got, data[:tc.n]) {
				t.Fatalf("read %d bytes, err %v; want %d bytes", len(got), err, tc.n)
			}
			if tc.hint == int64(tc.n) && tc.n > initialBodyBuffer && cap(got) != tc.n {
				t.Errorf("cap %d for a correctly announced %d bytes: the buffer outgrew the body", cap(got), tc.n)
			}
		})
	}
	_, err := readGrowing(iotest.TimeoutReader(bytes.NewReader(data)), -1, nil)
	if err != iotest.ErrTimeout {
		t.Fatalf("error %v, want the reader's", err)
	}
}

// startRealServer serves h on a fresh 127.0.0.1 port over real sockets.
func startRealServer(t testing.TB, h http.Handler) (addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// signedHead is the head of a Hawk-signed request announcing a body of
// length bytes (its Content-Length), without the body.
func (e *env) signedHead(method, path string, length int64, nonce string) string {
	c := e.token()
	auth := signHawk(c, method, path, "127.0.0.1", "8000", e.clock.Now(), nonce, "")
	return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nAuthorization: %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", method, path, auth, length)
}

// Finding 4 of issue 12: an authenticated POST announcing the largest body
// allowed and sending one byte reserved the whole announced size. Fifty such
// stalled uploads must cost a small fraction of what they announce.
func TestStalledUploadsAllocateAsBytesArrive(t *testing.T) {
	e := newEnv(t)
	const conns = 50
	announced := e.srv.limits.MaxRequestBytes
	var reading sync.WaitGroup
	reading.Add(conns)
	// The handler signals when the storage code first reads the body: by
	// then the old code had already allocated Content-Length bytes.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = &firstRead{ReadCloser: r.Body, once: reading.Done}
		e.srv.ServeHTTP(w, r)
	})
	addr := startRealServer(t, h)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		head := e.signedHead("POST", e.u("/storage/bookmarks"), announced, "n"+strconv.Itoa(i))
		if _, err := io.WriteString(c, head+"["); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { reading.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the handlers did not all start reading their bodies")
	}
	// Nor do they hold the body budget by what they announce.
	if held := e.srv.bodies.held.Load(); held > conns*bodyUpfront {
		t.Errorf("%d stalled uploads hold %d bytes of the body budget, more than %d up front each", conns, held, bodyUpfront)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	total := conns * announced
	t.Logf("%d stalled uploads announcing %d bytes in all: heap grew by %d bytes", conns, total, growth)
	if growth > total/20 {
		t.Fatalf("heap grew by %d bytes for %d stalled uploads announcing %d: allocation follows Content-Length, not the bytes received", growth, conns, total)
	}
}

type firstRead struct {
	io.ReadCloser
	once func()
	done bool
}

func (f *firstRead) Read(p []byte) (int, error) {
	if !f.done {
		f.done = true
		f.once()
	}
	return f.ReadCloser.Read(p)
}
