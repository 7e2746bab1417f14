package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wikiflow/wikiflow/lab/bench"
)

func TestMergePeersKeepsTheEarlierRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.json")
	prev := &bench.Results{Run: "old", Date: "2026-01-01T00:00:00Z",
		Throughput: []bench.Throughput{{Key: "e2e", Events: 1000}},
		Peers:      &bench.Peers{Events: 1}}
	b, err := prev.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cur := &bench.Results{Run: "new", Date: "2026-02-02T00:00:00Z", Peers: &bench.Peers{Events: 200000}, Notes: []string{"slow"}}
	got := mergePeers(path, cur, t.Logf)
	if got.Run != "old" || len(got.Throughput) != 1 || got.Throughput[0].Key != "e2e" {
		t.Errorf("the earlier run's figures were not kept: %+v", got)
	}
	if got.Peers == nil || got.Peers.Events != 200000 || got.Peers.Run != "new" || got.Peers.Date != cur.Date {
		t.Errorf("peers = %+v, want the new run's", got.Peers)
	}
	if len(got.Notes) != 1 || got.Notes[0] != "peers run new: slow" {
		t.Errorf("notes = %q", got.Notes)
	}
	if m := mergePeers(filepath.Join(t.TempDir(), "none.json"), cur, t.Logf); m != cur {
		t.Error("without earlier results the new results must be returned")
	}
}
