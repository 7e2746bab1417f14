package rebuild

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/aggregate"
	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/projection/projectiontest"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// testShards is the shard count of the sharded tests.
const testShards = 3

// startShards runs the testShards shard aggregates of the fixture's projection
// on the Redis redisURL names; the returned function stops them.
func (f *fixture) startShards(t *testing.T, redisURL string) func() {
	t.Helper()
	var stops []func() error
	for k := range testShards {
		cfg := aggregate.DefaultConfig()
		cfg.NATS.URL, cfg.Redis.URL, cfg.Base = f.natsURL, redisURL, f.base
		cfg.Shard, cfg.BatchSize = fmt.Sprintf("%d/%d", k, testShards), 300
		a, err := aggregate.New(cfg, f.log)
		if err != nil {
			t.Fatal(err)
		}
		stops = append(stops, testenv.Run(t, 20*time.Second, a.Run))
	}
	return func() {
		for _, stop := range stops {
			if err := stop(); err != nil {
				t.Error(err)
			}
		}
	}
}

// waitShards waits until the shard mirror holds the whole stream and every
// shard's consumer has applied and acknowledged all of its messages, which it
// does only after applying them.
func (f *fixture) waitShards(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	src, err := f.js.Stream(ctx, wire.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	want := src.CachedInfo().State.LastSeq
	names := make([]string, testShards)
	for k := range names {
		names[k] = wire.ShardConsumer(aggregate.DefaultConsumer, k, testShards)
	}
	testenv.WaitConsumed(t, f.js, wire.MirrorName(wire.DefaultStream, testShards), want, names...)
}

// countSharded publishes evs and counts them with the shard aggregates on
// redisURL, stopped once they have counted everything.
func (f *fixture) countSharded(t *testing.T, redisURL string, evs []recording.Event) map[string]int64 {
	t.Helper()
	want := f.publish(t, evs)
	stop := f.startShards(t, redisURL)
	f.waitShards(t)
	stop()
	return want
}

// apiView reads through a projection.Reader what the API reads of a sharded
// projection, the shards summed: the legacy counts, the events, the all-time
// and windowed counters and the top lists with their distinct users (see
// projectiontest.View), after checking that it reads every shard.
func apiView(t *testing.T, rc projection.ReadClient, base string) map[string]any {
	t.Helper()
	ctx := context.Background()
	r := projection.NewReader(rc, base)
	h, err := r.Head(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if h.Shards != testShards {
		t.Fatalf("the reader sees %d shards, want %d", h.Shards, testShards)
	}
	return projectiontest.View(t, r)
}

// shardCounters reads the all-time counters of every shard's current namespace.
func shardCounters(t *testing.T, rc projection.Client, base string) []map[projection.Kind]map[string]string {
	t.Helper()
	ctx := context.Background()
	out := make([]map[projection.Kind]map[string]string, testShards)
	for k := range testShards {
		st := projection.NewShardStore(rc, base, k, testShards)
		cur, err := st.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := st.Snapshot(ctx, cur, append(compared, projection.KindDomain)...)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Counters[projection.KindCube]) == 0 {
			t.Fatalf("shard %d counted nothing", k)
		}
		out[k] = snap.Counters
	}
	return out
}

// rebuildShards runs RunShards with the fixture's test settings over rc.
func (f *fixture) rebuildShards(t *testing.T, rc redis.UniversalClient, shard string, force bool) ([]Result, error) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Base, cfg.BatchSize, cfg.DropAfter, cfg.Shard, cfg.Force = f.base, 400, time.Second, shard, force
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	return New(cfg, f.log, nil).RunShards(ctx, f.nc, rc)
}

