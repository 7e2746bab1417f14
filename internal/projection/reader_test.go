package projection

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseMeta(t *testing.T) {
	m := ParseMeta(map[string]string{
		MetaAsOf: "1764000000123", MetaUpdated: "1764000001000", MetaPartialFrom: "1763990000000",
		MetaEvents: "42", MetaFirstSeq: "7", "other": "x",
	})
	if m.AsOf != time.UnixMilli(1764000000123).UTC() || m.Updated != time.UnixMilli(1764000001000).UTC() ||
		m.PartialFrom != time.UnixMilli(1763990000000).UTC() || m.Events != 42 || m.FirstSeq != 7 || m.Fields["other"] != "x" {
		t.Errorf("parsed %+v", m)
	}
	if got := m.AsOfMinute(); got != 1764000000123/60_000 {
		t.Errorf("AsOfMinute = %d", got)
	}
	for _, bad := range []string{"", "0", "-5", "12x", "1.5"} {
		m := ParseMeta(map[string]string{MetaAsOf: bad, MetaUpdated: bad, MetaPartialFrom: bad})
		if !m.AsOf.IsZero() || !m.Updated.IsZero() || !m.PartialFrom.IsZero() {
			t.Errorf("%q: times %v %v %v, want zero", bad, m.AsOf, m.Updated, m.PartialFrom)
		}
	}
	if m := ParseMeta(nil); !m.AsOf.IsZero() || m.Events != 0 {
		t.Errorf("empty meta parsed as %+v", m)
	}
}

