package projection

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/testenv"
)

// TestPartialDeltasEqualOneApply applies the recording as a rebuild does: each
// batch's counters in one call, its sorted sets and sketches in calls of a few
// members each. The namespace must hold exactly what the events say.
func TestPartialDeltasEqualOneApply(t *testing.T) {
	c := testenv.Redis(t)
	base := testenv.Prefix(t, c)
	s := NewStore(c, base)
	evs := recorded(t)
	ctx := context.Background()
	const ns, consumer, size, perCall = "r1", "agg", 300, 7
	counts, detail := NewPartialDelta(Counts, time.Time{}), NewPartialDelta(Detail, time.Time{})
	var w uint64
	calls := 0
	for i := 0; i < len(evs); i += size {
		j := min(i+size, len(evs))
		counts.Reset()
		detail.Reset()
		for k := i; k < j; k++ {
			counts.Add(&evs[k])
			detail.Add(&evs[k])
		}
		p, err := s.PrepareStandby(ns, consumer, w, w+uint64(j-i), counts)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := s.RunPrepared(ctx, p); err != nil || res.Status != Applied {
			t.Fatalf("counts (%d,%d]: %+v %v", w, w+uint64(j-i), res, err)
		}
		w += uint64(j - i)
		p, err = s.PrepareDetail(ns, consumer, w, detail, perCall)
		if err != nil {
			t.Fatal(err)
		}
		for _, pc := range p.calls {
			if n := len(pc.args) - applyFixedArgs; n > 4*perCall {
				t.Fatalf("a detail call carries %d arguments for at most %d members", n, perCall)
			}
		}
		calls += len(p.calls)
		if res, err := s.RunPrepared(ctx, p); err != nil || res.Status != Applied || res.Watermark != w {
			t.Fatalf("detail at %d: %+v %v", w, res, err)
		}
	}
	if calls <= len(evs)/size {
		t.Fatalf("%d detail calls: the sorted sets were not split", calls)
	}
	k := s.Keys(ns)
	check(t, c, k, expect(k, evs))
	m, err := s.Meta(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	if m.Events != int64(len(evs)) || m.FirstSeq != 1 {
		t.Errorf("meta = %+v; want events %d (the detail calls add none), first_seq 1", m, len(evs))
	}
	// A detail call checks the watermark like any apply.
	detail.Reset()
	detail.Add(&evs[0])
	p, err := s.PrepareDetail(ns, consumer, w-1, detail, perCall)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.RunPrepared(ctx, p); err != nil || res.Status != Conflict || res.Watermark != w {
		t.Fatalf("detail at a stale watermark: %+v %v; want a conflict at %d", res, err, w)
	}
	if _, err := s.PrepareDetail(ns, consumer, w, NewDelta(), perCall); err == nil {
		t.Error("PrepareDetail accepted a delta that also counts the counters")
	}
}

// TestHorizonLeavesOutExpiredBuckets: a Delta with a horizon skips exactly the
// buckets the live projection has let expire by then.
func TestHorizonLeavesOutExpiredBuckets(t *testing.T) {
	h := time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC)
	at := func(ts time.Time) *event.Event {
		return &event.Event{Domain: "en.wikipedia.org", Wiki: "enwiki", Type: "edit", Title: "P", User: "U", Time: ts}
	}
	minute := func(ts time.Time) int64 { return ts.Unix() / 60 }
	hour := func(ts time.Time) int64 { return ts.Unix() / 3600 }
	cases := []struct {
		name                          string
		ts                            time.Time
		minuteCounts, minuteSets, hrs bool
	}{
		{"now", h.Add(-time.Second), true, true, true},
		{"minute ending at the sets' limit", h.Add(-MinutePagesTTL - time.Second), true, false, true},
		{"minute ending just after it", h.Add(-MinutePagesTTL + 30*time.Second), true, true, true},
		{"minute ending at the counters' limit", h.Add(-MinuteTTL - time.Second), false, false, true},
		{"hour ending at its limit", h.Add(-HourTTL - time.Second), false, false, false},
		{"hour ending just after it", h.Add(-HourTTL + 30*time.Minute), false, false, true},
	}
	for _, tc := range cases {
		d := NewPartialDelta(AllParts, h)
		d.Add(at(tc.ts))
		mb, hb := d.minutes[minute(tc.ts)], d.hours[hour(tc.ts)]
		if got := mb != nil && len(mb.cube) > 0; got != tc.minuteCounts {
			t.Errorf("%s: minute counters kept %v, want %v", tc.name, got, tc.minuteCounts)
		}
		if got := mb != nil && len(mb.pages) > 0; got != tc.minuteSets {
			t.Errorf("%s: minute sorted sets kept %v, want %v", tc.name, got, tc.minuteSets)
		}
		if got := hb != nil && len(hb.cube) > 0 && len(hb.pages) > 0; got != tc.hrs {
			t.Errorf("%s: hour bucket kept %v, want %v", tc.name, got, tc.hrs)
		}
		if d.all.domain["en.wikipedia.org"] != 1 || d.Len() != 1 {
			t.Errorf("%s: the all-time bucket must always count", tc.name)
		}
	}
	// Without a horizon nothing is left out.
	d := NewDelta()
	old := h.Add(-1000 * time.Hour)
	d.Add(at(old))
	if d.minutes[minute(old)] == nil || d.hours[hour(old)] == nil {
		t.Error("a Delta without horizon left out an old bucket")
	}
}