// checkSwitched checks that every shard was rebuilt, matched its live counters
// and was switched, its pointer naming the rebuilt namespace, the old one gone.
func checkSwitched(t *testing.T, rc projection.Client, base string, results []Result, events int) {
	t.Helper()
	ctx := context.Background()
	if len(results) != testShards {
		t.Fatalf("%d results, want one per shard", len(results))
	}
	var sum int64
	for k, res := range results {
		if res.Shard != k || res.Shards != testShards || !res.Switched || !res.Dropped || len(res.Differences) > 0 || res.Events == 0 {
			t.Errorf("shard %d: %+v", k, res)
		}
		sum += res.Events
		st := projection.NewShardStore(rc, base, k, testShards)
		if cur, err := st.Current(ctx); err != nil || cur != res.To {
			t.Errorf("shard %d points at %q (%v), want %s", k, cur, err, res.To)
		}
		if w, ok := res.Watermarks[wire.ShardConsumer(aggregate.DefaultConsumer, k, testShards)]; !ok || w == 0 {
			t.Errorf("shard %d rebuilt the watermarks %v", k, res.Watermarks)
		}
		if m, err := st.Meta(ctx, res.From); err != nil || len(m.Fields) > 0 {
			t.Errorf("shard %d keeps its old namespace's meta %v (%v)", k, m.Fields, err)
		}
	}
	if sum != int64(events) {
		t.Errorf("the shards' rebuilds applied %d messages, the stream holds %d", sum, events)
	}
}

// sameViews reports every difference between two apiViews.
func sameViews(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s: %s:\n got %v\nwant %v", what, k, got[k], v)
		}
	}
}

// TestRebuildAllShards counts the recording with three shard aggregates, then
// rebuilds shard 1 alone, and every shard: each shard's counters equal its live
// ones, each shard's pointer names its rebuilt namespace, what the API reads
// (the shards summed, each through its own pointer) is unchanged after each
// step, and the shard aggregates carry on in the new namespaces without
// counting anything twice.
func TestRebuildAllShards(t *testing.T) {
	f := newFixture(t, 0)
	evs := recording.Events()
	redisURL := testenv.RedisURL(t)
	want := f.countSharded(t, redisURL, evs)
	before, counters := apiView(t, f.rc, f.base), shardCounters(t, f.rc, f.base)
	equalCounts(t, "legacy hash before the rebuild", f.legacy(t), want)

	one, err := f.rebuildShards(t, f.rc, "1/3", false)
	if err != nil || len(one) != 1 || !one[0].Switched || one[0].Shard != 1 {
		t.Fatalf("rebuild of shard 1: %v %+v", err, one)
	}
	sameViews(t, "after the rebuild of shard 1 alone", apiView(t, f.rc, f.base), before)

	start := time.Now()
	results, err := f.rebuildShards(t, f.rc, ShardAll, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rebuilt %d shards in %s", len(results), time.Since(start).Round(time.Millisecond))
	checkSwitched(t, f.rc, f.base, results, len(evs))
	if got := shardCounters(t, f.rc, f.base); !reflect.DeepEqual(got, counters) {
		t.Errorf("the rebuilt shards' counters differ from the live ones:\n got %v\nwant %v", got, counters)
	}
	sameViews(t, "after the rebuild", apiView(t, f.rc, f.base), before)
	equalCounts(t, "legacy hash after the rebuild", f.legacy(t), want)
	mirror := wire.MirrorName(wire.DefaultStream, testShards)
	if names := testenv.ConsumerNames(t, f.js, mirror); len(names) != testShards {
		t.Errorf("consumers of the mirror after the rebuild: %v; want the shard aggregates' only", names)
	}

	// Again while the shard aggregates count more events: every shard catches
	// up with its live consumer, and the aggregates carry on in the new
	// namespaces without counting anything twice.
	stop := f.startShards(t, redisURL)
	more := f.publish(t, recordingCopies(t, evs[:100], "first"))
	f.waitShards(t)
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 100; i < 600; i += 100 {
			for d, n := range f.publish(t, recordingCopies(t, evs[i:i+100], fmt.Sprint("more", i))) {
				more[d] += n
			}
			time.Sleep(30 * time.Millisecond)
		}
	}()
	results, err = f.rebuildShards(t, f.rc, ShardAll, false)
	<-published
	if err != nil {
		t.Fatal(err)
	}
	var replayed int64
	for _, res := range results {
		replayed += res.Events
		if !res.Switched || len(res.Differences) > 0 {
			t.Errorf("shard %d rebuilt while counting: %+v", res.Shard, res)
		}
	}
	t.Logf("the rebuild while counting replayed %d of %d messages", replayed, len(evs)+600)
	if replayed < int64(len(evs)+100) {
		t.Errorf("the rebuild replayed %d messages: not even those counted before it started (%d)", replayed, len(evs)+100)
	}
	f.waitShards(t)
	stop()
	for d, n := range more {
		want[d] += n
	}
	equalCounts(t, "legacy hash after more events", f.legacy(t), want)
	if ev := apiView(t, f.rc, f.base)["events"].(int64); ev != int64(len(evs)+600) {
		t.Errorf("the shards hold %d events, want %d", ev, len(evs)+600)
	}
}

