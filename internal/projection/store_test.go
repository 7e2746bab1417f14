package projection

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/testenv"
)

// recorded returns the recorded events that parse.
// storeEnv returns the test Redis, a fresh base name on it (removed when the
// test ends) and a Store of that base.
func storeEnv(t *testing.T) (*redis.Client, string, *Store) {
	t.Helper()
	c := testenv.Redis(t)
	base := testenv.Prefix(t, c)
	return c, base, NewStore(c, base)
}

// readerEnv is storeEnv with a Reader.
func readerEnv(t *testing.T) (*redis.Client, string, *Reader) {
	t.Helper()
	c := testenv.Redis(t)
	base := testenv.Prefix(t, c)
	return c, base, NewReader(c, base)
}

func recorded(t testing.TB) []event.Event {
	t.Helper()
	var out []event.Event
	for _, r := range recording.Events() {
		e, err := event.Parse(r.Data)
		if err != nil {
			continue
		}
		out = append(out, e)
	}
	if len(out) < 2000 {
		t.Fatalf("only %d recorded events parse", len(out))
	}
	return out
}

// want is the expected content of a namespace, computed directly from events
// without Delta.
type want struct {
	hashes map[string]map[string]int64
	zsets  map[string]map[string]float64
	users  map[string]map[string]bool
	ttl    map[string]time.Duration
	legacy map[string]int64
}

func expect(k Keys, evs []event.Event) want {
	w := want{
		hashes: map[string]map[string]int64{},
		zsets:  map[string]map[string]float64{},
		users:  map[string]map[string]bool{},
		ttl:    map[string]time.Duration{},
		legacy: map[string]int64{},
	}
	h := func(key, field string, v int64, ttl time.Duration) {
		if w.hashes[key] == nil {
			w.hashes[key] = map[string]int64{}
		}
		w.hashes[key][field] += v
		w.ttl[key] = ttl
	}
	z := func(key, member string, ttl time.Duration) {
		if w.zsets[key] == nil {
			w.zsets[key] = map[string]float64{}
		}
		w.zsets[key][member]++
		w.ttl[key] = ttl
	}
	for _, e := range evs {
		type bucket struct {
			name          func(Kind) string
			ttl, pagesTTL time.Duration
			detail        bool
		}
		buckets := []bucket{
			{func(kd Kind) string { return k.All(kd) }, 0, 0, false},
			{func(kd Kind) string { return k.Minute(kd, e.Time) }, MinuteTTL, MinutePagesTTL, true},
			{func(kd Kind) string { return k.Hour(kd, e.Time) }, HourTTL, HourTTL, true},
		}
		for _, b := range buckets {
			h(b.name(KindCube), CubeField(e.Domain, e.Wiki, e.Type, e.Bot), 1, b.ttl)
			h(b.name(KindNamespace), strconv.Itoa(e.Namespace), 1, b.ttl)
			h(b.name(KindEditor), e.EditorKind(), 1, b.ttl)
			h(b.name(KindWho), WhoField(e.Bot, e.EditorKind()), 1, b.ttl)
			if e.Minor {
				h(b.name(KindMinor), e.Domain, 1, b.ttl)
			}
			if d := e.Delta(); d > 0 {
				h(b.name(KindBytes), e.Domain+"|added", int64(d), b.ttl)
			} else if d < 0 {
				h(b.name(KindBytes), e.Domain+"|removed", int64(-d), b.ttl)
			}
			if !b.detail {
				h(b.name(KindDomain), e.Domain, 1, 0)
				w.legacy[e.Domain]++
				continue
			}
			if e.Title != "" {
				z(b.name(KindPages), e.Domain+"|"+e.Title, b.pagesTTL)
			}
			if e.User != "" {
				z(b.name(KindEditors), e.Domain+"|"+e.User, b.pagesTTL)
				u := b.name(KindUsers)
				if w.users[u] == nil {
					w.users[u] = map[string]bool{}
				}
				w.users[u][e.User] = true
				w.ttl[u] = b.pagesTTL
			}
		}
	}
	return w
}

