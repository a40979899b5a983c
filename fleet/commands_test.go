package fleet_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/weave-sync/weave"
	"github.com/weave-sync/weave/fleet"
)

// TestRunNodeAddList: `weave node add` refuses a URL that is not http(s)
// and a missing shard, records the node with its shard, and `weave node
// list` shows it with its redacted database and health; a node without a
// recorded database says so.
func TestRunNodeAddList(t *testing.T) {
	w := newWorld(t, backends()[0], 1)
	var out bytes.Buffer
	adm := &fleet.Admin{Migrator: &fleet.Migrator{Dir: w.tokens}, Out: &out}
	var checked []string
	f := &fleet.NodeFlags{
		Capacity: 7,
		CheckShard: func(_ context.Context, dsn string) (string, error) {
			checked = append(checked, dsn)
			return "test shard", nil
		},
		Redact: func(dsn string) string { return "redacted:" + dsn },
		Health: func(context.Context, string) string { return "fine" },
	}
	ctx := context.Background()
	for args, want := range map[string]string{
		"":                           "want add, list, set-state or drain",
		"add":                        "usage: weave node add URL",
		"add ftp://n.example":        "want http(s)://HOST",
		"add https://n2.example.com": "--database-url is required",
		"reboot":                     `unknown node command "reboot"`,
	} {
		if err := adm.RunNode(ctx, strings.Fields(args), f); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("node %s: %v, want %q", args, err, want)
		}
	}
	if len(checked) != 0 {
		t.Fatalf("a refused node add opened %q", checked)
	}
	f.DSN = "shard2"
	if err := adm.RunNode(ctx, []string{"add", "https://n2.example.com/"}, f); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "https://n2.example.com (capacity 7, test shard, state up)") || len(checked) != 1 {
		t.Fatalf("node add said %q, checked %q", out.String(), checked)
	}
	if _, err := w.tokens.AddNode(ctx, weave.Node{URL: "https://bare.example.com", Capacity: 1}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := adm.RunNode(ctx, []string{"list"}, f); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "redacted:shard2") || !strings.Contains(out.String(), "fine") || !strings.Contains(out.String(), "no database URL recorded") {
		t.Fatalf("node list:\n%s", out.String())
	}
}

// TestRunUserUsage: `weave user` refuses what it cannot run before it
// touches a database.
func TestRunUserUsage(t *testing.T) {
	adm := &fleet.Admin{}
	for args, want := range map[string]string{
		"":          "want show EMAIL|UID",
		"show":      "want show EMAIL|UID",
		"rename 12": `unknown user command "rename"`,
	} {
		if err := adm.RunUser(context.Background(), strings.Fields(args), &fleet.UserFlags{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("user %s: %v, want %q", args, err, want)
		}
	}
}
