package projection

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wikiflow/wikiflow/internal/event"
)

// Parts selects which counters a Delta counts.
type Parts uint8

const (
	// Counts are the hash counters: the all-time bucket and the cube, namespace,
	// editor, who, minor and bytes counters of the minute and hour buckets. Only a Delta
	// that counts them moves the namespace's event count, as_of and first_seq.
	Counts Parts = 1 << iota
	// Detail are the per-page and per-editor sorted sets and the unique-editor
	// sketches of the minute and hour buckets.
	Detail
	// AllParts is everything: what the live aggregate applies.
	AllParts = Counts | Detail
)

// Delta is the pre-aggregated effect of a batch of events on every counter of a
// namespace: the all-time bucket, the event-time minute and hour buckets, the
// newest event time and the number of events. Build it with Add, apply it with
// (*Store).Apply, and Reset it to reuse its memory for the next batch. A Delta is
// not safe for concurrent use.
//
// A Delta may count only some Parts, and may leave out the buckets that readers
// can no longer see (see NewPartialDelta): a rebuild applies the counters of a
// batch in one call and its sorted sets in several smaller ones, and does not
// write the buckets the live projection has already let expire.
type Delta struct {
	// FirstSeq is the stream sequence of the batch's first event when the caller
	// knows it; Apply records it as the namespace's first_seq when that is unset
	// (0 means prevSeq+1).
	FirstSeq uint64

	parts   Parts
	horizon int64 // Unix seconds; 0 = keep every bucket
	all     bucket
	minutes map[int64]*bucket
	hours   map[int64]*bucket
	free    []*bucket
	asOfMs  int64
	n       int64

	// encoding buffers, reused across batches
	domainOp string
	keys     []string
	args     []any
	zbuf     []member
	zones    []string
	spans    []span
}

// member is a sorted-set member and its increment, while a group is encoded.
type member struct {
	m string
	v int64
}

// span is a member's bytes in a key's joined members, and its increment.
type span struct {
	from, to int
	v        int64
}

// cubeKey is a KindCube field before it is joined into a string.
type cubeKey struct {
	domain, wiki, typ string
	bot               bool
}

// pair is a "domain|x" member before it is joined into a string.
type pair struct{ domain, x string }

// bytesCount holds the bytes added and removed on one domain.
type bytesCount struct{ added, removed int64 }

// bucket holds the counters of one time bucket.
type bucket struct {
	cube    map[cubeKey]int64
	ns      map[int]int64
	editor  map[string]int64
	who     map[string]int64
	minor   map[string]int64
	bytes   map[string]bytesCount
	domain  map[string]int64 // all-time bucket only
	pages   map[pair]int64   // minute and hour buckets only
	editors map[pair]int64   // minute and hour buckets only
	users   map[string]struct{}
}

func newBucket() *bucket {
	b := &bucket{}
	b.init()
	return b
}

func (b *bucket) init() {
	b.cube = map[cubeKey]int64{}
	b.ns = map[int]int64{}
	b.editor = map[string]int64{}
	b.who = map[string]int64{}
	b.minor = map[string]int64{}
	b.bytes = map[string]bytesCount{}
	b.domain = map[string]int64{}
	b.pages = map[pair]int64{}
	b.editors = map[pair]int64{}
	b.users = map[string]struct{}{}
}

func (b *bucket) reset() {
	clear(b.cube)
	clear(b.ns)
	clear(b.editor)
	clear(b.who)
	clear(b.minor)
	clear(b.bytes)
	clear(b.domain)
	clear(b.pages)
	clear(b.editors)
	clear(b.users)
}

// addCounts counts e in the bucket's hash counters.
func (b *bucket) addCounts(e *event.Event, kind string) {
	b.cube[cubeKey{e.Domain, e.Wiki, e.Type, e.Bot}]++
	b.ns[e.Namespace]++
	b.editor[kind]++
	b.who[WhoField(e.Bot, kind)]++
	if e.Minor {
		b.minor[e.Domain]++
	}
	if d := e.Delta(); d != 0 {
		c := b.bytes[e.Domain]
		if d > 0 {
			c.added += int64(d)
		} else {
			c.removed -= int64(d)
		}
		b.bytes[e.Domain] = c
	}
}