// TestRebuildShardThatDiffers tampers with shard 1's live counters: its
// rebuild reports the difference and leaves its pointer, while --shard all
// switches the other shards; with Force it is switched too, and the legacy
// hash loses the phantom counts.
func TestRebuildShardThatDiffers(t *testing.T) {
	f := newFixture(t, 0)
	evs := recording.Events()
	want := f.countSharded(t, testenv.RedisURL(t), evs)
	ctx := context.Background()
	tampered := projection.NewShardStore(f.rc, f.base, 1, testShards)
	k := tampered.Keys(projection.DefaultNamespace)
	phantom := projection.CubeField("phantom.example.org", "phantomwiki", "edit", false)
	f.rc.HIncrBy(ctx, k.All(projection.KindCube), phantom, 1000)
	f.rc.HIncrBy(ctx, k.All(projection.KindDomain), "phantom.example.org", 1000)
	f.rc.HIncrBy(ctx, k.Legacy(), "phantom.example.org", 1000)

	results, err := f.rebuildShards(t, f.rc, "1/3", false)
	if err == nil || !strings.Contains(err.Error(), "phantom.example.org") || len(results) != 1 || results[0].Switched {
		t.Fatalf("a shard that differs from live must not be switched: %v %+v", err, results)
	}
	if d := results[0].Differences; len(d) != 1 || !strings.Contains(d[0], phantom) {
		t.Errorf("differences %q, want the phantom cube field alone", d)
	}
	if cur, _ := tampered.Current(ctx); cur != projection.DefaultNamespace {
		t.Fatalf("shard 1 points at %s", cur)
	}

	results, err = f.rebuildShards(t, f.rc, ShardAll, false)
	if err == nil || !strings.Contains(err.Error(), "shard 1/3") || len(results) != testShards {
		t.Fatalf("--shard all over a shard that differs: %v %+v", err, results)
	}
	for k, res := range results {
		if res.Switched != (k != 1) {
			t.Errorf("shard %d switched %v: %+v", k, res.Switched, res)
		}
	}
	if cur, _ := tampered.Current(ctx); cur != projection.DefaultNamespace {
		t.Fatalf("shard 1 points at %s after --shard all", cur)
	}

	results, err = f.rebuildShards(t, f.rc, "1/3", true)
	if err != nil || len(results) != 1 || !results[0].Switched || !results[0].Dropped || len(results[0].Differences) != 1 {
		t.Fatalf("forced rebuild of shard 1: %v %+v", err, results)
	}
	equalCounts(t, "legacy hash after the forced switch", f.legacy(t), want)
	view := apiView(t, f.rc, f.base)
	if l := view["legacy"].(map[string]string); l["phantom.example.org"] != "" {
		t.Errorf("the API still counts %s phantom edits", l["phantom.example.org"])
	}
	if ev := view["events"].(int64); ev != int64(len(evs)) {
		t.Errorf("the shards hold %d events, want %d", ev, len(evs))
	}
}

