package api

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/wikiflow/wikiflow/internal/projection"
)

// group is one entry of a grouping.
type group struct {
	key   string
	count int64
}

// sortGroups orders groups by count, largest first, ties by key.
func sortGroups(g []group) {
	sort.Slice(g, func(i, j int) bool {
		if g[i].count != g[j].count {
			return g[i].count > g[j].count
		}
		return g[i].key < g[j].key
	})
}

func groupsOf(m map[string]int64) []group {
	out := make([]group, 0, len(m))
	for k, v := range m {
		if v != 0 {
			out = append(out, group{k, v})
		}
	}
	sortGroups(out)
	return out
}

// statsResult is the body of /stats (and of each /stats/stream event).
type statsResult struct {
	groups    []group
	total     int64
	window    string
	by        string
	namespace string
	meta      projection.Meta
	// extended adds bot_share, types and edits_per_minute (any parameter given).
	extended bool
	botShare float64
	types    []group
	epm      float64
	note     string
}

// appendJSON encodes r. withFreshness false leaves out updated_at and
// freshness_seconds, which change without the figures changing.
func (r *statsResult) appendJSON(b []byte, now time.Time, withFreshness bool) []byte {
	b = append(b, `{"stats":{`...)
	b = appendGroups(b, r.groups)
	b = append(b, `},"total":`...)
	b = strconv.AppendInt(b, r.total, 10)
	b = append(b, `,"window":`...)
	b = appendString(b, r.window)
	b = append(b, `,"by":`...)
	b = appendString(b, r.by)
	b = append(b, `,"as_of":`...)
	if !r.meta.AsOf.IsZero() {
		b = appendTimeMs(b, r.meta.AsOf.UnixMilli())
	} else {
		b = append(b, "null"...)
	}
	if withFreshness {
		b = append(b, `,"updated_at":`...)
		if !r.meta.Updated.IsZero() {
			b = appendTimeMs(b, r.meta.Updated.UnixMilli())
			b = append(b, `,"freshness_seconds":`...)
			b = appendFloat(b, freshness(now, r.meta.Updated))
		} else {
			b = append(b, `null,"freshness_seconds":null`...)
		}
	}
	b = append(b, `,"namespace":`...)
	b = appendString(b, r.namespace)
	if r.extended {
		b = append(b, `,"bot_share":`...)
		b = appendFloat(b, r.botShare)
		b = append(b, `,"types":{`...)
		b = appendGroups(b, r.types)
		b = append(b, `},"edits_per_minute":`...)
		b = appendFloat(b, r.epm)
	}
	if r.note != "" {
		b = append(b, `,"note":`...)
		b = appendString(b, r.note)
	}
	return append(b, '}')
}

// appendGroups appends the members of a JSON object of counts, key: count.
func appendGroups(b []byte, groups []group) []byte {
	for i, g := range groups {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, g.key)
		b = append(b, ':')
		b = strconv.AppendInt(b, g.count, 10)
	}
	return b
}

// freshness is now - updated in seconds, never negative.
func freshness(now, updated time.Time) float64 {
	d := now.UnixMilli() - updated.UnixMilli()
	if d < 0 {
		d = 0
	}
	return float64(d) / 1000
}

// fastStats answers the parameterless /stats from the legacy hash and the meta.
func (s *Server) fastStats(ctx context.Context) (*statsResult, error) {
	h, err := s.readHead(ctx, true)
	if err != nil {
		return nil, err
	}
	r := &statsResult{window: "all", by: byDomain, namespace: h.Keys.NS, meta: h.Meta}
	r.groups = make([]group, 0, len(h.Legacy))
	for k, v := range h.Legacy {
		n := s.parseCount(v)
		if n == 0 {
			continue
		}
		r.groups = append(r.groups, group{k, n})
		r.total += n
	}
	sortGroups(r.groups)
	return r, nil
}