// addDetail counts e in the bucket's sorted sets and sketch (time buckets only).
func (b *bucket) addDetail(e *event.Event) {
	if e.Title != "" {
		b.pages[pair{e.Domain, e.Title}]++
	}
	if e.User != "" {
		b.editors[pair{e.Domain, e.User}]++
		b.users[e.User] = struct{}{}
	}
}

// NewDelta returns an empty Delta counting every part of every bucket.
func NewDelta() *Delta {
	d := &Delta{}
	d.init()
	return d
}

// NewPartialDelta returns an empty Delta counting only parts, and leaving out the
// buckets that readers no longer see once the newest event time is horizon (zero:
// none left out): minute counters that ended MinuteTTL before it, minute sorted
// sets and sketches that ended MinutePagesTTL before it, hour buckets that ended
// HourTTL before it. Those are the buckets the live projection lets expire; the
// all-time bucket is always counted.
func NewPartialDelta(parts Parts, horizon time.Time) *Delta {
	d := &Delta{parts: parts}
	if !horizon.IsZero() {
		d.horizon = horizon.Unix()
	}
	d.init()
	return d
}

func (d *Delta) init() {
	if d.minutes == nil {
		d.all.init()
		d.minutes = map[int64]*bucket{}
		d.hours = map[int64]*bucket{}
		if d.parts == 0 {
			d.parts = AllParts
		}
	}
}

func (d *Delta) bucketIn(m map[int64]*bucket, n int64) *bucket {
	b := m[n]
	if b == nil {
		if k := len(d.free); k > 0 {
			b = d.free[k-1]
			d.free = d.free[:k-1]
		} else {
			b = newBucket()
		}
		m[n] = b
	}
	return b
}

// visible reports whether a bucket ending at end (Unix seconds) that readers keep
// for ttl is still visible at the Delta's horizon.
func (d *Delta) visible(end int64, ttl time.Duration) bool {
	return d.horizon == 0 || end > d.horizon-secs(ttl)
}

// Add counts one event: in the all-time bucket and in the buckets of its
// event-time minute and hour, as far as the Delta's parts and horizon say. Page
// counts skip events without a title; editor counts and the unique-editor sketch
// skip events without a user.
func (d *Delta) Add(e *event.Event) {
	d.init()
	kind := e.EditorKind()
	sec := e.Time.Unix()
	minute, hour := sec/60, sec/3600 // as Keys.Minute and Keys.Hour number them
	if d.parts&Counts != 0 {
		d.all.addCounts(e, kind)
		d.all.domain[e.Domain]++
		if d.visible((minute+1)*60, MinuteTTL) {
			d.bucketIn(d.minutes, minute).addCounts(e, kind)
		}
		if d.visible((hour+1)*3600, HourTTL) {
			d.bucketIn(d.hours, hour).addCounts(e, kind)
		}
	}
	if d.parts&Detail != 0 {
		if d.visible((minute+1)*60, MinutePagesTTL) {
			d.bucketIn(d.minutes, minute).addDetail(e)
		}
		if d.visible((hour+1)*3600, HourTTL) {
			d.bucketIn(d.hours, hour).addDetail(e)
		}
	}
	if ms := e.Time.UnixMilli(); ms > d.asOfMs {
		d.asOfMs = ms
	}
	d.n++
}

// Len returns the number of events added since the last Reset.
func (d *Delta) Len() int { return int(d.n) }

// AsOf returns the newest event time added (zero when the Delta is empty).
func (d *Delta) AsOf() time.Time {
	if d.n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(d.asOfMs).UTC()
}

