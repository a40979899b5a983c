package testkit

import "testing"

// TestMemcachedPortTaken: a memcached whose port another memcached took
// after it was found free starts on a fresh port; it does not take the
// other one, which answers on that port, for its own.
func TestMemcachedPortTaken(t *testing.T) {
	other := StartMemcached(t)
	m := &Memcached{t: t, bin: other.bin, port: other.port}
	m.Start()
	t.Cleanup(m.Stop)
	if m.port == other.port {
		t.Fatalf("started on the taken port %d", m.port)
	}
	if err := ping(m.Addr(), m.cmd.Process.Pid); err != nil {
		t.Fatalf("the new server: %v", err)
	}
	if err := ping(other.Addr(), m.cmd.Process.Pid); err == nil {
		t.Fatal("ping took the other memcached for ours")
	}
	// A restart keeps the port.
	port := m.port
	m.Stop()
	m.Start()
	if m.port != port {
		t.Fatalf("restarted on port %d, want %d", m.port, port)
	}
}
