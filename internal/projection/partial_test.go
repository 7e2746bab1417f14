package projection

import (
	"slices"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/event"
)

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

// TestSortedSetMembersOncePerKey checks that two pages that join into the same
// member (a domain holding FieldSep) go to the apply script once, their counts
// summed, as the script requires.
func TestSortedSetMembersOncePerKey(t *testing.T) {
	d := NewPartialDelta(Detail, time.Time{})
	ts := time.Date(2026, 5, 5, 12, 0, 30, 0, time.UTC)
	d.Add(&event.Event{Domain: "a" + FieldSep + "b", Title: "c", Time: ts})
	d.Add(&event.Event{Domain: "a", Title: "b" + FieldSep + "c", Time: ts})
	d.Add(&event.Event{Domain: "a", Title: "d", Time: ts})
	_, args := d.encode(New("b", "n"), true, nil, nil)
	var got []any
	for i := 0; i < len(args); {
		op, n := args[i+1].(string), args[i+3].(int)
		switch op {
		case opZSet:
			got = append(got, op)
			got = append(got, args[i+4:i+4+2*n]...)
			i += 4 + 2*n
		case opZOne:
			got = append(got, op)
			got = append(got, args[i+4:i+4+n]...)
			i += 4 + n
		default:
			i += 4 + n
		}
	}
	one := []any{opZSet, "a|b|c", int64(2), opZOne, "a|d"}
	if want := append(slices.Clone(one), one...); !slices.Equal(got, want) {
		t.Errorf("sorted-set groups %v, want %v (minute and hour)", got, want)
	}
}

// BenchmarkEncode measures encoding a Delta of 3,000 recorded events (a batch
// of the aggregate catching up) for the apply script.
func BenchmarkEncode(b *testing.B) {
	evs := recorded(b)
	d := NewDelta()
	for i := range 3000 {
		e := evs[i%len(evs)]
		d.Add(&e)
	}
	k := New("b", "n")
	var keys []string
	var args []any
	b.ReportAllocs()
	for b.Loop() {
		keys, args = d.encode(k, true, keys[:0], args[:0])
	}
}