// Reset empties the Delta, keeping its memory for the next batch.
func (d *Delta) Reset() {
	d.init()
	d.all.reset()
	for n, b := range d.minutes {
		b.reset()
		d.free = append(d.free, b)
		delete(d.minutes, n)
	}
	for n, b := range d.hours {
		b.reset()
		d.free = append(d.free, b)
		delete(d.hours, n)
	}
	d.asOfMs = 0
	d.n = 0
	d.FirstSeq = 0
	clear(d.keys)
	d.keys = d.keys[:0]
	clear(d.args)
	d.args = d.args[:0]
}

// Operation codes of the apply script's groups (see applySource).
const (
	opHash   = "h" // HINCRBY field value
	opDomain = "d" // HINCRBY field value, mirrored into the legacy hash when current
	opZSet   = "z" // ZINCRBY: members, then their increments
	opZOne   = "u" // ZINCRBY by one: members
	opHLL    = "p" // PFADD members
)

// encode appends the delta's counter keys to keys (their KEYS indexes follow the
// fixed keys already there) and its groups to args, in the apply script's format.
// The all-time domain counts are mirrored into the legacy hash only with mirror.
func (d *Delta) encode(k Keys, mirror bool, keys []string, args []any) ([]string, []any) {
	d.init()
	d.domainOp = opHash
	if mirror {
		d.domainOp = opDomain
	}
	keys, args = d.encodeBucket(&d.all, keys, args, func(kind Kind) string { return k.All(kind) }, 0, 0, false)
	minTTL, pagesTTL, hourTTL := secs(MinuteTTL), secs(MinutePagesTTL), secs(HourTTL)
	for n, b := range d.minutes {
		keys, args = d.encodeBucket(b, keys, args, func(kind Kind) string { return k.MinuteN(kind, n) }, minTTL, pagesTTL, true)
	}
	for n, b := range d.hours {
		keys, args = d.encodeBucket(b, keys, args, func(kind Kind) string { return k.HourN(kind, n) }, hourTTL, hourTTL, true)
	}
	return keys, args
}

func secs(d time.Duration) int64 { return int64(d / time.Second) }

// group appends a group header for key and returns the new slices.
func group(keys []string, args []any, key, op string, ttl int64, n int) ([]string, []any) {
	keys = append(keys, key)
	return keys, append(args, len(keys), op, ttl, n)
}

// hashGroup appends the group of a hash's increments, when it has any.
func hashGroup(keys []string, args []any, key, op string, ttl int64, m map[string]int64) ([]string, []any) {
	if len(m) == 0 {
		return keys, args
	}
	keys, args = group(keys, args, key, op, ttl, len(m))
	for f, v := range m {
		args = append(args, f, v)
	}
	return keys, args
}

func (d *Delta) encodeBucket(b *bucket, keys []string, args []any, name func(Kind) string, ttl, detailTTL int64, detail bool) ([]string, []any) {
	if len(b.cube) > 0 {
		keys, args = group(keys, args, name(KindCube), opHash, ttl, len(b.cube))
		for c, v := range b.cube {
			args = append(args, CubeField(c.domain, c.wiki, c.typ, c.bot), v)
		}
	}
	if len(b.ns) > 0 {
		keys, args = group(keys, args, name(KindNamespace), opHash, ttl, len(b.ns))
		for ns, v := range b.ns {
			args = append(args, strconv.Itoa(ns), v)
		}
	}
	keys, args = hashGroup(keys, args, name(KindEditor), opHash, ttl, b.editor)
	keys, args = hashGroup(keys, args, name(KindWho), opHash, ttl, b.who)
	keys, args = hashGroup(keys, args, name(KindMinor), opHash, ttl, b.minor)
	if len(b.bytes) > 0 {
		n := 0
		for _, c := range b.bytes {
			if c.added != 0 {
				n++
			}
			if c.removed != 0 {
				n++
			}
		}
		keys, args = group(keys, args, name(KindBytes), opHash, ttl, n)
		for dom, c := range b.bytes {
			if c.added != 0 {
				args = append(args, dom+FieldSep+"added", c.added)
			}
			if c.removed != 0 {
				args = append(args, dom+FieldSep+"removed", c.removed)
			}
		}
	}
	if !detail {
		return hashGroup(keys, args, name(KindDomain), d.domainOp, 0, b.domain)
	}
	keys, args = d.zgroups(keys, args, name(KindPages), detailTTL, b.pages)
	keys, args = d.zgroups(keys, args, name(KindEditors), detailTTL, b.editors)
	if len(b.users) > 0 {
		keys, args = group(keys, args, name(KindUsers), opHLL, detailTTL, len(b.users))
		for u := range b.users {
			args = append(args, u)
		}
	}
	return keys, args
}