func TestGlobEscape(t *testing.T) {
	for in, want := range map[string]string{"plain.org": "plain.org", "a*b?c": `a\*b\?c`, `[x]\`: `\[x\]\\`, "é*": `é\*`} {
		if got := globEscape(in); got != want {
			t.Errorf("globEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSetKeys(t *testing.T) {
	k := New("b", "n")
	asOf := time.Date(2026, 11, 29, 10, 17, 30, 0, time.UTC)
	minute := asOf.Unix() / 60
	keys, from := k.SetKeys(KindPages, 15, asOf)
	if len(keys) != 15 || keys[14] != k.MinuteN(KindPages, minute) || keys[0] != k.MinuteN(KindPages, minute-14) {
		t.Errorf("15m keys %v", keys)
	}
	if want := time.Date(2026, 11, 29, 10, 3, 0, 0, time.UTC); !from.Equal(want) {
		t.Errorf("15m from %v, want %v", from, want)
	}
	keys, from = k.SetKeys(KindEditors, 24*60, asOf)
	if len(keys) != 24 || keys[23] != k.HourN(KindEditors, asOf.Unix()/3600) {
		t.Errorf("24h keys %v", keys)
	}
	if want := time.Date(2026, 11, 28, 11, 0, 0, 0, time.UTC); !from.Equal(want) {
		t.Errorf("24h from %v, want %v", from, want)
	}
	if keys, from := k.SetKeys(KindUsers, 60, time.Time{}); keys != nil || !from.IsZero() {
		t.Errorf("no as_of: %v %v", keys, from)
	}
	if keys := k.CountKeys(KindCube, 0, time.Time{}); len(keys) != 1 || keys[0] != k.All(KindCube) {
		t.Errorf("all-time count keys %v", keys)
	}
}

// TestReaderHeadFollowsThePointer: Head reads the namespace the pointer names,
// whatever the guess, with its meta and, when asked, the legacy hash.
func TestReaderHeadFollowsThePointer(t *testing.T) {
	c, _, r := readerEnv(t)
	ctx := context.Background()
	live, next := r.Keys(DefaultNamespace), r.Keys("r1")
	c.HSet(ctx, live.Meta(), MetaAsOf, 1_000_000, MetaEvents, 3)
	c.HSet(ctx, next.Meta(), MetaAsOf, 2_000_000, MetaUpdated, 2_500_000)
	c.HSet(ctx, live.Legacy(), "en.wikipedia.org", 3)

	h, err := r.Head(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if h.Keys.NS != DefaultNamespace || h.Meta.AsOf.UnixMilli() != 1_000_000 || h.Meta.Events != 3 || h.Legacy["en.wikipedia.org"] != "3" {
		t.Errorf("unset pointer: %+v", h)
	}
	if cur, err := r.Current(ctx); err != nil || cur != DefaultNamespace {
		t.Errorf("Current = %q, %v", cur, err)
	}
	c.Set(ctx, live.Pointer(), "r1", 0)
	for _, guess := range []string{"", DefaultNamespace, "r1", "gone"} {
		h, err := r.Head(ctx, guess, false)
		if err != nil {
			t.Fatal(err)
		}
		if h.Keys != next || h.Meta.AsOf.UnixMilli() != 2_000_000 || h.Meta.Updated.UnixMilli() != 2_500_000 || h.Legacy != nil {
			t.Errorf("guess %q: %+v", guess, h)
		}
	}
	if m, err := r.Meta(ctx, "r1"); err != nil || m.AsOf.UnixMilli() != 2_000_000 {
		t.Errorf("Meta = %+v, %v", m, err)
	}
}

// TestReaderSnapshot: the watermarks and all-time counters of one namespace,
// read together; a watermark that is not a sequence is an error.
func TestReaderSnapshot(t *testing.T) {
	c, _, r := readerEnv(t)
	ctx := context.Background()
	k := r.Keys("n1")
	c.HSet(ctx, k.Watermarks(), "agg-0", 10, "agg-1", 12)
	c.HSet(ctx, k.All(KindCube), CubeField("en.wikipedia.org", "enwiki", "edit", false), 5)
	c.HSet(ctx, k.All(KindWho), WhoBot, 2)
	s, err := r.Snapshot(ctx, "n1", KindCube, KindWho, KindMinor)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Watermarks, map[string]uint64{"agg-0": 10, "agg-1": 12}) {
		t.Errorf("watermarks %v", s.Watermarks)
	}
	if s.Counters[KindCube]["en.wikipedia.org|enwiki|edit|0"] != "5" || s.Counters[KindWho][WhoBot] != "2" || len(s.Counters[KindMinor]) != 0 {
		t.Errorf("counters %v", s.Counters)
	}
	wms, err := r.Watermarks(ctx, "n1")
	if err != nil || !reflect.DeepEqual(wms, s.Watermarks) {
		t.Errorf("Watermarks = %v, %v", wms, err)
	}
	if w, err := r.Watermark(ctx, "n1", "agg-1"); err != nil || w != 12 {
		t.Errorf("Watermark = %d, %v", w, err)
	}
	c.HSet(ctx, k.Watermarks(), "agg-2", "twelve")
	if _, err := r.Snapshot(ctx, "n1"); err == nil || !strings.Contains(err.Error(), "agg-2") {
		t.Errorf("a bad watermark: %v", err)
	}
	if _, err := r.Watermarks(ctx, "n1"); err == nil {
		t.Error("Watermarks accepted a bad watermark")
	}
	hs, err := r.Hashes(ctx, []string{k.All(KindWho), k.All(KindBytes)})
	if err != nil || len(hs) != 2 || hs[0][WhoBot] != "2" || len(hs[1]) != 0 {
		t.Errorf("Hashes = %v, %v", hs, err)
	}
}

// TestReaderTop: the top list sums the window's sets, breaks ties at the cut by
// member, filters by wiki and domain (glob characters in names match literally),
// counts users, and leaves no temporary key behind.
func TestReaderTop(t *testing.T) {
	c, _, r := readerEnv(t)
	ctx := context.Background()
	k := r.Keys(DefaultNamespace)
	asOf := time.Date(2026, 11, 29, 10, 17, 30, 0, time.UTC)
	m := asOf.Unix() / 60
	c.HSet(ctx, k.Meta(), MetaAsOf, asOf.UnixMilli())
	c.ZIncrBy(ctx, k.MinuteN(KindPages, m), 3, "en.wikipedia.org|A")
	c.ZIncrBy(ctx, k.MinuteN(KindPages, m-1), 2, "en.wikipedia.org|A")
	c.ZIncrBy(ctx, k.MinuteN(KindPages, m), 2, "en.wikipedia.org|C")
	c.ZIncrBy(ctx, k.MinuteN(KindPages, m-1), 2, "en.wikipedia.org|B")
	c.ZIncrBy(ctx, k.MinuteN(KindPages, m), 2, "w*k?.org|D")
	c.ZIncrBy(ctx, k.MinuteN(KindPages, m), 9, "en.wikipedia.org|old")
	c.ZIncrBy(ctx, k.MinuteN(KindPages, m-20), 50, "en.wikipedia.org|outside")
	c.HSet(ctx, k.All(KindCube), CubeField("en.wikipedia.org", "enwiki", "edit", false), 1, CubeField("w*k?.org", "w[i]ki", "edit", true), 1)
	c.PFAdd(ctx, k.MinuteN(KindUsers, m), "u1", "u2")
	c.PFAdd(ctx, k.MinuteN(KindUsers, m-1), "u2", "u3")
	h, err := r.Head(ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	names := func(ms []Member) string {
		var b []string
		for _, m := range ms {
			b = append(b, m.Domain+"/"+m.Name+"="+strings.Repeat("*", int(m.Count)))
		}
		return strings.Join(b, " ")
	}
	cases := []struct {
		q    TopQuery
		want string
	}{
		{TopQuery{Kind: KindPages, Minutes: 5, N: 3}, "en.wikipedia.org/old=********* en.wikipedia.org/A=***** en.wikipedia.org/B=**"},
		{TopQuery{Kind: KindPages, Minutes: 5, N: 10, Wiki: "w[i]ki"}, "w*k?.org/D=**"},
		{TopQuery{Kind: KindPages, Minutes: 5, N: 2, Domain: "w*k?.org"}, "w*k?.org/D=**"},
		{TopQuery{Kind: KindPages, Minutes: 5, N: 2, Domain: "en.wikipedia.org"}, "en.wikipedia.org/old=********* en.wikipedia.org/A=*****"},
		{TopQuery{Kind: KindPages, Minutes: 5, N: 2, Wiki: "nowiki"}, ""},
		{TopQuery{Kind: KindPages, Minutes: 1, N: 10, Wiki: "enwiki", Domain: "en.wikipedia.org"}, "en.wikipedia.org/old=********* en.wikipedia.org/A=*** en.wikipedia.org/C=**"},
	}
	for _, tc := range cases {
		top, err := r.Top(ctx, h, tc.q)
		if err != nil {
			t.Fatalf("%+v: %v", tc.q, err)
		}
		if got := names(top.Members); got != tc.want {
			t.Errorf("%+v:\n got %s\nwant %s", tc.q, got, tc.want)
		}
		if want := time.Unix((m-tc.q.Minutes+1)*60, 0).UTC(); !top.From.Equal(want) {
			t.Errorf("%+v: from %v, want %v", tc.q, top.From, want)
		}
	}
	top, err := r.Top(ctx, h, TopQuery{Kind: KindPages, Minutes: 5, N: 1, Users: true})
	if err != nil || top.Users != 3 {
		t.Errorf("users %d, %v; want 3", top.Users, err)
	}
	if top, err := r.Top(ctx, h, TopQuery{Kind: KindPages, Minutes: 5, N: 1, Wiki: "nowiki", Users: true}); err != nil || top.Users != 3 || len(top.Members) != 0 {
		t.Errorf("users of an unknown wiki's empty list %+v, %v", top, err)
	}
	if left, _ := c.Keys(ctx, globEscape(k.tag())+":tmp:*").Result(); len(left) > 0 {
		t.Errorf("temporary keys left: %v", left)
	}
	if top, err := r.Top(ctx, Head{Keys: k}, TopQuery{Kind: KindPages, Minutes: 5, N: 1}); err != nil || len(top.Members) != 0 || !top.From.IsZero() {
		t.Errorf("no as_of: %+v, %v", top, err)
	}
}
