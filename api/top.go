package api

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/internal/projection"
)

// tempTTL bounds the life of the temporary union key of a top query, should the
// server die before deleting it.
const tempTTL = 30 * time.Second

// member is one entry of a top list: a sorted-set member "domain|name" and its count.
type member struct {
	key          string // the member itself
	domain, name string
	count        int64
}

// pageItem is one entry of /stats/top/pages.
type pageItem struct {
	Domain string `json:"domain"`
	Title  string `json:"title"`
	Count  int64  `json:"count"`
}

// editorItem is one entry of /stats/top/editors.
type editorItem struct {
	Domain string `json:"domain"`
	User   string `json:"user"`
	Count  int64  `json:"count"`
}

// topPagesBody is the body of /stats/top/pages.
type topPagesBody struct {
	Window    string     `json:"window"`
	AsOf      *string    `json:"as_of"`
	From      *string    `json:"from"`
	Namespace string     `json:"namespace"`
	Items     []pageItem `json:"items"`
	Note      string     `json:"note,omitempty"`
}

// topEditorsBody is the body of /stats/top/editors.
type topEditorsBody struct {
	Window        string       `json:"window"`
	AsOf          *string      `json:"as_of"`
	From          *string      `json:"from"`
	Namespace     string       `json:"namespace"`
	Items         []editorItem `json:"items"`
	UniqueEditors int64        `json:"unique_editors"`
	Note          string       `json:"note,omitempty"`
}

// topResult is what computeTop finds for either list.
type topResult struct {
	h       head
	members []member
	unique  int64
	asOf    *string
	from    *string
	note    string
}

// computeTop reads the top q.top members of the window's sorted sets of kind,
// exactly: the sets are summed by ZUNIONSTORE into a short-lived key sharing the
// projection's hash tag. With users set it also estimates the distinct users.
func (s *Server) computeTop(ctx context.Context, q *query, kind projection.Kind, users bool) (*topResult, error) {
	h, _, err := s.readHead(ctx, false)
	if err != nil {
		return nil, err
	}
	res := &topResult{h: h}
	if !h.meta.hasAsOf {
		res.note = "the projection has applied no event yet, so no window has an end"
		return res, nil
	}
	asOf := formatTimeMs(h.meta.asOfMs)
	res.asOf = &asOf
	keys, fromMs := setKeys(h.keys, kind, q.minutes, h.meta)
	from := formatTimeMs(fromMs)
	res.from = &from
	if q.minutes > 60 {
		res.note = "windows longer than 1h use hourly buckets: the list covers whole hours, from " + from + " to as_of"
	}
	var domains []string // nil: every domain
	if q.wiki != "" || q.domain != "" {
		if domains, err = s.domainsOf(ctx, h.keys, q.wiki, q.domain); err != nil {
			return nil, err
		}
		if len(domains) == 0 {
			if users {
				res.unique, err = s.pfcount(ctx, h, q)
			}
			return res, err
		}
	}
	tmp := "{" + s.cfg.Base + "}:tmp:top:" + randomID()
	pipe := s.rdb.Pipeline()
	pipe.ZUnionStore(ctx, tmp, &redis.ZStore{Keys: keys, Aggregate: "SUM"})
	pipe.Expire(ctx, tmp, tempTTL)
	var head *redis.ZSliceCmd
	if domains == nil {
		head = pipe.ZRevRangeWithScores(ctx, tmp, 0, int64(q.top-1))
	}
	var uc *redis.IntCmd
	if users {
		ukeys, _ := setKeys(h.keys, projection.KindUsers, q.minutes, h.meta)
		uc = pipe.PFCount(ctx, ukeys...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		s.rdb.Del(context.WithoutCancel(ctx), tmp)
		return nil, s.redisErr("union the window's sets", err)
	}
	if uc != nil {
		res.unique = uc.Val()
	}
	if domains == nil {
		res.members, err = s.topOfUnion(ctx, tmp, head.Val(), q.top)
	} else {
		res.members, err = s.scanUnion(ctx, tmp, domains, q.top)
	}
	return res, err
}

// topOfUnion completes the ZREVRANGE head of the union so that ties at the cut
// are broken by ascending member, then deletes the union.
func (s *Server) topOfUnion(ctx context.Context, tmp string, head []redis.Z, n int) ([]member, error) {
	pipe := s.rdb.Pipeline()
	var ties *redis.StringSliceCmd
	var above []redis.Z
	if len(head) == n && n > 0 {
		cut := head[n-1].Score
		for _, z := range head {
			if z.Score > cut {
				above = append(above, z)
			}
		}
		score := formatScore(cut)
		ties = pipe.ZRangeByScore(ctx, tmp, &redis.ZRangeBy{Min: score, Max: score, Count: int64(n - len(above))})
	}
	pipe.Del(ctx, tmp)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.redisErr("read the top of the union", err)
	}
	zs := head
	if ties != nil {
		zs = above
		cut := head[n-1].Score
		for _, m := range ties.Val() {
			zs = append(zs, redis.Z{Member: m, Score: cut})
		}
	}
	out := make([]member, 0, len(zs))
	for _, z := range zs {
		out = append(out, toMember(z))
	}
	sortMembers(out)
	return out, nil
}

