package projection

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

// TestBulkEqualsApply writes the recording as a rebuild does, in batches whose
// buckets overlap (so that keys are first set, then incremented), then
// checkpoints once: the namespace must hold exactly what the events say, with
// the meta and watermark one Apply per batch leaves.
func TestBulkEqualsApply(t *testing.T) {
	c := testenv.Redis(t)
	base := testenv.Prefix(t, c)
	s := NewStore(c, base)
	evs := recorded(t)
	ctx := context.Background()
	const ns, consumer, size = "r1", "agg", 300
	bulk := s.NewBulk(ns)
	d := NewPartialDelta(AllParts, time.Time{})
	var asOf time.Time
	for i := 0; i < len(evs); i += size {
		d.Reset()
		for k := i; k < min(i+size, len(evs)); k++ {
			d.Add(&evs[k])
		}
		if d.AsOf().After(asOf) {
			asOf = d.AsOf()
		}
		if err := bulk.Write(ctx, d); err != nil {
			t.Fatalf("write batch at %d: %v", i, err)
		}
	}
	k := s.Keys(ns)
	if w, err := s.Watermark(ctx, ns, consumer); err != nil || w != 0 {
		t.Fatalf("watermark before the checkpoint: %d %v; want 0 (writes do not move it)", w, err)
	}
	n := uint64(len(evs))
	res, err := bulk.Checkpoint(ctx, consumer, 0, n, int64(len(evs)), asOf, 1)
	if err != nil || res.Status != Applied || res.Watermark != n {
		t.Fatalf("checkpoint: %+v %v", res, err)
	}
	check(t, c, k, expect(k, evs))
	m, err := s.Meta(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if m.Events != int64(len(evs)) || m.FirstSeq != 1 || !m.AsOf.Equal(asOf.Truncate(time.Millisecond)) {
		t.Errorf("meta = %+v; want events %d, first_seq 1, as_of %s", m, len(evs), asOf)
	}
	if l, err := c.Exists(ctx, k.Legacy()).Result(); err != nil || l != 0 {
		t.Errorf("legacy hash written (%d, %v): a bulk write never mirrors", l, err)
	}

	// A checkpoint from a stale watermark changes nothing.
	before := snapshot(t, c, base)
	res, err = bulk.Checkpoint(ctx, consumer, n-1, n+5, 5, time.Now(), 0)
	if err != nil || res.Status != Conflict || res.Watermark != n {
		t.Fatalf("checkpoint at a stale watermark: %+v %v; want a conflict at %d", res, err, n)
	}
	sameSnapshot(t, before, snapshot(t, c, base))
}

// TestBulkReloadsItsScript: after SCRIPT FLUSH the sorted-set script is loaded
// again and the increments still land once.
func TestBulkReloadsItsScript(t *testing.T) {
	c := testenv.Redis(t)
	base := testenv.Prefix(t, c)
	s := NewStore(c, base)
	evs := recorded(t)[:50]
	ctx := context.Background()
	bulk := s.NewBulk("r1")
	d := NewDelta()
	for range 2 {
		d.Reset()
		for i := range evs {
			d.Add(&evs[i])
		}
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := bulk.Write(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	k := s.Keys("r1")
	key := k.Hour(KindPages, evs[0].Time)
	member := evs[0].Domain + FieldSep + evs[0].Title
	var want float64
	for _, e := range evs {
		if e.Domain == evs[0].Domain && e.Title == evs[0].Title && k.Hour(KindPages, e.Time) == key {
			want += 2
		}
	}
	got, err := c.ZScore(ctx, key, member).Result()
	if err != nil || got != want {
		t.Errorf("%s %s = %v %v, want %v", key, member, got, err, want)
	}
}

// BenchmarkBulkWrite measures what a rebuild does per batch: counting 20,000
// distinct events (copies of the recorded ones on distinct pages, in stream
// order) into a Delta and writing it into a namespace that grows as the
// batches go.
func BenchmarkBulkWrite(b *testing.B) {
	const size = 20000
	c := testenv.Redis(b)
	base := testenv.Prefix(b, c)
	s := NewStore(c, base)
	evs := recorded(b)
	bulk := s.NewBulk("rebuild")
	d := NewPartialDelta(AllParts, time.Time{})
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		d.Reset()
		for range size {
			e := evs[n%len(evs)]
			e.Title = "c" + strconv.Itoa(n/len(evs)) + " " + e.Title
			d.Add(&e)
			n++
		}
		if err := bulk.Write(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
}
