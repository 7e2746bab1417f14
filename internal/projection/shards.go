package projection

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// MaxShards is the largest shard count a projection may have.
const MaxShards = 256

// ParseShard parses "k/N": shard k (0-based) of a projection of N shards.
func ParseShard(s string) (k, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	k, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || n > MaxShards || k < 0 || k >= n {
		return 0, 0, fmt.Errorf("shard: %q is not k/N with 0 <= k < N <= %d", s, MaxShards)
	}
	return k, n, nil
}

// ErrShardCount is returned (wrapped) when a writer's shard count differs from
// the one the projection was created with.
var ErrShardCount = errors.New("shard count differs from the projection's")

// parseShardCount reads the reply of GET {B}:shards (missing: 1).
func parseShardCount(c *redis.StringCmd) (int, error) {
	if errors.Is(c.Err(), redis.Nil) {
		return 1, nil
	}
	if c.Err() != nil {
		return 0, fmt.Errorf("read shard count: %w", c.Err())
	}
	n, err := strconv.Atoi(c.Val())
	if err != nil || n < 1 || n > MaxShards {
		return 0, fmt.Errorf("shard count %q is not in 1..%d", c.Val(), MaxShards)
	}
	return n, nil
}

// Shards reads the projection's recorded shard count ({B}:shards; 1 when none
// is recorded).
func (r *Reader) Shards(ctx context.Context) (int, error) {
	return parseShardCount(r.c.Get(ctx, r.Keys("").ShardCount()))
}

// shardedHead reads the head of a projection of n shards whose shard 0 points
// at ns: each shard's pointer, and the meta (and all-time domain hash, when
// legacy is set) of the namespace it names. Shards point at the same namespace
// unless a shard was rebuilt on its own: one pipeline reads every pointer with
// the keys of ns, and a second only those of shards pointing elsewhere.
func (r *Reader) shardedHead(ctx context.Context, ns string, n int, legacy bool) (Head, error) {
	h := Head{Keys: r.Keys(ns), Shards: n, ShardNS: make([]string, n)}
	ptrs := make([]*redis.StringCmd, n)
	metas := make([]*redis.MapStringStringCmd, n)
	doms := make([]*redis.MapStringStringCmd, n)
	read := func(p redis.Pipeliner, i int) {
		k := h.ShardKeys(i)
		metas[i] = p.HGetAll(ctx, k.Meta())
		if legacy {
			doms[i] = p.HGetAll(ctx, k.All(KindDomain))
		}
	}
	pipe := r.c.Pipeline()
	for i := range n {
		h.ShardNS[i] = ns
		if i > 0 {
			ptrs[i] = pipe.Get(ctx, h.Keys.InShard(i).Pointer())
		}
		read(pipe, i)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Head{}, fmt.Errorf("read the pointers and metas of %d shards: %w", n, err)
	}
	pipe = r.c.Pipeline()
	again := false
	for i := 1; i < n; i++ {
		cur, err := ptrs[i].Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return Head{}, fmt.Errorf("read the pointer of shard %d: %w", i, err)
		}
		if cur = cmp.Or(cur, DefaultNamespace); cur != ns {
			h.ShardNS[i] = cur
			read(pipe, i)
			again = true
		}
	}
	if again {
		if _, err := pipe.Exec(ctx); err != nil {
			return Head{}, fmt.Errorf("read the metas of %d shards: %w", n, err)
		}
	}
	for i := range n {
		if err := errors.Join(metas[i].Err(), errOf(doms[i])); err != nil {
			return Head{}, fmt.Errorf("read the meta of shard %d: %w", i, err)
		}
	}
	ms := make([]Meta, n)
	for i, c := range metas {
		ms[i] = ParseMeta(c.Val())
	}
	h.Meta = MergeMeta(ms)
	if legacy {
		hs := make([]map[string]string, n)
		for i, c := range doms {
			hs[i] = c.Val()
		}
		h.Legacy = sumMaps(hs)
	}
	return h, nil
}

// errOf is c's error (nil for no command).
func errOf(c *redis.MapStringStringCmd) error {
	if c == nil {
		return nil
	}
	return c.Err()
}

// ShardKeys returns the keys of the namespace shard k's pointer names (h.Keys
// in shard k when h is not of a sharded projection).
func (h Head) ShardKeys(k int) Keys {
	if k < len(h.ShardNS) {
		return New(h.Keys.Base, h.ShardNS[k]).InShard(k)
	}
	return h.Keys.InShard(k)
}

// MergeMeta merges the metas of a projection's shards: the newest as_of and
// update, the latest partial_from, the events summed, the smallest first_seq, and
// shard 0's fields.
func MergeMeta(ms []Meta) Meta {
	if len(ms) == 0 {
		return Meta{}
	}
	out := ms[0]
	for _, m := range ms[1:] {
		if m.AsOf.After(out.AsOf) {
			out.AsOf = m.AsOf
		}
		if m.Updated.After(out.Updated) {
			out.Updated = m.Updated
		}
		if m.PartialFrom.After(out.PartialFrom) {
			out.PartialFrom = m.PartialFrom
		}
		out.Events += m.Events
		if m.FirstSeq != 0 && (out.FirstSeq == 0 || m.FirstSeq < out.FirstSeq) {
			out.FirstSeq = m.FirstSeq
		}
	}
	return out
}