// check compares namespace k in Redis with w, key by key, and checks that no other
// counter key exists.
func check(t *testing.T, c *redis.Client, k Keys, w want) {
	t.Helper()
	ctx := context.Background()
	expected := map[string]bool{k.Watermarks(): true, k.Meta(): true}
	for key, fields := range w.hashes {
		expected[key] = true
		got, err := c.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(fields) {
			t.Errorf("%s: %d fields, want %d", key, len(got), len(fields))
		}
		for f, v := range fields {
			if got[f] != strconv.FormatInt(v, 10) {
				t.Errorf("%s %s = %q, want %d", key, f, got[f], v)
			}
		}
	}
	for key, members := range w.zsets {
		expected[key] = true
		got, err := c.ZRangeWithScores(ctx, key, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(members) {
			t.Errorf("%s: %d members, want %d", key, len(got), len(members))
		}
		for _, m := range got {
			if members[m.Member.(string)] != m.Score {
				t.Errorf("%s %v = %v, want %v", key, m.Member, m.Score, members[m.Member.(string)])
			}
		}
	}
	for key, users := range w.users {
		expected[key] = true
		n, err := c.PFCount(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if d := math.Abs(float64(n) - float64(len(users))); d > 1+0.03*float64(len(users)) {
			t.Errorf("%s: PFCOUNT %d, want about %d", key, n, len(users))
		}
	}
	for key, ttl := range w.ttl {
		got, err := c.TTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ttl == 0 && got != -1:
			t.Errorf("%s: TTL %v, want none", key, got)
		case ttl > 0 && (got <= ttl-time.Minute || got > ttl):
			t.Errorf("%s: TTL %v, want about %v", key, got, ttl)
		}
	}
	keys, err := c.Keys(ctx, globEscape(k.Prefix())+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keys {
		if !expected[key] {
			t.Errorf("unexpected key %s", key)
		}
	}
	if len(keys) != len(expected) {
		t.Errorf("%d keys in the namespace, want %d", len(keys), len(expected))
	}
}

func checkLegacy(t *testing.T, c *redis.Client, k Keys, want map[string]int64) {
	t.Helper()
	got, err := c.HGetAll(context.Background(), k.Legacy()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("legacy hash: %d domains, want %d", len(got), len(want))
	}
	for d, n := range want {
		if got[d] != strconv.FormatInt(n, 10) {
			t.Errorf("legacy %s = %q, want %d", d, got[d], n)
		}
	}
}

// applyAll applies evs in batches of size as consumer, starting from watermark
// start, and returns the final watermark.
func applyAll(t testing.TB, s *Store, ns, consumer string, evs []event.Event, size int, start uint64, standby bool) uint64 {
	t.Helper()
	d := NewDelta()
	w := start
	for i := 0; i < len(evs); i += size {
		j := min(i+size, len(evs))
		d.Reset()
		for k := i; k < j; k++ {
			d.Add(&evs[k])
		}
		apply := s.Apply
		if standby {
			apply = s.ApplyStandby
		}
		res, err := apply(context.Background(), ns, consumer, w, w+uint64(j-i), d)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != Applied || res.Watermark != w+uint64(j-i) {
			t.Fatalf("apply (%d,%d]: %+v", w, w+uint64(j-i), res)
		}
		w = res.Watermark
	}
	return w
}

func TestApplyExact(t *testing.T) {
	c, _, s := storeEnv(t)
	evs := recorded(t)
	ctx := context.Background()
	before := time.Now().UnixMilli()

	w := applyAll(t, s, DefaultNamespace, "agg", evs, 500, 0, false)
	if w != uint64(len(evs)) {
		t.Fatalf("watermark %d, want %d", w, len(evs))
	}
	k := s.Keys(DefaultNamespace)
	exp := expect(k, evs)
	check(t, c, k, exp)
	checkLegacy(t, c, k, exp.legacy)

	got, err := s.Watermark(ctx, DefaultNamespace, "agg")
	if err != nil || got != w {
		t.Errorf("Watermark = %d, %v; want %d", got, err, w)
	}
	m, err := s.Meta(ctx, DefaultNamespace)
	if err != nil {
		t.Fatal(err)
	}
	var newest time.Time
	for _, e := range evs {
		if e.Time.After(newest) {
			newest = e.Time
		}
	}
	if m.Events != int64(len(evs)) || m.FirstSeq != 1 || !m.AsOf.Equal(newest.Truncate(time.Millisecond)) {
		t.Errorf("meta = %+v; want events %d, first_seq 1, as_of %v", m, len(evs), newest)
	}
	if m.Updated.UnixMilli() < before {
		t.Errorf("meta updated %v is before the test", m.Updated)
	}
	cur, err := s.Current(ctx)
	if err != nil || cur != DefaultNamespace {
		t.Errorf("Current = %q, %v", cur, err)
	}
}

// snapshot reads every key of the base name (hashes, sorted sets, strings and
// lists, and whether each has a TTL), for nothing-changed checks.
func snapshot(t *testing.T, c *redis.Client, base string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	keys, err := c.Keys(ctx, globEscape("{"+base+"}")+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range append(keys, base) {
		typ, err := c.Type(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch typ {
		case "none":
			continue
		case "hash":
			v, err = c.HGetAll(ctx, key).Result()
		case "zset":
			v, err = c.ZRangeWithScores(ctx, key, 0, -1).Result()
		case "string":
			v, err = c.Get(ctx, key).Result()
		case "list":
			v, err = c.LRange(ctx, key, 0, -1).Result()
		default:
			t.Fatalf("%s: unexpected type %s", key, typ)
		}
		if err != nil {
			t.Fatal(err)
		}
		ttl, err := c.TTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[key] = fmt.Sprint(typ, v, ttl > 0)
	}
	return out
}

func sameSnapshot(t *testing.T, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Errorf("%d keys before, %d after", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed", k)
		}
	}
}

func TestApplyCAS(t *testing.T) {
	c, base, s := storeEnv(t)
	evs := recorded(t)[:300]
	ctx := context.Background()
	d := NewDelta()
	for i := range evs {
		d.Add(&evs[i])
	}

	res, err := s.Apply(ctx, DefaultNamespace, "agg", 0, 300, d)
	if err != nil || res.Status != Applied || res.Watermark != 300 {
		t.Fatalf("first apply: %+v, %v", res, err)
	}
	snap := snapshot(t, c, base)

	tests := []struct {
		name       string
		prev, last uint64
	}{
		{"same batch again", 0, 300},
		{"wrong prevSeq below", 100, 400},
		{"wrong prevSeq above", 301, 600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.Apply(ctx, DefaultNamespace, "agg", tc.prev, tc.last, d)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != Conflict || res.Watermark != 300 {
				t.Errorf("got %+v, want conflict at 300", res)
			}
			sameSnapshot(t, snap, snapshot(t, c, base))
		})
	}
	k := s.Keys(DefaultNamespace)
	exp := expect(k, evs)
	check(t, c, k, exp)
	checkLegacy(t, c, k, exp.legacy)

	// Another consumer has its own watermark.
	res, err = s.Apply(ctx, DefaultNamespace, "other", 0, 7, NewDelta())
	if err != nil || res.Status != Applied || res.Watermark != 7 {
		t.Fatalf("other consumer: %+v, %v", res, err)
	}
	if w, _ := s.Watermark(ctx, DefaultNamespace, "agg"); w != 300 {
		t.Errorf("agg watermark %d after another consumer's apply", w)
	}
}

func TestApplyStale(t *testing.T) {
	c, base, s := storeEnv(t)
	evs := recorded(t)[:200]
	ctx := context.Background()
	if err := c.Set(ctx, s.Keys("").Pointer(), "r7", 0).Err(); err != nil {
		t.Fatal(err)
	}
	snap := snapshot(t, c, base)
	d := NewDelta()
	for i := range evs {
		d.Add(&evs[i])
	}
	res, err := s.Apply(ctx, DefaultNamespace, "agg", 0, 200, d)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != Stale || res.Current != "r7" {
		t.Errorf("got %+v, want stale with current r7", res)
	}
	sameSnapshot(t, snap, snapshot(t, c, base))

	// A standby namespace may be filled; the legacy hash is untouched.
	res, err = s.ApplyStandby(ctx, DefaultNamespace, "agg", 0, 200, d)
	if err != nil || res.Status != Applied {
		t.Fatalf("standby apply: %+v, %v", res, err)
	}
	k := s.Keys(DefaultNamespace)
	check(t, c, k, expect(k, evs))
	checkLegacy(t, c, k, map[string]int64{})

	// Standby apply to the current namespace mirrors into the legacy hash.
	k7 := s.Keys("r7")
	applyAll(t, s, "r7", "agg", evs, 50, 0, true)
	exp := expect(k7, evs)
	check(t, c, k7, exp)
	checkLegacy(t, c, k7, exp.legacy)
}

func TestApplyInvalidChangesNothing(t *testing.T) {
	c, base, s := storeEnv(t)
	evs := recorded(t)[:100]
	ctx := context.Background()
	applyAll(t, s, DefaultNamespace, "agg", evs[:50], 50, 0, false)
	k := s.Keys(DefaultNamespace)

	// A valid call's keys and arguments, to corrupt one at a time.
	d := NewDelta()
	for i := 50; i < 100; i++ {
		d.Add(&evs[i])
	}
	keys := []string{k.Pointer(), k.Watermarks(), k.Meta(), k.Legacy()}
	args := []any{DefaultNamespace, DefaultNamespace, "agg", "50", "100", "1700000000000", "1700000000000", "50", "0", "1"}
	keys, args = d.encode(k, true, keys, args)
	// Index of the first group's first increment and of a later one.
	firstVal := applyFixedArgs + 4 + 1

	var listKey string
	strs := func() []any {
		out := make([]any, len(args))
		for i, a := range args {
			out[i] = fmt.Sprint(a)
		}
		return out
	}
	set := func(i int, v string) func([]any) []any {
		return func(a []any) []any { a[i] = v; return a }
	}
	tests := []struct {
		name   string
		mutate func([]any) []any
		keys   []string
		before func()
	}{
		{"increment not an integer", set(firstVal, "1.5"), keys, nil},
		{"increment with leading zero", set(firstVal, "01"), keys, nil},
		{"last increment empty", set(lastIncrement(args), ""), keys, nil},
		{"last increment too long", set(lastIncrement(args), "12345678901234567890"), keys, nil},
		{"prevSeq not a number", set(3, "x"), keys, nil},
		{"lastSeq below prevSeq", set(4, "10"), keys, nil},
		{"events negative", set(7, "-3"), keys, nil},
		{"unknown op", set(applyFixedArgs+1, "q"), keys, nil},
		{"key index 2", set(applyFixedArgs, "2"), keys, nil},
		{"key index past KEYS", set(applyFixedArgs, strconv.Itoa(len(keys)+1)), keys, nil},
		{"truncated group", func(a []any) []any { return a[:len(a)-1] }, keys, nil},
		{"count too large", set(applyFixedArgs+3, "100000"), keys, nil},
		{"flag", set(9, "2"), keys, nil},
		{"too few keys", nil, keys[:3], nil},
		{"one key as a hash and a sorted set", nil, aliased(keys, args), nil},
		{"member twice in a sorted set", repeatMember, keys, nil},
		{"sorted-set group repeated", repeatGroup, keys, nil},
		{"counter key of another type", nil, keys, func() {
			// Make the last counter key not yet written a list.
			for i := len(keys) - 1; i >= applyFixedKeys; i-- {
				if c.Exists(ctx, keys[i]).Val() == 0 {
					listKey = keys[i]
					break
				}
			}
			if err := c.RPush(ctx, listKey, "x").Err(); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			a := strs()
			if tc.mutate != nil {
				a = tc.mutate(a)
			}
			snap := snapshot(t, c, base)
			err := s.applyScript.Run(ctx, c, tc.keys, a...).Err()
			if err == nil {
				t.Fatal("invalid call accepted")
			}
			if !isScriptErr(err) {
				t.Fatalf("error %v is not the script's validation error", err)
			}
			sameSnapshot(t, snap, snapshot(t, c, base))
		})
	}
	// The valid call, unmodified, applies (after removing the list).
	c.Del(ctx, listKey)
	if err := s.applyScript.Run(ctx, c, keys, strs()...).Err(); err != nil {
		t.Fatalf("valid call: %v", err)
	}
	if w, _ := s.Watermark(ctx, DefaultNamespace, "agg"); w != 100 {
		t.Errorf("watermark %d after the valid call, want 100", w)
	}
	exp := expect(k, evs)
	check(t, c, k, exp)
	checkLegacy(t, c, k, exp.legacy)
}

// sortedGroup returns the start, op and size of the first z or u group of args
// with at least two members.
func sortedGroup(a []any) (at int, op string, n int) {
	for i := applyFixedArgs; i+3 < len(a); {
		op = fmt.Sprint(a[i+1])
		n, _ = strconv.Atoi(fmt.Sprint(a[i+3]))
		width := 2
		if op == "u" || op == "p" {
			width = 1
		}
		if (op == "z" || op == "u") && n >= 2 {
			return i, op, n
		}
		i += 4 + n*width
	}
	panic("no sorted-set group of two members")
}

// repeatMember makes the second member of a sorted-set group the first one again.
func repeatMember(a []any) []any {
	at, _, _ := sortedGroup(a)
	a[at+5] = a[at+4]
	return a
}

// repeatGroup appends a copy of a sorted-set group.
func repeatGroup(a []any) []any {
	at, op, n := sortedGroup(a)
	width := 2
	if op == "u" {
		width = 1
	}
	return append(a, a[at:at+4+n*width]...)
}

// TestApplySortedSetGroups checks the sorted-set groups against ZINCRBY's
// semantics: increments add to existing scores (fractional ones included) and
// start new members and new keys at the increment, in a key's z and u groups
// alike (each member once per key, as the script requires).
func TestApplySortedSetGroups(t *testing.T) {
	c, _, s := storeEnv(t)
	ctx := context.Background()
	k := s.Keys(DefaultNamespace)
	zkey, fresh := k.HourN(KindPages, 1), k.HourN(KindPages, 2)
	if err := c.ZAdd(ctx, zkey, redis.Z{Score: 10, Member: "b"}, redis.Z{Score: 0.5, Member: "a"}).Err(); err != nil {
		t.Fatal(err)
	}
	keys := []string{k.Pointer(), k.Watermarks(), k.Meta(), k.Legacy(), zkey, fresh}
	header := func(prev, last string) []any {
		return []any{DefaultNamespace, DefaultNamespace, "agg", prev, last, "1700000000000", "0", "0", "0", "1"}
	}
	calls := [][]any{
		append(header("0", "5"),
			5, opZSet, 0, 2, "a", "b", 2, 3,
			5, opZOne, 60, 2, "c", "d",
			6, opZOne, 0, 1, "x",
			6, opZSet, 120, 2, "y", "w", -4, 7),
		append(header("5", "6"),
			6, opZOne, 0, 2, "x", "y",
			6, opZSet, 0, 1, "w", 123456789012),
	}
	for _, args := range calls {
		if err := s.applyScript.Run(ctx, c, keys, args...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for key, want := range map[string]map[string]float64{
		zkey:  {"a": 2.5, "b": 13, "c": 1, "d": 1},
		fresh: {"x": 2, "y": -3, "w": 123456789019},
	} {
		got, err := c.ZRangeWithScores(ctx, key, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", key, got, want)
		}
		for _, z := range got {
			if want[z.Member.(string)] != z.Score {
				t.Errorf("%s %v = %v, want %v", key, z.Member, z.Score, want[z.Member.(string)])
			}
		}
	}
	if ttl := c.TTL(ctx, zkey).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("%s: TTL %v, want about 1m", zkey, ttl)
	}
	if ttl := c.TTL(ctx, fresh).Val(); ttl <= time.Minute || ttl > 2*time.Minute {
		t.Errorf("%s: TTL %v, want about 2m", fresh, ttl)
	}
}

// TestApplyHashGroups checks the hash groups against HINCRBY's semantics:
// increments add to existing fields and start new ones, a field repeated within
// a group or across groups adds up, and sums past 2^53 stay exact.
func TestApplyHashGroups(t *testing.T) {
	c, _, s := storeEnv(t)
	ctx := context.Background()
	k := s.Keys(DefaultNamespace)
	old, fresh := k.HourN(KindEditor, 1), k.HourN(KindEditor, 2)
	if err := c.HSet(ctx, old, "a", 5, "big", "123456789012345678").Err(); err != nil {
		t.Fatal(err)
	}
	keys := []string{k.Pointer(), k.Watermarks(), k.Meta(), k.Legacy(), old, fresh}
	args := []any{DefaultNamespace, DefaultNamespace, "agg", "0", "5", "1700000000000", "0", "0", "0", "1",
		5, opHash, 0, 3, "a", 2, "b", 3, "a", 4,
		5, opHash, 0, 1, "big", 1,
		6, opHash, 0, 3, "x", "12345678901234567", "y", -1, "z", 0,
		6, opHash, 60, 2, "y", 5, "w", -7,
	}
	if err := s.applyScript.Run(ctx, c, keys, args...).Err(); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]map[string]string{
		old:   {"a": "11", "b": "3", "big": "123456789012345679"},
		fresh: {"x": "12345678901234567", "y": "4", "z": "0", "w": "-7"},
	} {
		got, err := c.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: %v, want %v", key, got, want)
		}
	}
	if ttl := c.TTL(ctx, fresh).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("%s: TTL %v, want about 1m", fresh, ttl)
	}
}

