package projection

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// TempTTL bounds the life of the temporary union key of a top query, should the
// reader die before deleting it.
const TempTTL = 30 * time.Second

// TopQuery selects a top list.
type TopQuery struct {
	// Kind is KindPages or KindEditors.
	Kind Kind
	// Minutes is the window's length, ending at the head's as_of.
	Minutes int64
	// N is how many members to return (at least 1).
	N int
	// Wiki and Domain restrict the members to one wiki's or one domain's (empty:
	// any).
	Wiki, Domain string
	// Users also estimates the distinct users of the window (KindUsers).
	Users bool
}

// Member is one entry of a top list: a sorted-set member "domain|name" and its
// count.
type Member struct {
	// Key is the member itself.
	Key string
	// Domain and Name are its two parts.
	Domain, Name string
	// Count is its summed score.
	Count int64
}

// Top is a top list read by Reader.Top.
type Top struct {
	// From is the start of the span the window's buckets cover (zero without as_of).
	From time.Time
	// Members are the list, largest count first, ties by ascending member.
	Members []Member
	// Users is the estimated number of distinct users (with TopQuery.Users).
	Users int64
	// Bad counts scores that did not parse and were skipped.
	Bad int64
}

// Top reads the top q.N members of the window's sorted sets of q.Kind in the
// namespace of h, exactly: the sets are summed by ZUNIONSTORE into a short-lived
// key sharing the projection's hash tag. A head without as_of has no window: the
// list is then empty. Of a sharded projection, the shards' lists are merged.
func (r *Reader) Top(ctx context.Context, h Head, q TopQuery) (Top, error) {
	if h.Shards > 1 {
		return r.shardedTop(ctx, h, q)
	}
	return r.topShard(ctx, h, q)
}

// topShard is Top within the slot of h.Keys.
func (r *Reader) topShard(ctx context.Context, h Head, q TopQuery) (Top, error) {
	var res Top
	if h.Meta.AsOf.IsZero() {
		return res, nil
	}
	var keys []string
	keys, res.From = h.Keys.SetKeys(q.Kind, q.Minutes, h.Meta.AsOf)
	ukeys, _ := h.Keys.SetKeys(KindUsers, q.Minutes, h.Meta.AsOf)
	var domains []string // nil: every domain
	if q.Wiki != "" || q.Domain != "" {
		var err error
		if domains, err = r.Domains(ctx, h.Keys, q.Wiki, q.Domain); err != nil {
			return res, err
		}
		if len(domains) == 0 {
			if q.Users {
				res.Users, err = r.c.PFCount(ctx, ukeys...).Result()
				if err != nil {
					return res, fmt.Errorf("count unique users: %w", err)
				}
			}
			return res, nil
		}
	}
	tmp := h.Keys.tag() + ":tmp:top:" + randomID()
	pipe := r.c.Pipeline()
	pipe.ZUnionStore(ctx, tmp, &redis.ZStore{Keys: keys, Aggregate: "SUM"})
	pipe.Expire(ctx, tmp, TempTTL)
	var head *redis.ZSliceCmd
	if domains == nil {
		head = pipe.ZRevRangeWithScores(ctx, tmp, 0, int64(q.N-1))
	}
	var uc *redis.IntCmd
	if q.Users {
		uc = pipe.PFCount(ctx, ukeys...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		r.c.Del(context.WithoutCancel(ctx), tmp)
		return res, fmt.Errorf("union the window's sets: %w", err)
	}
	if uc != nil {
		res.Users = uc.Val()
	}
	var err error
	if domains == nil {
		res.Members, err = r.topOfUnion(ctx, tmp, head.Val(), q.N)
	} else {
		res.Members, res.Bad, err = r.scanUnion(ctx, tmp, domains, q.N)
	}
	return res, err
}

// topOfUnion completes the ZREVRANGE head of the union so that ties at the cut
// are broken by ascending member, then deletes the union.
func (r *Reader) topOfUnion(ctx context.Context, tmp string, head []redis.Z, n int) ([]Member, error) {
	pipe := r.c.Pipeline()
	var ties *redis.StringSliceCmd
	var above []redis.Z
	if len(head) == n && n > 0 {
		cut := head[n-1].Score
		for _, z := range head {
			if z.Score > cut {
				above = append(above, z)
			}
		}
		score := strconv.FormatFloat(cut, 'f', -1, 64)
		ties = pipe.ZRangeByScore(ctx, tmp, &redis.ZRangeBy{Min: score, Max: score, Count: int64(n - len(above))})
	}
	pipe.Del(ctx, tmp)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read the top of the union: %w", err)
	}
	zs := head
	if ties != nil {
		zs = above
		cut := head[n-1].Score
		for _, m := range ties.Val() {
			zs = append(zs, redis.Z{Member: m, Score: cut})
		}
	}
	out := make([]Member, 0, len(zs))
	for _, z := range zs {
		name, _ := z.Member.(string)
		m := SplitMember(name)
		m.Count = int64(z.Score)
		out = append(out, m)
	}
	sortMembers(out)
	return out, nil
}

// scanUnion collects the union's members of the given domains, then deletes it.
// bad counts the scores that did not parse.
func (r *Reader) scanUnion(ctx context.Context, tmp string, domains []string, n int) (out []Member, bad int64, err error) {
	defer r.c.Del(context.WithoutCancel(ctx), tmp)
	for _, d := range domains {
		var cursor uint64
		for {
			kv, next, err := r.c.ZScan(ctx, tmp, cursor, globEscape(d)+FieldSep+"*", 1000).Result()
			if err != nil {
				return nil, bad, fmt.Errorf("scan the union: %w", err)
			}
			for i := 0; i+1 < len(kv); i += 2 {
				m := SplitMember(kv[i])
				if m.Domain != d {
					continue
				}
				f, err := strconv.ParseFloat(kv[i+1], 64)
				if err != nil {
					bad++
				}
				m.Count = int64(f)
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
	return out, bad, nil
}

// Domains lists, sorted, the domains a wiki and/or domain filter selects in the
// namespace of k, from its all-time cube (a wiki's domain never changes). Without
// a wiki it is just the domain.
func (r *Reader) Domains(ctx context.Context, k Keys, wiki, domain string) ([]string, error) {
	if wiki == "" {
		return []string{domain}, nil
	}
	seen := map[string]bool{}
	var out []string
	var cursor uint64
	match := "*" + FieldSep + globEscape(wiki) + FieldSep + "*"
	for {
		kv, next, err := r.c.HScan(ctx, k.All(KindCube), cursor, match, 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("find the domain of wiki %s: %w", wiki, err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			d, w, _, _, ok := ParseCubeField(kv[i])
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

// SplitMember splits a sorted-set member "domain|name" (a domain never holds the
// separator); a member without it is all name.
func SplitMember(s string) Member {
	d, n, ok := strings.Cut(s, FieldSep)
	if !ok {
		return Member{Key: s, Name: s}
	}
	return Member{Key: s, Domain: d, Name: n}
}

// sortMembers orders by count, largest first, then by the member "domain|name"
// (the order Redis gives members of equal score).
func sortMembers(m []Member) {
	sort.Slice(m, func(i, j int) bool {
		if m[i].Count != m[j].Count {
			return m[i].Count > m[j].Count
		}
		return m[i].Key < m[j].Key
	})
}

func randomID() string {
	var b [8]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

// globEscape escapes the glob metacharacters of s for a SCAN, HSCAN or ZSCAN
// MATCH pattern.
func globEscape(s string) string {
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
