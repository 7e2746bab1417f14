package main

import (
	"os"
	"path/filepath"
	"strings"
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

func TestPeersOfSomeSystemsKeepTheOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.json")
	sum := bench.Summarize([]float64{1000})
	prev := &bench.Results{Run: "old", Date: "2026-01-01T00:00:00Z", Peers: &bench.Peers{Run: "old", Date: "2026-01-01T00:00:00Z", Systems: []bench.PeerResult{
		{Key: bench.PeerWikiflow, Rate: sum}, {Key: "python", Rate: sum}, {Key: "kstreams", Note: "no Maven"}, {Key: bench.PeerWikiflowB, Rate: sum},
	}}}
	b, err := prev.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cur := &bench.Results{Run: "new", Peers: &bench.Peers{Systems: []bench.PeerResult{{Key: bench.PeerWikiflow, Rate: bench.Summarize([]float64{2000})}}}}
	got := mergePeers(path, cur, t.Logf).Peers.Systems
	if len(got) != 3 || got[0].Rate.Median != 2000 || got[1].Key != "python" || got[2].Key != "kstreams" {
		t.Fatalf("systems = %+v, want the new wikiflow, then python and kstreams of the earlier run", got)
	}
	if !strings.Contains(got[1].Note, "old") || got[2].Note != "no Maven" {
		t.Errorf("notes: %q, %q", got[1].Note, got[2].Note)
	}

	// A run without the peers keeps the earlier peers.
	other := &bench.Results{Run: "other"}
	keepPeers(path, other, t.Logf)
	if other.Peers == nil || other.Peers.Run != "old" || len(other.Peers.Systems) != 4 {
		t.Errorf("peers of a run without them: %+v", other.Peers)
	}
}