// computeStats answers /stats with parameters from the namespace's buckets.
func (s *Server) computeStats(ctx context.Context, q *query) (*statsResult, error) {
	if q.empty {
		return s.fastStats(ctx)
	}
	h, err := s.readHead(ctx, false)
	if err != nil {
		return nil, err
	}
	r := &statsResult{window: q.window, by: q.by, namespace: h.Keys.NS, meta: h.Meta, extended: true}
	f := q.filter()
	var groupKind projection.Kind
	switch q.by {
	case byNamespace:
		groupKind = projection.KindNamespace
	case byEditor:
		groupKind = projection.KindEditor
	}
	if groupKind != "" {
		f = filter{bot: -1}
		r.note = "the " + q.by + " counts cover every wiki, type and bot flag: the wiki, domain, type and bot filters do not apply to this grouping (its counters do not cross them), nor to total, types and bot_share"
	}
	cubeKeys := h.Keys.CountKeys(projection.KindCube, q.minutes, h.Meta.AsOf)
	var groupKeys, recentKeys []string
	if groupKind != "" {
		groupKeys = h.Keys.CountKeys(groupKind, q.minutes, h.Meta.AsOf)
	}
	if q.minutes == 0 && !h.Meta.AsOf.IsZero() {
		recentKeys = h.Keys.CountKeys(projection.KindCube, 5, h.Meta.AsOf)
	}
	all := make([]string, 0, len(cubeKeys)+len(groupKeys)+len(recentKeys))
	all = append(append(append(all, cubeKeys...), groupKeys...), recentKeys...)
	hashes, err := s.hgetall(ctx, h, all)
	if err != nil {
		return nil, err
	}
	p := cubeParser{}
	groups := map[string]int64{}
	types := map[string]int64{}
	var bots int64
	for _, hm := range hashes[:len(cubeKeys)] {
		for field, v := range hm {
			c := p.parse(field)
			if !f.match(c) {
				continue
			}
			n := s.parseCount(v)
			r.total += n
			types[c.typ] += n
			if c.bot {
				bots += n
			}
			if groupKind == "" {
				groups[groupOf(q.by, c)] += n
			}
		}
	}
	for _, hm := range hashes[len(cubeKeys) : len(cubeKeys)+len(groupKeys)] {
		for field, v := range hm {
			groups[field] += s.parseCount(v)
		}
	}
	r.groups = groupsOf(groups)
	if q.top > 0 && len(r.groups) > q.top {
		r.groups = r.groups[:q.top]
	}
	r.types = groupsOf(types)
	if r.total > 0 {
		r.botShare = float64(bots) / float64(r.total)
	}
	switch {
	case q.minutes > 0:
		r.epm = float64(r.total) / float64(q.minutes)
	case len(recentKeys) > 0:
		var recent int64
		for _, hm := range hashes[len(cubeKeys)+len(groupKeys):] {
			for field, v := range hm {
				if f.match(p.parse(field)) {
					recent += s.parseCount(v)
				}
			}
		}
		r.epm = float64(recent) / 5
	}
	if h.Meta.AsOf.IsZero() && q.minutes > 0 && r.note == "" {
		r.note = "the projection has applied no event yet, so no window has an end"
	}
	return r, nil
}

// cachedBody is an encoded parameterless /stats response.
type cachedBody struct {
	body []byte
	etag string
	at   time.Time
}

// flight lets one caller compute a value while concurrent callers wait for it.
type flight struct {
	mu   sync.Mutex
	call *flightCall
}

type flightCall struct {
	done chan struct{}
	val  *cachedBody
	err  error
}

func (f *flight) do(ctx context.Context, fn func() (*cachedBody, error)) (*cachedBody, error) {
	f.mu.Lock()
	if c := f.call; c != nil {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.val, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &flightCall{done: make(chan struct{})}
	f.call = c
	f.mu.Unlock()
	c.val, c.err = fn()
	f.mu.Lock()
	f.call = nil
	f.mu.Unlock()
	close(c.done)
	return c.val, c.err
}

// fastBody returns the encoded parameterless /stats body, reused for CacheTTL.
func (s *Server) fastBody(ctx context.Context) (*cachedBody, error) {
	build := func() (*cachedBody, error) {
		r, err := s.fastStats(ctx)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		body := r.appendJSON(make([]byte, 0, 256+len(r.groups)*32), now, true)
		return &cachedBody{body: body, etag: etagOf(body), at: now}, nil
	}
	if s.cfg.CacheTTL <= 0 {
		return build()
	}
	if e := s.cache.Load(); e != nil && time.Since(e.at) < s.cfg.CacheTTL {
		s.stats.CacheHits.Add(1)
		return e, nil
	}
	e, err := s.fastFlight.do(ctx, func() (*cachedBody, error) {
		if e := s.cache.Load(); e != nil && time.Since(e.at) < s.cfg.CacheTTL {
			return e, nil
		}
		e, err := build()
		if err == nil {
			s.cache.Store(e)
		}
		return e, err
	})
	return e, err
}

// handleStats serves GET /stats.
func (s *Server) handleStats(c *fiber.Ctx) error {
	q, err := parseQuery(c, &statsSpec)
	if err != nil {
		return err
	}
	ctx, cancel := s.redisCtx(c)
	defer cancel()
	if q.empty {
		e, err := s.fastBody(ctx)
		if err != nil {
			return err
		}
		return s.sendJSON(c, e.body, e.etag)
	}
	r, err := s.computeStats(ctx, &q)
	if err != nil {
		return err
	}
	return s.sendJSON(c, r.appendJSON(make([]byte, 0, 512), time.Now(), true), "")
}