// aliased returns a copy of keys in which the key of the first sorted-set group
// of args names the key of the first hash group.
func aliased(keys []string, args []any) []string {
	out := slices.Clone(keys)
	hash, zset := -1, -1
	for i := applyFixedArgs; i < len(args); {
		ki, op, n := args[i].(int), args[i+1].(string), args[i+3].(int)
		width := 2
		switch op {
		case opHLL, opZOne:
			width = 1
		}
		if (op == opHash || op == opDomain) && hash < 0 {
			hash = ki
		}
		if (op == opZSet || op == opZOne) && zset < 0 {
			zset = ki
		}
		i += 4 + width*n
	}
	out[zset-1] = out[hash-1]
	return out
}

func isScriptErr(err error) bool {
	return err != nil && strings.Contains(err.Error(), "wikiflow apply")
}

// lastIncrement returns the index in args of the last increment of a counter group
// (not a PFADD or unit-increment member).
func lastIncrement(args []any) int {
	last := -1
	for i := applyFixedArgs; i < len(args); {
		op, _ := args[i+1].(string)
		n, _ := args[i+3].(int)
		if op == opHLL || op == opZOne {
			i += 4 + n
			continue
		}
		last = i + 3 + 2*n
		i += 4 + 2*n
	}
	return last
}