// TestSortedSetMembersInSetOrder: the encoder sends members by increment, then by
// bytes, which is the order of a new sorted set.
func TestSortedSetMembersInSetOrder(t *testing.T) {
	d := NewPartialDelta(Detail, time.Time{})
	ts := time.Date(2026, 5, 5, 12, 0, 30, 0, time.UTC)
	for _, p := range []struct {
		title string
		n     int
	}{{"b", 3}, {"c", 1}, {"d", 2}, {"a", 1}, {"e", 2}} {
		for range p.n {
			d.Add(&event.Event{Domain: "x.org", Title: p.title, Time: ts})
		}
	}
	_, args := d.encode(New("b", "n"), true, nil, nil)
	var zset, zone []any
	for i := 0; i < len(args); {
		op, n := args[i+1].(string), args[i+3].(int)
		body := args[i+4:]
		switch op {
		case opZSet:
			zset = append(zset, body[:2*n]...)
			i += 4 + 2*n
		case opZOne:
			zone = append(zone, body[:n]...)
			i += 4 + n
		case opHLL:
			i += 4 + n
		default:
			i += 4 + 2*n
		}
	}
	// Two buckets (minute and hour) encode the same members.
	wantZ := []any{"x.org|d", "x.org|e", "x.org|b", int64(2), int64(2), int64(3)}
	wantOne := []any{"x.org|a", "x.org|c"}
	if !slices.Equal(zset, append(slices.Clone(wantZ), wantZ...)) || !slices.Equal(zone, append(slices.Clone(wantOne), wantOne...)) {
		t.Errorf("members in order %v then %v; want %v then %v per bucket", zset, zone, wantZ, wantOne)
	}
}

// TestSplitGroups: pieces keep every item in order, at most max per call, with
// the key's TTL on its last piece.
func TestSplitGroups(t *testing.T) {
	keys := []string{"h", "z", "p"}
	args := []any{
		5, opHash, int64(60), 3, "f1", int64(1), "f2", int64(2), "f3", int64(3),
		6, opZSet, int64(0), 2, "m1", "m2", int64(4), int64(5),
		6, opZOne, int64(70), 4, "m3", "m4", "m5", "m6",
		7, opHLL, int64(80), 1, "u1",
	}
	type item struct {
		key, op string
		vals    []any
		ttl     int64
	}
	var got []item
	calls := 0
	splitGroups(keys, args, 3, func(ck []string, ca []any) {
		calls++
		n := 0
		for i := 0; i < len(ca); {
			ki, op, ttl, m := ca[i].(int), ca[i+1].(string), ca[i+2].(int64), ca[i+3].(int)
			w := 2
			if op == opZOne || op == opHLL {
				w = 1
			}
			body := ca[i+4 : i+4+w*m]
			for j := 0; j < m; j++ {
				it := item{key: ck[ki-applyFixedKeys-1], op: op}
				switch {
				case w == 1:
					it.vals = []any{body[j]}
				case op == opZSet:
					it.vals = []any{body[j], body[m+j]}
				default:
					it.vals = []any{body[2*j], body[2*j+1]}
				}
				if j == m-1 {
					it.ttl = ttl
				}
				got = append(got, it)
			}
			n += m
			i += 4 + w*m
		}
		if n > 3 {
			t.Errorf("call %d carries %d items, more than 3", calls, n)
		}
	})
	want := []item{
		{"h", opHash, []any{"f1", int64(1)}, 0}, {"h", opHash, []any{"f2", int64(2)}, 0}, {"h", opHash, []any{"f3", int64(3)}, 60},
		{"z", opZSet, []any{"m1", int64(4)}, 0}, {"z", opZSet, []any{"m2", int64(5)}, 0},
		{"z", opZOne, []any{"m3"}, 0}, {"z", opZOne, []any{"m4"}, 0}, {"z", opZOne, []any{"m5"}, 0}, {"z", opZOne, []any{"m6"}, 70},
		{"p", opHLL, []any{"u1"}, 80},
	}
	if len(got) != len(want) {
		t.Fatalf("%d items, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		// A piece's TTL is on its last item; only the group's last piece keeps it.
		if g.key != w.key || g.op != w.op || !slices.Equal(g.vals, w.vals) || g.ttl != w.ttl {
			t.Errorf("item %d = %+v, want %+v", i, g, w)
		}
	}
	if calls != 4 {
		t.Errorf("%d calls, want 4 (10 items, 3 per call)", calls)
	}
}
