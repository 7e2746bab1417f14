package api

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/internal/projection"
)

// meta is what the API uses of a namespace's meta hash.
type meta struct {
	asOfMs, updatedMs, partialFromMs int64
	hasAsOf, hasUpdated              bool
}

func parseMeta(h map[string]string) meta {
	var m meta
	if v, err := strconv.ParseInt(h[projection.MetaAsOf], 10, 64); err == nil && v > 0 {
		m.asOfMs, m.hasAsOf = v, true
	}
	if v, err := strconv.ParseInt(h[projection.MetaUpdated], 10, 64); err == nil && v > 0 {
		m.updatedMs, m.hasUpdated = v, true
	}
	if v, err := strconv.ParseInt(h[projection.MetaPartialFrom], 10, 64); err == nil && v > 0 {
		m.partialFromMs = v
	}
	return m
}

// asOfMinute is the Unix minute of as_of.
func (m meta) asOfMinute() int64 { return floorDiv(m.asOfMs, 60_000) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// head is the start of every read: the namespace (from the pointer) and its meta.
type head struct {
	keys projection.Keys
	meta meta
}

// readHead reads the pointer and the meta of the namespace it names in one round
// trip (guessing the namespace from the previous request; a second round trip
// only when the pointer moved). With legacy set it also reads the legacy hash.
// Every key of the response is then taken from the returned namespace only.
func (s *Server) readHead(ctx context.Context, legacy bool) (head, map[string]string, error) {
	guess := s.lastNS.Load()
	ns := projection.DefaultNamespace
	if guess != nil {
		ns = *guess
	}
	base := projection.New(s.cfg.Base, ns)
	pipe := s.rdb.Pipeline()
	ptr := pipe.Get(ctx, base.Pointer())
	var leg *redis.MapStringStringCmd
	if legacy {
		leg = pipe.HGetAll(ctx, base.Legacy())
	}
	mc := pipe.HGetAll(ctx, base.Meta())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return head{}, nil, s.redisErr("read pointer and meta", err)
	}
	cur := ptr.Val()
	if ptr.Err() != nil || cur == "" {
		cur = projection.DefaultNamespace
	}
	if cur != ns {
		s.lastNS.Store(&cur)
		base = projection.New(s.cfg.Base, cur)
		mc = s.rdb.HGetAll(ctx, base.Meta())
		if err := mc.Err(); err != nil {
			return head{}, nil, s.redisErr("read meta", err)
		}
	} else if guess == nil {
		s.lastNS.Store(&cur)
	}
	h := head{keys: base, meta: parseMeta(mc.Val())}
	if leg != nil {
		return h, leg.Val(), nil
	}
	return h, nil, nil
}

// redisErr counts a failed Redis call and wraps it as a 503.
func (s *Server) redisErr(what string, err error) error {
	s.stats.RedisFailures.Add(1)
	return unavailable(what, err)
}

// hgetall reads many hashes in one pipeline.
func (s *Server) hgetall(ctx context.Context, keys []string) ([]map[string]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGetAll(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.redisErr("read counters", err)
	}
	out := make([]map[string]string, len(keys))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// minuteKeys are the keys of kind for the n minutes ending with minute last.
func minuteKeys(k projection.Keys, kind projection.Kind, last, n int64) []string {
	out := make([]string, 0, n)
	for m := last - n + 1; m <= last; m++ {
		out = append(out, k.MinuteN(kind, m))
	}
	return out
}

// countKeys are the keys whose sum is the count of kind over the window of q:
// the all-time bucket, or the window's minute buckets. A 24 h window uses the
// hour buckets that lie wholly inside it and minute buckets for the two partial
// hours at its edges (each hour bucket holds exactly the sum of its minutes).
func countKeys(k projection.Keys, kind projection.Kind, minutes int64, m meta) []string {
	if minutes == 0 {
		return []string{k.All(kind)}
	}
	if !m.hasAsOf {
		return nil
	}
	last := m.asOfMinute()
	first := last - minutes + 1
	if minutes < 120 {
		return minuteKeys(k, kind, last, minutes)
	}
	firstHour := -floorDiv(-first, 60)   // first hour starting at or after first
	lastHour := floorDiv(last+1, 60) - 1 // last hour ending at or before last
	var out []string
	for mm := first; mm < firstHour*60; mm++ {
		out = append(out, k.MinuteN(kind, mm))
	}
	for h := firstHour; h <= lastHour; h++ {
		out = append(out, k.HourN(kind, h))
	}
	for mm := (lastHour + 1) * 60; mm <= last; mm++ {
		out = append(out, k.MinuteN(kind, mm))
	}
	return out
}

// setKeys are the keys of the sorted sets or sketches (pages, editors, users) of
// the window ending at as_of, and the start (Unix ms) of the span they cover.
// Their minute buckets are kept only MinutePagesTTL, so a window longer than an
// hour uses whole hour buckets: the last 24 hours of buckets up to as_of's hour.
func setKeys(k projection.Keys, kind projection.Kind, minutes int64, m meta) ([]string, int64) {
	if !m.hasAsOf {
		return nil, 0
	}
	last := m.asOfMinute()
	if minutes <= 60 {
		return minuteKeys(k, kind, last, minutes), (last - minutes + 1) * 60_000
	}
	lastHour := floorDiv(last, 60)
	hours := minutes / 60
	out := make([]string, 0, hours)
	for h := lastHour - hours + 1; h <= lastHour; h++ {
		out = append(out, k.HourN(kind, h))
	}
	return out, (lastHour - hours + 1) * 3_600_000
}

// cubeCell is one parsed field of a cube hash.
type cubeCell struct {
	domain, wiki, typ string
	bot, ok           bool
}

// cubeParser parses cube fields, each distinct field once per request.
type cubeParser map[string]cubeCell

func (p cubeParser) parse(f string) cubeCell {
	if c, ok := p[f]; ok {
		return c
	}
	var c cubeCell
	c.domain, c.wiki, c.typ, c.bot, c.ok = projection.ParseCubeField(f)
	p[f] = c
	return c
}

// filter selects cube cells.
type filter struct {
	wiki, domain, typ string
	bot               int8 // -1 = any
}

func (q *query) filter() filter {
	return filter{wiki: q.wiki, domain: q.domain, typ: q.typ, bot: q.bot}
}

func (f filter) match(c cubeCell) bool {
	if !c.ok {
		return false
	}
	if f.wiki != "" && c.wiki != f.wiki || f.domain != "" && c.domain != f.domain || f.typ != "" && c.typ != f.typ {
		return false
	}
	if f.bot >= 0 && c.bot != (f.bot == 1) {
		return false
	}
	return true
}

// groupOf is the group key of a cell for a cube grouping.
func groupOf(by string, c cubeCell) string {
	switch by {
	case byWiki:
		return c.wiki
	case byType:
		return c.typ
	case byBot:
		if c.bot {
			return "bot"
		}
		return "human"
	default:
		return c.domain
	}
}

// parseCount parses a counter value; bad values are counted and skipped.
func (s *Server) parseCount(v string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		s.stats.BadCounters.Add(1)
		return 0
	}
	return n
}

// escapeGlob escapes the glob characters of s for a MATCH pattern.
func escapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
