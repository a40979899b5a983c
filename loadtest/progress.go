package loadtest

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// progress writes the live progress line: rewritten in place with \r on a
// terminal, one line per interval otherwise (logs, CI).
type progress struct {
	done chan struct{}
	wg   sync.WaitGroup
}

func startProgress(w io.Writer, rec *recorder, start time.Time, every time.Duration) *progress {
	p := &progress{done: make(chan struct{})}
	if w == nil {
		return p
	}
	tty := isTerminal(w)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		var prev snapshot
		prevAt := start
		for {
			final := false
			select {
			case <-t.C:
			case <-p.done:
				final = true
			}
			now := time.Now()
			s := rec.snapshot()
			line := progressLine(now.Sub(start), s, prev, now.Sub(prevAt))
			prev, prevAt = s, now
			switch {
			case tty && final:
				fmt.Fprintf(w, "\r%s\x1b[K\n", line)
			case tty:
				fmt.Fprintf(w, "\r%s\x1b[K", line)
			default:
				fmt.Fprintln(w, line)
			}
			if final {
				return
			}
		}
	}()
	return p
}

// progressLine shows totals, the rates over the last interval and the
// p99 of the whole run and of the last interval alone (a long run's
// cumulative p99 hides a drift; the window's shows it).
func progressLine(elapsed time.Duration, s, prev snapshot, dt time.Duration) string {
	var reqRate, sessRate float64
	if dt > 0 {
		reqRate = float64(s.requests-prev.requests) / dt.Seconds()
		sessRate = float64(s.sessions-prev.sessions) / dt.Seconds()
	}
	var window time.Duration
	if s.hist != nil {
		window = s.hist.minus(prev.hist).quantile(0.99)
	}
	return fmt.Sprintf("%7.1fs  sessions %d (%.1f/s)  requests %d (%.1f/s)  errors %d  p99 %.1fms  window p99 %.1fms",
		elapsed.Seconds(), s.sessions, sessRate, s.requests, reqRate, s.errors, ms(s.p99), ms(window))
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}

// isTerminal reports whether w is a character device, without a terminal
// library: enough to choose between \r updates and plain lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
