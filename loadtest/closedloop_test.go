package loadtest

import (
	"math"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weave-sync/weave"
)

func TestParseProcStat(t *testing.T) {
	// The command name may hold spaces and parentheses; utime 250 and
	// stime 150 ticks are fields 14 and 15.
	line := "4242 (we) ird (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 150 0 0 20 0 9 0 100 1000000 500 18446744073709551615\n"
	got, err := parseProcStat(line)
	if err != nil || got != 4*time.Second {
		t.Errorf("parseProcStat = %v, %v; want 4s", got, err)
	}
	for _, bad := range []string{"", "4242 (x) S 1 2", "4242 (x) S 1 4242 4242 0 -1 4194560 900 0 0 0 x 150 0"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) accepted", bad)
		}
	}
}

// The real /proc reading sees this process's CPU time grow.
func TestProcCPUTimeOwnProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	before, err := procCPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0.0
	for end := time.Now().Add(150 * time.Millisecond); time.Now().Before(end); {
		for i := range 10000 {
			x += math.Sqrt(float64(i))
		}
	}
	after, err := procCPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before || x == 0 {
		t.Errorf("CPU time did not grow: %v then %v", before, after)
	}
	if _, err := procCPUTime(1 << 30); err == nil {
		t.Error("a pid that does not exist was read")
	}
	if rss, err := procRSS(os.Getpid()); err != nil || rss < 1<<20 {
		t.Errorf("own RSS %d bytes, %v", rss, err)
	}
}

// Closed loop: sessions back to back; sessions/s is completed sessions over
// the elapsed time, the session percentiles are session durations, and the
// server's CPU seconds are the difference of its readings around the load
// phase, also per 1,000 sessions.
func TestClosedLoopThroughputAndServerCPU(t *testing.T) {
	f := newFakeSync(t)
	f.infoDelay = 20 * time.Millisecond
	// The fake server "uses" 10 ms of CPU per session (per info/collections).
	old := readCPU
	t.Cleanup(func() { readCPU = old })
	readCPU = func(pid int) (time.Duration, error) {
		if pid != 4242 {
			t.Errorf("CPU read of pid %d", pid)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		return 7*time.Second + time.Duration(f.infoCollections)*10*time.Millisecond, nil
	}
	// Its resident set: 100 MiB, then 300 MiB once, then 200 MiB.
	oldRSS := readRSS
	t.Cleanup(func() { readRSS = oldRSS })
	var rssCalls atomic.Int64
	readRSS = func(pid int) (int64, error) {
		switch rssCalls.Add(1) {
		case 1:
			return 100 << 20, nil
		case 2:
			return 300 << 20, nil
		}
		return 200 << 20, nil
	}
	c := fakeConfig(f)
	c.Verify = false
	c.ClosedLoop = true
	c.ServerPID = 4242
	c.Sessions = 120
	rep, err := Run(t.Context(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	rep.WriteTable(&table)
	t.Log("\n" + table.String())
	if !rep.OK() || rep.Sessions.Completed != 120 || !rep.ClosedLoop {
		t.Fatalf("run: %+v", rep.Sessions)
	}
	s := rep.Sessions
	if want := float64(s.Completed) / rep.ElapsedSec; math.Abs(s.PerSecond-want) > 1e-9*want {
		t.Errorf("sessions/s %.3f, want completed/elapsed = %.3f", s.PerSecond, want)
	}
	// Every session waits 20 ms for info/collections: at most
	// concurrency/20ms sessions per second, and no session shorter.
	if limit := float64(c.Concurrency) / 0.020; s.PerSecond > limit {
		t.Errorf("sessions/s %.1f above the possible %.1f", s.PerSecond, limit)
	}
	if s.P50Ms < 20 || s.P99Ms < s.P50Ms {
		t.Errorf("session p50 %.1f ms, p99 %.1f ms: want p50 ≥ 20 ms ≤ p99", s.P50Ms, s.P99Ms)
	}
	cpu := rep.ServerCPU
	if cpu == nil {
		t.Fatalf("no server CPU in the report (%s)", rep.ServerCPUError)
	}
	if cpu.PID != 4242 || math.Abs(cpu.CPUSeconds-1.2) > 1e-9 || math.Abs(cpu.PerThousandSessions-10) > 1e-9 {
		t.Errorf("server CPU %+v, want 1.2 s and 10 s per 1,000 sessions", cpu)
	}
	if cpu.PeakRSSMiB != 300 {
		t.Errorf("peak RSS %.1f MiB, want 300", cpu.PeakRSSMiB)
	}
	if want := 1.2 / rep.ElapsedSec; math.Abs(cpu.Cores-want) > 1e-9 {
		t.Errorf("cores %.4f, want %.4f", cpu.Cores, want)
	}
	if !strings.Contains(table.String(), "10.000 per 1,000 sessions") || !strings.Contains(table.String(), "closed loop") {
		t.Errorf("table lacks the CPU or closed-loop line")
	}
}

func TestClosedLoopAndMixValidation(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.Mode, c.Target, c.MasterSecret = ModeDirect, "http://127.0.0.1:1", "s"
		return c
	}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.ClosedLoop, c.ThinkTime = true, time.Second }, "think time must be 0"},
		{func(c *Config) { c.ClosedLoop, c.RampUp = true, time.Second }, "ramp-up must be 0"},
		{func(c *Config) { c.ServerPID = -1 }, "server pid must not be negative"},
		{func(c *Config) { c.ServerPID = 1 << 30 }, "server pid"},
		{func(c *Config) { c.Mix = "nope" }, `unknown mix "nope"`},
	} {
		c := base()
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want %q, got %v", tc.want, err)
		}
	}
	c := base()
	c.ClosedLoop, c.Mix, c.ServerPID = true, MixFirefoxReads, os.Getpid()
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