// scanUnion collects the union's members of the given domains, then deletes it.
func (s *Server) scanUnion(ctx context.Context, tmp string, domains []string, n int) ([]member, error) {
	defer s.rdb.Del(context.WithoutCancel(ctx), tmp)
	var out []member
	for _, d := range domains {
		var cursor uint64
		for {
			kv, next, err := s.rdb.ZScan(ctx, tmp, cursor, escapeGlob(d)+projection.FieldSep+"*", 1000).Result()
			if err != nil {
				return nil, s.redisErr("scan the union", err)
			}
			for i := 0; i+1 < len(kv); i += 2 {
				m := splitMember(kv[i])
				if m.domain != d {
					continue
				}
				m.count = s.parseScore(kv[i+1])
				out = append(out, m)
			}
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	sortMembers(out)
	if len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// domainsOf lists the domains a wiki and/or domain filter selects, from the
// all-time cube (a wiki's domain never changes).
func (s *Server) domainsOf(ctx context.Context, k projection.Keys, wiki, domain string) ([]string, error) {
	if wiki == "" {
		return []string{domain}, nil
	}
	seen := map[string]bool{}
	var out []string
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, k.All(projection.KindCube), cursor, "*"+projection.FieldSep+escapeGlob(wiki)+projection.FieldSep+"*", 1000).Result()
		if err != nil {
			return nil, s.redisErr("find the wiki's domain", err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			d, w, _, _, ok := projection.ParseCubeField(kv[i])
			if ok && w == wiki && (domain == "" || d == domain) && !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	sort.Strings(out)
	return out, nil
}

func (s *Server) pfcount(ctx context.Context, h head, q *query) (int64, error) {
	ukeys, _ := setKeys(h.keys, projection.KindUsers, q.minutes, h.meta)
	n, err := s.rdb.PFCount(ctx, ukeys...).Result()
	if err != nil {
		return 0, s.redisErr("count unique editors", err)
	}
	return n, nil
}

func toMember(z redis.Z) member {
	name, _ := z.Member.(string)
	m := splitMember(name)
	m.count = int64(z.Score)
	return m
}

// splitMember splits "domain|name" (a domain never holds the separator).
func splitMember(s string) member {
	d, n, ok := strings.Cut(s, projection.FieldSep)
	if !ok {
		return member{key: s, name: s}
	}
	return member{key: s, domain: d, name: n}
}

// sortMembers orders by count, largest first, then by the member "domain|name"
// (the order Redis gives members of equal score).
func sortMembers(m []member) {
	sort.Slice(m, func(i, j int) bool {
		if m[i].count != m[j].count {
			return m[i].count > m[j].count
		}
		return m[i].key < m[j].key
	})
}

func formatScore(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// parseScore parses a sorted-set score as returned by ZSCAN; bad values are
// counted and skipped.
func (s *Server) parseScore(v string) int64 {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		s.stats.BadCounters.Add(1)
		return 0
	}
	return int64(f)
}

func randomID() string {
	var b [8]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

// handleTopPages serves GET /stats/top/pages.
func (s *Server) handleTopPages(c *fiber.Ctx) error {
	q, err := parseQuery(c, &topPagesSpec)
	if err != nil {
		return err
	}
	ctx, cancel := s.redisCtx(c)
	defer cancel()
	r, err := s.computeTop(ctx, &q, projection.KindPages, false)
	if err != nil {
		return err
	}
	out := topPagesBody{Window: q.window, AsOf: r.asOf, From: r.from, Namespace: r.h.keys.NS, Items: make([]pageItem, 0, len(r.members)), Note: r.note}
	for _, m := range r.members {
		out.Items = append(out.Items, pageItem{Domain: m.domain, Title: m.name, Count: m.count})
	}
	return s.sendValue(c, out)
}

// handleTopEditors serves GET /stats/top/editors.
func (s *Server) handleTopEditors(c *fiber.Ctx) error {
	q, err := parseQuery(c, &topEditorsSpec)
	if err != nil {
		return err
	}
	ctx, cancel := s.redisCtx(c)
	defer cancel()
	r, err := s.computeTop(ctx, &q, projection.KindEditors, true)
	if err != nil {
		return err
	}
	out := topEditorsBody{Window: q.window, AsOf: r.asOf, From: r.from, Namespace: r.h.keys.NS, Items: make([]editorItem, 0, len(r.members)), UniqueEditors: r.unique, Note: r.note}
	for _, m := range r.members {
		out.Items = append(out.Items, editorItem{Domain: m.domain, User: m.name, Count: m.count})
	}
	return s.sendValue(c, out)
}
