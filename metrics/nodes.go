package metrics

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weave-sync/weave"
)

// WatchNodes registers per-node metrics read from list, typically the
// token database's Nodes method: live users, capacity, current load, free
// slots and state, labelled node=<node URL>. list is polled like the
// database collectors, at most every Options.NodePollInterval.
func (m *Metrics) WatchNodes(list func(ctx context.Context) ([]weave.Node, error)) error {
	return m.register(m.newPoller("nodes", "", newNodeSource(list), m.opts.NodePollInterval), "node list")
}

type nodeSource struct {
	list                                    func(ctx context.Context) ([]weave.Node, error)
	users, capacity, load, available, state *prometheus.Desc
}

func newNodeSource(list func(ctx context.Context) ([]weave.Node, error)) *nodeSource {
	d := func(n, help string, vars ...string) *prometheus.Desc { return prometheus.NewDesc(n, help, vars, nil) }
	return &nodeSource{
		list:     list,
		users:    d("weave_node_users", "Live (not replaced) user records assigned to the node.", "node"),
		capacity: d("weave_node_capacity", "Most users the node should hold.", "node"),
		load:     d("weave_node_current_load", "User records assigned to the node, replaced ones not yet purged included.", "node"),
		available: d("weave_node_available_slots",
			"New users the node may still take before capacity is released again.", "node"),
		state: d("weave_node_state",
			"1 for the node's current state (up, backoff, draining, down), 0 for the others.", "node", "state"),
	}
}

func (s *nodeSource) describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.users, s.capacity, s.load, s.available, s.state} {
		ch <- d
	}
}

func (s *nodeSource) fetch(ctx context.Context) ([]prometheus.Metric, error) {
	nodes, err := s.list(ctx)
	if err != nil {
		return nil, fmt.Errorf("nodes: %w", err)
	}
	g := prometheus.GaugeValue
	out := make([]prometheus.Metric, 0, len(nodes)*8)
	seen := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		if seen[n.URL] {
			continue // a duplicate would fail the whole scrape
		}
		seen[n.URL] = true
		out = append(out,
			prometheus.MustNewConstMetric(s.users, g, float64(n.Users), n.URL),
			prometheus.MustNewConstMetric(s.capacity, g, float64(n.Capacity), n.URL),
			prometheus.MustNewConstMetric(s.load, g, float64(n.CurrentLoad), n.URL),
			prometheus.MustNewConstMetric(s.available, g, float64(n.Available), n.URL),
		)
		for _, st := range []weave.NodeState{weave.NodeUp, weave.NodeBackoff, weave.NodeDraining, weave.NodeDown} {
			out = append(out, prometheus.MustNewConstMetric(s.state, g, b2f(n.State == st), n.URL, string(st)))
		}
	}
	return out, nil
}
