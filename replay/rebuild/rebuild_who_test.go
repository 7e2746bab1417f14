package rebuild

import (
	"context"
	"strings"
	"testing"

	"github.com/wikiflow/wikiflow/internal/projection"
)

// TestRebuildComparesWhoCounters: the rebuild fills the who counters (bot,
// registered, anonymous, temporary) from the log as the live aggregate does, and
// a live projection whose who counters alone differ is not switched away from.
func TestRebuildComparesWhoCounters(t *testing.T) {
	f, _, _ := liveFixture(t)
	store, k := f.liveKeys()
	ctx := context.Background()
	live, err := f.rc.HGetAll(ctx, k.All(projection.KindWho)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 4 {
		t.Fatalf("live who counters %v, want bot, registered, anonymous and temporary", live)
	}
	// Move one count from anonymous to temporary: every other counter still agrees.
	f.rc.HIncrBy(ctx, k.All(projection.KindWho), "anonymous", -1)
	f.rc.HIncrBy(ctx, k.All(projection.KindWho), "temporary", 1)
	res, err := f.rebuild(t, nil)
	if err == nil || res.Switched {
		t.Fatalf("a rebuild whose who counters differ from live switched: %+v", res)
	}
	joined := strings.Join(res.Differences, "; ")
	if len(res.Differences) != 2 || !strings.Contains(joined, "who anonymous") || !strings.Contains(joined, "who temporary") {
		t.Fatalf("differences %q; want exactly who anonymous and who temporary", res.Differences)
	}
	// Put the live counters back: the rebuild now equals live and switches, its
	// who counters equal to those the live aggregate wrote.
	f.rc.HIncrBy(ctx, k.All(projection.KindWho), "anonymous", 1)
	f.rc.HIncrBy(ctx, k.All(projection.KindWho), "temporary", -1)
	res, err = f.rebuild(t, nil)
	if err != nil || !res.Switched {
		t.Fatalf("rebuild after the repair: %v %+v", err, res)
	}
	rebuilt, err := f.rc.HGetAll(ctx, store.Keys(res.To).All(projection.KindWho)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(rebuilt) != len(live) {
		t.Errorf("rebuilt who counters %v, live %v", rebuilt, live)
	}
	for g, v := range live {
		if rebuilt[g] != v {
			t.Errorf("who %s: rebuilt %s, live %s", g, rebuilt[g], v)
		}
	}
}