// zgroups appends the groups of a sorted set's increments: the members counted once
// (most of them, each page or editor being seldom seen twice in a batch) as one
// member-only group, the others as members then increments. The key's TTL goes
// with its last group. Members go in the order of their increment, then their
// bytes: the order of the set itself when the key is new, so that each insertion
// lands next to the previous one. Each member goes once per key, as the apply
// script requires: two pairs join into the same member only when a domain holds
// FieldSep, and then their increments are summed first.
func (d *Delta) zgroups(keys []string, args []any, key string, ttl int64, m map[pair]int64) ([]string, []any) {
	if len(m) == 0 {
		return keys, args
	}
	// The members are joined into one string and sliced from it: one allocation
	// per key rather than one per member.
	size, ambiguous := 0, false
	for p := range m {
		size += len(p.domain) + len(FieldSep) + len(p.x)
		ambiguous = ambiguous || strings.Contains(p.domain, FieldSep)
	}
	var sb strings.Builder
	sb.Grow(size)
	spans := d.spans[:0]
	for p, v := range m {
		from := sb.Len()
		sb.WriteString(p.domain)
		sb.WriteString(FieldSep)
		sb.WriteString(p.x)
		spans = append(spans, span{from, sb.Len(), v})
	}
	all := sb.String()
	ones, many := d.zones[:0], d.zbuf[:0]
	for _, sp := range spans {
		if sp.v == 1 {
			ones = append(ones, all[sp.from:sp.to])
		} else {
			many = append(many, member{all[sp.from:sp.to], sp.v})
		}
	}
	d.spans = spans[:0]
	if ambiguous {
		ones, many = mergeMembers(ones, many)
	}
	slices.Sort(ones)
	slices.SortFunc(many, func(a, b member) int {
		if c := cmp.Compare(a.v, b.v); c != 0 {
			return c
		}
		return strings.Compare(a.m, b.m)
	})
	keys = append(keys, key)
	ki := len(keys)
	if len(many) > 0 {
		t := ttl
		if len(ones) > 0 {
			t = 0
		}
		args = append(args, ki, opZSet, t, len(many))
		for _, z := range many {
			args = append(args, z.m)
		}
		for _, z := range many {
			args = append(args, z.v)
		}
	}
	if len(ones) > 0 {
		args = append(args, ki, opZOne, ttl, len(ones))
		for _, z := range ones {
			args = append(args, z)
		}
	}
	clear(ones)
	clear(many)
	d.zones, d.zbuf = ones[:0], many[:0]
	return keys, args
}

// mergeMembers sums the increments of members that occur more than once among
// ones (increment 1) and many, and returns them split again by increment.
func mergeMembers(ones []string, many []member) ([]string, []member) {
	sum := make(map[string]int64, len(ones)+len(many))
	for _, z := range ones {
		sum[z]++
	}
	for _, z := range many {
		sum[z.m] += z.v
	}
	ones, many = ones[:0], many[:0]
	for z, v := range sum {
		if v == 1 {
			ones = append(ones, z)
		} else {
			many = append(many, member{z, v})
		}
	}
	return ones, many
}