func TestSwitchAndDrop(t *testing.T) {
	c, base, s := storeEnv(t)
	evs := recorded(t)[:1000]
	ctx := context.Background()

	applyAll(t, s, DefaultNamespace, "a", evs, 250, 0, false)
	if _, err := s.Apply(ctx, DefaultNamespace, "b", 0, 9, NewDelta()); err != nil {
		t.Fatal(err)
	}
	applyAll(t, s, "r1", "a", evs[:500], 250, 0, true)
	if _, err := s.ApplyStandby(ctx, "r1", "b", 0, 9, NewDelta()); err != nil {
		t.Fatal(err)
	}
	// Something only the old legacy hash holds.
	c.HIncrBy(ctx, base, "stale.example.org", 5)
	snap := snapshot(t, c, base)

	err := s.Switch(ctx, DefaultNamespace, "r1", []string{"b", "a"})
	var nc *NotCaughtUpError
	if !errors.As(err, &nc) || !errors.Is(err, ErrNotCaughtUp) {
		t.Fatalf("switch before catching up: %v, want NotCaughtUpError", err)
	}
	if nc.Consumer != "a" || nc.From != 1000 || nc.To != 500 {
		t.Errorf("NotCaughtUpError = %+v, want a 1000/500", nc)
	}
	sameSnapshot(t, snap, snapshot(t, c, base))

	applyAll(t, s, "r1", "a", evs[500:], 250, 500, true)
	if err := s.Switch(ctx, DefaultNamespace, "r1", []string{"a", "b"}); err != nil {
		t.Fatalf("switch: %v", err)
	}
	if cur, _ := s.Current(ctx); cur != "r1" {
		t.Errorf("current %q after switch", cur)
	}
	kr := s.Keys("r1")
	exp := expect(kr, evs)
	check(t, c, kr, exp)
	checkLegacy(t, c, kr, exp.legacy)

	// The old namespace is stale now.
	res, err := s.Apply(ctx, DefaultNamespace, "a", 1000, 1001, NewDelta())
	if err != nil || res.Status != Stale || res.Current != "r1" {
		t.Errorf("apply to the old namespace: %+v, %v", res, err)
	}
	if err := s.Switch(ctx, DefaultNamespace, "r1", []string{"a"}); !errors.Is(err, ErrStaleNamespace) {
		t.Errorf("second switch: %v, want ErrStaleNamespace", err)
	}

	if err := s.Drop(ctx, "r1"); !errors.Is(err, ErrCurrentNamespace) {
		t.Errorf("drop current: %v, want ErrCurrentNamespace", err)
	}
	if err := s.Drop(ctx, DefaultNamespace); err != nil {
		t.Fatalf("drop: %v", err)
	}
	left, _ := c.Keys(ctx, globEscape(s.Keys(DefaultNamespace).Prefix())+"*").Result()
	if len(left) != 0 {
		t.Errorf("%d keys left after drop: %v", len(left), left[:min(3, len(left))])
	}
	check(t, c, kr, exp)
}