// sumMaps adds up counter hashes field by field. A value that is not an integer
// is kept as it is (so that the caller sees it is bad) instead of being summed.
func sumMaps(hs []map[string]string) map[string]string {
	sum := map[string]int64{}
	bad := map[string]string{}
	for _, h := range hs {
		for f, v := range h {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				bad[f] = v
				continue
			}
			sum[f] += n
		}
	}
	out := make(map[string]string, len(sum)+len(bad))
	for f, n := range sum {
		out[f] = strconv.FormatInt(n, 10)
	}
	for f, v := range bad {
		out[f] = v
	}
	return out
}

// inShard rewrites key, a key of h's namespace in shard 0, as the same key of
// the namespace shard k's pointer names.
func (h Head) inShard(key string, k int) string {
	if rest, ok := strings.CutPrefix(key, h.Keys.InShard(0).Prefix()); ok {
		return h.ShardKeys(k).Prefix() + rest
	}
	return key
}

// SumHashes is Hashes for the keys of h's namespace (keys of shard 0, such as
// h.Keys gives): of a sharded projection, each hash is the field-by-field sum of
// that hash in every shard, read in one pipeline.
func (r *Reader) SumHashes(ctx context.Context, h Head, keys []string) ([]map[string]string, error) {
	if h.Shards <= 1 {
		return r.Hashes(ctx, keys)
	}
	all := make([]string, 0, len(keys)*h.Shards)
	for _, key := range keys {
		for k := range h.Shards {
			all = append(all, h.inShard(key, k))
		}
	}
	hs, err := r.Hashes(ctx, all)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]string, len(keys))
	for i := range keys {
		out[i] = sumMaps(hs[i*h.Shards : (i+1)*h.Shards])
	}
	return out, nil
}

// shardedTop is Top over the shards of h: each shard's top q.N (its sets summed
// in its own slot), merged. Members of one domain, and so of one wiki, live in
// one shard (the aggregate partitions by wiki), so the merge is exact; a member
// found in several shards has its counts added. The distinct users are the
// union of every shard's sketches.
func (r *Reader) shardedTop(ctx context.Context, h Head, q TopQuery) (Top, error) {
	var res Top
	if h.Meta.AsOf.IsZero() {
		return res, nil
	}
	users := q.Users
	q.Users = false
	byKey := map[string]int{}
	for k := range h.Shards {
		sh := h
		sh.Keys = h.ShardKeys(k)
		t, err := r.topShard(ctx, sh, q)
		if err != nil {
			return res, err
		}
		res.From, res.Bad = t.From, res.Bad+t.Bad
		for _, m := range t.Members {
			if i, ok := byKey[m.Key]; ok {
				res.Members[i].Count += m.Count
				continue
			}
			byKey[m.Key] = len(res.Members)
			res.Members = append(res.Members, m)
		}
	}
	sortMembers(res.Members)
	if len(res.Members) > q.N {
		res.Members = res.Members[:q.N]
	}
	if users {
		var err error
		if res.Users, err = r.unionUsers(ctx, h, q.Minutes); err != nil {
			return res, err
		}
	}
	return res, nil
}

// unionUsers estimates the distinct users of the window in every shard: each
// shard k >= 1 merges its sketches into a short-lived key of its own slot, whose
// bytes are copied next to shard 0's sketches, which are counted with them.
func (r *Reader) unionUsers(ctx context.Context, h Head, minutes int64) (int64, error) {
	id := randomID()
	pipe := r.c.Pipeline()
	gets := make([]*redis.StringCmd, h.Shards)
	for k := 1; k < h.Shards; k++ {
		kk := h.ShardKeys(k)
		ukeys, _ := kk.SetKeys(KindUsers, minutes, h.Meta.AsOf)
		tmp := kk.tag() + ":tmp:users:" + id
		pipe.PFMerge(ctx, tmp, ukeys...)
		gets[k] = pipe.Get(ctx, tmp)
		pipe.Del(ctx, tmp)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("merge the shards' user sketches: %w", err)
	}
	k0 := h.ShardKeys(0)
	keys, _ := k0.SetKeys(KindUsers, minutes, h.Meta.AsOf)
	var copies []string
	pipe = r.c.Pipeline()
	for k := 1; k < h.Shards; k++ {
		c := k0.tag() + ":tmp:users:" + id + ":" + strconv.Itoa(k)
		pipe.Set(ctx, c, gets[k].Val(), TempTTL)
		copies = append(copies, c)
	}
	count := pipe.PFCount(ctx, append(keys, copies...)...)
	pipe.Del(ctx, copies...)
	if _, err := pipe.Exec(ctx); err != nil {
		r.c.Del(context.WithoutCancel(ctx), copies...)
		return 0, fmt.Errorf("count unique users over %d shards: %w", h.Shards, err)
	}
	return count.Val(), nil
}
