//go:build unix

package http

import (
	"syscall"
	"testing"
)

// reportCPU adds cpu-ns/op, the process's CPU time (user + system, server
// and client together) per iteration from now until the benchmark ends.
// Unlike ns/op it hardly moves when other jobs load the machine, so old
// and new code can be compared on a busy box.
func reportCPU(b *testing.B) {
	start := cpuNanos()
	b.Cleanup(func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuNanos()-start)/float64(b.N), "cpu-ns/op")
		}
	})
}

func cpuNanos() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