func TestDeltaReset(t *testing.T) {
	evs := recorded(t)[:500]
	k := New("b", "n")
	d := NewDelta()
	for i := range evs {
		d.Add(&evs[i])
	}
	keys1, args1 := d.encode(k, true, nil, nil)
	d.Reset()
	if d.Len() != 0 || !d.AsOf().IsZero() {
		t.Fatalf("after Reset: len %d, as of %v", d.Len(), d.AsOf())
	}
	if keys, args := d.encode(k, true, nil, nil); len(keys) != 0 || len(args) != 0 {
		t.Fatalf("empty delta encodes %d keys, %d args", len(keys), len(args))
	}
	for i := range evs {
		d.Add(&evs[i])
	}
	keys2, args2 := d.encode(k, true, nil, nil)
	if len(keys1) != len(keys2) || len(args1) != len(args2) {
		t.Errorf("encodings differ after Reset: %d/%d keys, %d/%d args", len(keys1), len(keys2), len(args1), len(args2))
	}
	if d.Len() != 500 {
		t.Errorf("Len %d", d.Len())
	}
	allocs := testing.AllocsPerRun(5, func() {
		d.Reset()
		for i := range evs {
			d.Add(&evs[i])
		}
	})
	// event.EditorKind allocates by itself (net.ParseIP); the Delta adds little.
	kinds := testing.AllocsPerRun(5, func() {
		for i := range evs {
			_ = evs[i].EditorKind()
		}
	})
	if allocs > kinds+20 {
		t.Errorf("%v allocations per refill of a reset Delta (EditorKind alone: %v)", allocs, kinds)
	}
}

func BenchmarkApply(b *testing.B) {
	c := testenv.Redis(b)
	base := testenv.Prefix(b, c)
	s := NewStore(c, base)
	evs := recorded(b)[:500]
	d := NewDelta()
	ctx := context.Background()
	var w uint64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d.Reset()
		for i := range evs {
			d.Add(&evs[i])
		}
		res, err := s.Apply(ctx, DefaultNamespace, "bench", w, w+500, d)
		if err != nil || res.Status != Applied {
			b.Fatalf("%+v %v", res, err)
		}
		w += 500
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "events/s")
}