// firefox-reads mostly reads: most sessions upload nothing, uploads are
// small, and GETs outnumber writes by far; molotov is the write-heavy one.
func TestFirefoxReadsMix(t *testing.T) {
	const n = 20_000
	lim := weave.DefaultLimits()
	count := func(m mix) (reads, writes, records, uploadSessions int) {
		for i := range n {
			p := m.newPlan(sessionRand(7, int64(i)), lim)
			reads += 1 + p.metaGets + len(p.collGets) // info/collections too
			if p.clientsGet {
				reads++
			}
			if p.clientsPost {
				writes++
			}
			writes += len(p.posts) + len(p.deletes)
			if len(p.posts) > 0 {
				uploadSessions++
			}
			for _, po := range p.posts {
				records += len(po.items)
				if m.itemsMax == 10 && len(po.items) > 10 {
					t.Fatalf("firefox-reads upload of %d records", len(po.items))
				}
			}
		}
		return
	}
	r, w, rec, up := count(firefoxReadsMix())
	if share := float64(r) / float64(r+w); share < 0.85 {
		t.Errorf("firefox-reads: reads are %.2f of requests, want ≥ 0.85", share)
	}
	within(t, "firefox-reads sessions with uploads", up, n, 0.20)
	mr, mw, mrec, _ := count(molotovMix())
	if float64(mr)/float64(mr+mw) >= 0.8 || mrec < 10*rec {
		t.Errorf("molotov: %d reads, %d writes, %d records (firefox-reads %d): not the write-heavy mix", mr, mw, mrec, rec)
	}
	if fn := mixes[MixFirefoxReads]; fn == nil || MixNames()[0] != MixMolotov {
		t.Error("mix names")
	}
}

// The Hawk clock skew is measured on a 401 only: a server whose clock is
// ahead costs each user one retry, and an X-Weave-Timestamp that is not the
// server's clock (go-syncstorage echoes X-Last-Modified, 0.00 for an empty
// account) does not throw the skew off.
func TestSkewFromUnauthorizedOnly(t *testing.T) {
	f := newFakeSync(t)
	f.clockAhead = 10 * time.Minute
	f.staleTimestamps = true
	c := fakeConfig(f)
	c.Verify = false
	c.Sessions = 60
	rep, err := Run(t.Context(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Sessions.Completed != 60 {
		var b strings.Builder
		rep.WriteTable(&b)
		t.Fatal(b.String())
	}
	if rep.AuthRetries != int64(c.Users) {
		t.Errorf("%d 401 retries, want one per user (%d)", rep.AuthRetries, c.Users)
	}
}