// TestRebuildRefusesTheWrongShards: without --shard a sharded projection is
// refused, naming its shard count and the command to run, as is a shard count
// other than the recorded one, and --shard k/N of an unsharded projection;
// nothing is written.
func TestRebuildRefusesTheWrongShards(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	if err := projection.NewShardStore(f.rc, f.base, 0, testShards).ClaimShards(ctx); err != nil {
		t.Fatal(err)
	}
	for shard, want := range map[string][]string{
		"":    {"has 3 shards", "wikiflow rebuild --shard all", "--shard k/3"},
		"0/2": {"shard 0/2", "has 3 shards", "not 2"},
		"2/4": {"has 3 shards", "not 4"},
	} {
		results, err := f.rebuildShards(t, f.rc, shard, false)
		if err == nil || len(results) > 0 {
			t.Errorf("shard %q: %v %+v", shard, err, results)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("shard %q: %q does not say %q", shard, err, w)
			}
		}
	}
	unsharded := testenv.Prefix(t, f.rc)
	cfg := DefaultConfig()
	cfg.Base, cfg.Shard = unsharded, "1/3"
	if _, err := New(cfg, f.log, nil).RunWith(ctx, f.nc, f.rc); err == nil || !strings.Contains(err.Error(), "is not sharded") {
		t.Errorf("--shard 1/3 of an unsharded projection: %v", err)
	}
	for _, pat := range []string{"{" + f.base + "}*", "{" + f.base + ":s*", "{" + unsharded + "}*"} {
		keys, err := f.rc.Keys(ctx, pat).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 0 && (len(keys) != 1 || keys[0] != projection.New(f.base, "").ShardCount()) {
			t.Errorf("a refused rebuild wrote %v", keys)
		}
	}
	if err := (Config{Shard: "3/3"}).Validate(); err == nil {
		t.Error("shard 3/3 is valid")
	}
}

// TestRebuildShardsOnRedisCluster counts with three shard aggregates into a
// Redis Cluster, whose shards live in slots of their own and keep no legacy
// hash, and rebuilds shard 1 alone, then every shard, through Run with the
// cluster's node URLs: each shard is switched with the same counters, and what
// the API reads is unchanged.
func TestRebuildShardsOnRedisCluster(t *testing.T) {
	urls := testenv.RedisCluster(t)
	f := newFixture(t, 0)
	cc, err := brokers.Redis{URL: urls}.Universal()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	f.base = fmt.Sprintf("rebuild_cluster_%d", time.Now().UnixNano())
	t.Cleanup(func() { dropCluster(cc, f.base) })
	evs := recording.Events()
	want := f.countSharded(t, urls, evs)
	before, counters := apiView(t, cc, f.base), shardCounters(t, cc, f.base)
	legacy := before["legacy"].(map[string]string)
	for d, n := range want {
		if legacy[d] != strconv.FormatInt(n, 10) {
			t.Errorf("the summed domain counts give %s = %q, want %d", d, legacy[d], n)
		}
	}
	run := func(shard string) []Result {
		t.Helper()
		cfg := DefaultConfig()
		cfg.NATS.URL, cfg.Redis.URL, cfg.Base, cfg.Shard, cfg.DropAfter = f.natsURL, urls, f.base, shard, time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		results, err := New(cfg, f.log, nil).Run(ctx)
		if err != nil {
			t.Fatalf("rebuild --shard %s on the cluster: %v", shard, err)
		}
		return results
	}
	if one := run("1/3"); len(one) != 1 || !one[0].Switched || !one[0].Dropped {
		t.Fatalf("rebuild of shard 1: %+v", one)
	}
	sameViews(t, "after the rebuild of shard 1 alone", apiView(t, cc, f.base), before)
	checkSwitched(t, cc, f.base, run(ShardAll), len(evs))
	if got := shardCounters(t, cc, f.base); !reflect.DeepEqual(got, counters) {
		t.Errorf("the rebuilt shards' counters differ from the live ones:\n got %v\nwant %v", got, counters)
	}
	sameViews(t, "after the rebuild", apiView(t, cc, f.base), before)
	if n, err := cc.Exists(context.Background(), f.base).Result(); err != nil || n != 0 {
		t.Errorf("a rebuild on the cluster wrote the legacy hash (%d, %v)", n, err)
	}
}

// dropCluster deletes every key of the projection base from the cluster.
func dropCluster(c redis.UniversalClient, base string) {
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		for _, pat := range []string{base, "{" + base + "}*", "{" + base + ":s*"} {
			iter := n.Scan(ctx, 0, pat, 1000).Iterator()
			for iter.Next(ctx) {
				n.Del(ctx, iter.Val())
			}
		}
		return nil
	})
}
