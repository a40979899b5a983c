package loadtest

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ServerCPU is what the server process used during the load phase
// (Config.ServerPID), from /proc/PID/stat before and after.
type ServerCPU struct {
	PID int `json:"pid"`
	// CPUSeconds is user plus system time over the load phase.
	CPUSeconds float64 `json:"cpu_seconds"`
	// PerThousandSessions is CPUSeconds per 1,000 completed sessions (0
	// when none completed).
	PerThousandSessions float64 `json:"cpu_seconds_per_1000_sessions"`
	// Cores is CPUSeconds over the elapsed time: how many cores the server
	// kept busy on average.
	Cores float64 `json:"cores"`
	// PeakRSSMiB is the largest resident set size sampled (every
	// rssInterval) during the load phase, 0 when it could not be read.
	PeakRSSMiB float64 `json:"peak_rss_mib,omitempty"`
}

// rssInterval is how often the server's resident set size is sampled.
const rssInterval = 250 * time.Millisecond

// readRSS returns the resident set size of a process in bytes; tests
// replace it.
var readRSS = procRSS

// procRSS reads VmRSS of pid from /proc/PID/status.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) != 2 || f[1] != "kB" {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || kb < 0 {
				break
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// rssSampler records the peak resident set size of pid until stopped.
type rssSampler struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func startRSSSampler(pid int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	sample := func() {
		if n, err := readRSS(pid); err == nil && n > s.peak.Load() {
			s.peak.Store(n)
		}
	}
	sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(rssInterval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return s
}

// finish stops sampling and returns the peak in MiB.
func (s *rssSampler) finish() float64 {
	close(s.stop)
	<-s.done
	return float64(s.peak.Load()) / (1 << 20)
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux ABI (the kernel scales its internal HZ to it).
const clockTicks = 100

// readCPU returns the user+system CPU time of a process so far; tests
// replace it.
var readCPU = procCPUTime

// procCPUTime reads utime+stime of pid from /proc/PID/stat.
func procCPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("server pid %d: %v (--server-pid needs Linux /proc and a local server)", pid, err)
	}
	return parseProcStat(string(b))
}

// parseProcStat extracts utime+stime (fields 14 and 15) from a
// /proc/PID/stat line. The command name (field 2) is in parentheses and may
// itself contain spaces and parentheses, so fields are counted from the
// last ')'.
func parseProcStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat line")
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, errors.New("short /proc stat line")
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("malformed /proc stat time %q", v)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// serverCPU computes the report's CPU figures from the readings around the
// load phase.
func serverCPU(pid int, before, after time.Duration, completed int64, elapsed time.Duration) *ServerCPU {
	c := &ServerCPU{PID: pid, CPUSeconds: (after - before).Seconds()}
	if completed > 0 {
		c.PerThousandSessions = c.CPUSeconds * 1000 / float64(completed)
	}
	if elapsed > 0 {
		c.Cores = c.CPUSeconds / elapsed.Seconds()
	}
	return c
}
