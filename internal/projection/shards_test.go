package projection

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"testing"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/testenv"
)

// shardOf partitions by wiki, as the sharded aggregate does.
func shardOf(wiki string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(wiki))
	return int(h.Sum32() % uint32(n))
}

// readAll reads through r what the API shows: the legacy hash, the merged meta,
// the summed counters of several windows and the top lists.
func readAll(t *testing.T, r *Reader) map[string]any {
	t.Helper()
	ctx := context.Background()
	h, err := r.Head(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{"legacy": h.Legacy, "events": h.Meta.Events, "as_of": h.Meta.AsOf, "first": h.Meta.FirstSeq}
	for _, kind := range []Kind{KindCube, KindNamespace, KindEditor, KindWho, KindMinor, KindBytes, KindDomain} {
		for _, minutes := range []int64{0, 5, 60, 24 * 60} {
			keys := h.Keys.CountKeys(kind, minutes, h.Meta.AsOf)
			hs, err := r.SumHashes(ctx, h, keys)
			if err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprintf("%s/%d", kind, minutes)] = hs
		}
	}
	for _, q := range []TopQuery{
		{Kind: KindPages, Minutes: 15, N: 10, Users: true},
		{Kind: KindEditors, Minutes: 60, N: 25, Users: true},
		{Kind: KindPages, Minutes: 24 * 60, N: 50},
		{Kind: KindEditors, Minutes: 60, N: 5, Wiki: "enwiki"},
		{Kind: KindPages, Minutes: 60, N: 5, Domain: "commons.wikimedia.org"},
	} {
		top, err := r.Top(ctx, h, q)
		if err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprintf("top %+v", q)] = top
	}
	return out
}

func TestShardedProjectionSumsToUnsharded(t *testing.T) {
	c := testenv.Redis(t)
	evs := recorded(t)
	one, three := testenv.Prefix(t, c), testenv.Prefix(t, c)
	applyAll(t, NewStore(c, one), DefaultNamespace, "agg", evs, 500, 0, false)
	const n = 3
	parts := make([][]event.Event, n)
	for _, e := range evs {
		k := shardOf(e.Wiki, n)
		parts[k] = append(parts[k], e)
	}
	for k, p := range parts {
		if len(p) == 0 {
			t.Fatalf("shard %d got no event", k)
		}
		s := NewShardStore(c, three, k, n)
		if err := s.ClaimShards(context.Background()); err != nil {
			t.Fatal(err)
		}
		applyAll(t, s, DefaultNamespace, "agg", p, 300, 0, false)
		if w, err := s.Watermark(context.Background(), DefaultNamespace, "agg"); err != nil || w != uint64(len(p)) {
			t.Fatalf("shard %d watermark %d, %v; want %d", k, w, err, len(p))
		}
	}
	want := readAll(t, NewReader(c, one))
	got := readAll(t, NewReader(c, three))
	delete(want, "first")
	delete(got, "first")
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s:\n got %v\nwant %v", k, got[k], v)
		}
	}
	// On a single Redis every shard keeps the legacy hash.
	l1, _ := c.HGetAll(context.Background(), one).Result()
	l3, _ := c.HGetAll(context.Background(), three).Result()
	if !reflect.DeepEqual(l1, l3) || len(l1) == 0 {
		t.Errorf("legacy hash of the shards differs: %d fields, want %d", len(l3), len(l1))
	}
	err := NewShardStore(c, three, 0, 2).ClaimShards(context.Background())
	if !errors.Is(err, ErrShardCount) {
		t.Errorf("claiming 2 shards of a 3-shard projection: %v", err)
	}
	if err := NewStore(c, three).ClaimShards(context.Background()); !errors.Is(err, ErrShardCount) {
		t.Errorf("an unsharded writer on a 3-shard projection: %v", err)
	}
}

func TestShardKeys(t *testing.T) {
	k := New("b", "live")
	if got := k.InShard(0).Meta(); got != "{b}:ns:live:meta" {
		t.Errorf("shard 0 meta %s", got)
	}
	if got := k.InShard(2).Meta(); got != "{b:s2}:ns:live:meta" {
		t.Errorf("shard 2 meta %s", got)
	}
	if got := k.InShard(2).Pointer(); got != "{b:s2}:current" {
		t.Errorf("shard 2 pointer %s", got)
	}
	h := Head{Keys: k, Shards: 2, ShardNS: []string{"live", "r1"}}
	if got := h.inShard(k.All(KindCube), 1); got != "{b:s1}:ns:r1:all:cube" {
		t.Errorf("rewritten key %s", got)
	}
	if got := k.InShard(1).Legacy(); got != "b" {
		t.Errorf("legacy %s", got)
	}
}

func TestShardedReadDetectsADifference(t *testing.T) {
	c := testenv.Redis(t)
	evs := recorded(t)
	one, three := testenv.Prefix(t, c), testenv.Prefix(t, c)
	applyAll(t, NewStore(c, one), DefaultNamespace, "agg", evs, 500, 0, false)
	// Only two of three shards written: the sums must differ.
	var p []event.Event
	for _, e := range evs {
		if shardOf(e.Wiki, 3) != 2 {
			p = append(p, e)
		}
	}
	s := NewShardStore(c, three, 0, 3)
	if err := s.ClaimShards(context.Background()); err != nil {
		t.Fatal(err)
	}
	applyAll(t, s, DefaultNamespace, "agg", p, 300, 0, false)
	want, got := readAll(t, NewReader(c, one)), readAll(t, NewReader(c, three))
	diff := 0
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			diff++
		}
	}
	if diff < len(want)/2 {
		t.Errorf("only %d of %d reads differ with a shard missing", diff, len(want))
	}
	for k, v := range want {
		if top, ok := v.(Top); ok && len(top.Members) == 0 {
			t.Errorf("%s: empty top list, the comparison proves little", k)
		}
	}
}
