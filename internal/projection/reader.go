package projection

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ReadClient is what a Reader needs from Redis; *redis.Client, *redis.ClusterClient
// and redis.UniversalClient satisfy it.
type ReadClient interface {
	Get(ctx context.Context, key string) *redis.StringCmd
	HGet(ctx context.Context, key, field string) *redis.StringCmd
	HGetAll(ctx context.Context, key string) *redis.MapStringStringCmd
	HScan(ctx context.Context, key string, cursor uint64, match string, count int64) *redis.ScanCmd
	ZScan(ctx context.Context, key string, cursor uint64, match string, count int64) *redis.ScanCmd
	PFCount(ctx context.Context, keys ...string) *redis.IntCmd
	Del(ctx context.Context, keys ...string) *redis.IntCmd
	Pipeline() redis.Pipeliner
	TxPipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
}

// Reader reads the projection namespaces under one base name: the pointer, the
// watermarks, the meta and the counters, with the key layout of this package. It
// is safe for concurrent use.
//
// The pointer, watermarks, meta and snapshots it reads are those of one shard (0
// unless made by NewShardReader); Head, SumHashes and Top read every shard of a
// sharded projection and sum them.
type Reader struct {
	c     ReadClient
	base  string
	shard int
}

// NewReader returns a Reader over c for the base name base (wire.DefaultHash in
// production).
func NewReader(c ReadClient, base string) *Reader { return &Reader{c: c, base: base} }

// NewShardReader returns a Reader over c for the base name base whose pointer,
// watermarks, meta and keys are those of shard shard.
func NewShardReader(c ReadClient, base string, shard int) *Reader {
	return &Reader{c: c, base: base, shard: shard}
}

// Keys returns the keys of namespace ns (in the Reader's shard).
func (r *Reader) Keys(ns string) Keys { return New(r.base, ns).InShard(r.shard) }

// Current returns the namespace the pointer names (DefaultNamespace when unset).
func (r *Reader) Current(ctx context.Context) (string, error) {
	v, err := r.c.Get(ctx, r.Keys("").Pointer()).Result()
	if errors.Is(err, redis.Nil) || err == nil && v == "" {
		return DefaultNamespace, nil
	}
	if err != nil {
		return "", fmt.Errorf("read current namespace: %w", err)
	}
	return v, nil
}

// Watermark returns the last stream sequence consumer applied to namespace ns (0
// when none).
func (r *Reader) Watermark(ctx context.Context, ns, consumer string) (uint64, error) {
	v, err := r.c.HGet(ctx, r.Keys(ns).Watermarks(), consumer).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read watermark of %s in %s: %w", consumer, ns, err)
	}
	w, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("watermark of %s in %s: %q is not a sequence", consumer, ns, v)
	}
	return w, nil
}

// Watermarks returns every consumer's last applied stream sequence in namespace
// ns (empty when none applied anything).
func (r *Reader) Watermarks(ctx context.Context, ns string) (map[string]uint64, error) {
	h, err := r.c.HGetAll(ctx, r.Keys(ns).Watermarks()).Result()
	if err != nil {
		return nil, fmt.Errorf("read watermarks of %s: %w", ns, err)
	}
	return parseWatermarks(ns, h)
}

func parseWatermarks(ns string, h map[string]string) (map[string]uint64, error) {
	out := make(map[string]uint64, len(h))
	for name, v := range h {
		w, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("watermark of %s in %s: %q is not a sequence", name, ns, v)
		}
		out[name] = w
	}
	return out, nil
}

// Meta is a namespace's metadata hash.
type Meta struct {
	// AsOf is the newest event time applied (zero when none).
	AsOf time.Time
	// Updated is the wall-clock time of the last apply (zero when none).
	Updated time.Time
	// PartialFrom is set by a rebuild that started after retention had dropped
	// events: the log time of the oldest event it counted (zero when whole).
	PartialFrom time.Time
	// Events is the number of events applied.
	Events int64
	// FirstSeq is the first stream sequence applied (0 when none).
	FirstSeq uint64
	// Fields is the whole hash, including fields other writers set.
	Fields map[string]string
}

// ParseMeta parses a meta hash as read from Redis; missing or malformed fields
// are left zero.
func ParseMeta(f map[string]string) Meta {
	m := Meta{Fields: f}
	m.AsOf = msField(f, MetaAsOf)
	m.Updated = msField(f, MetaUpdated)
	m.PartialFrom = msField(f, MetaPartialFrom)
	m.Events, _ = strconv.ParseInt(f[MetaEvents], 10, 64)
	m.FirstSeq, _ = strconv.ParseUint(f[MetaFirstSeq], 10, 64)
	return m
}

// msField is the Unix-millisecond time in field name of f (zero unless positive).
func msField(f map[string]string, name string) time.Time {
	if v, err := strconv.ParseInt(f[name], 10, 64); err == nil && v > 0 {
		return time.UnixMilli(v).UTC()
	}
	return time.Time{}
}

// AsOfMinute is the Unix minute holding AsOf.
func (m Meta) AsOfMinute() int64 { return floorDiv(m.AsOf.UnixMilli(), 60_000) }

// Meta reads namespace ns's metadata.
func (r *Reader) Meta(ctx context.Context, ns string) (Meta, error) {
	f, err := r.c.HGetAll(ctx, r.Keys(ns).Meta()).Result()
	if err != nil {
		return Meta{}, fmt.Errorf("read meta of %s: %w", ns, err)
	}
	return ParseMeta(f), nil
}

// Head is the start of a consistent read: the current namespace's keys and meta,
// and the legacy hash when asked for.
type Head struct {
	// Keys are the keys of the current namespace (in the Reader's shard).
	Keys Keys
	// Meta is its meta hash; of a sharded projection, the shards' metas merged
	// (see MergeMeta).
	Meta Meta
	// Legacy is the legacy domain -> count hash (nil unless asked for); of a
	// sharded projection, the sum of the shards' all-time domain hashes.
	Legacy map[string]string
	// Shards is the projection's shard count (1: unsharded).
	Shards int
	// ShardNS is, of a sharded projection, the namespace each shard's own
	// pointer names (shard 0's is Keys.NS); read a shard's keys with ShardKeys.
	ShardNS []string
}

// Head reads the pointer and the meta of the namespace it names in one round
// trip, guessing that the pointer names guess (DefaultNamespace when empty); only
// when it names another namespace, or the projection is sharded, does a second
// round trip read that one's meta (and the other shards' pointers and metas, see
// shardedHead). With legacy set it
// also reads the legacy hash. Every further key of a response should be taken
// from the returned namespace only.
func (r *Reader) Head(ctx context.Context, guess string, legacy bool) (Head, error) {
	if guess == "" {
		guess = DefaultNamespace
	}
	k := r.Keys(guess)
	pipe := r.c.Pipeline()
	ptr := pipe.Get(ctx, k.Pointer())
	shards := pipe.Get(ctx, k.ShardCount())
	var leg *redis.MapStringStringCmd
	if legacy {
		leg = pipe.HGetAll(ctx, k.Legacy())
	}
	mc := pipe.HGetAll(ctx, k.Meta())
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Head{}, fmt.Errorf("read pointer and meta: %w", err)
	}
	cur := ptr.Val()
	if ptr.Err() != nil || cur == "" {
		cur = DefaultNamespace
	}
	n, err := parseShardCount(shards)
	if err != nil {
		return Head{}, err
	}
	if n > 1 && r.shard == 0 {
		return r.shardedHead(ctx, cur, n, legacy)
	}
	if cur != guess {
		k = r.Keys(cur)
		mc = r.c.HGetAll(ctx, k.Meta())
		if err := mc.Err(); err != nil {
			return Head{}, fmt.Errorf("read meta of %s: %w", cur, err)
		}
	}
	h := Head{Keys: k, Meta: ParseMeta(mc.Val()), Shards: 1}
	if leg != nil {
		h.Legacy = leg.Val()
	}
	return h, nil
}

// Hashes reads many hashes in one pipeline, in the order of keys (a missing key
// reads as an empty hash).
func (r *Reader) Hashes(ctx context.Context, keys []string) ([]map[string]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	pipe := r.c.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGetAll(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read %d counter hashes: %w", len(keys), err)
	}
	out := make([]map[string]string, len(keys))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// Snapshot is a namespace's watermarks and all-time counters read at one instant.
type Snapshot struct {
	// Watermarks are the consumers' last applied stream sequences.
	Watermarks map[string]uint64
	// Counters are the all-time hashes of the kinds asked for.
	Counters map[Kind]map[string]string
}

// Snapshot reads namespace ns's watermarks and the all-time hashes of kinds in
// one transaction, so that the counters are those of the watermarks.
func (r *Reader) Snapshot(ctx context.Context, ns string, kinds ...Kind) (Snapshot, error) {
	k := r.Keys(ns)
	var wm *redis.MapStringStringCmd
	cmds := make([]*redis.MapStringStringCmd, len(kinds))
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		wm = p.HGetAll(ctx, k.Watermarks())
		for i, kind := range kinds {
			cmds[i] = p.HGetAll(ctx, k.All(kind))
		}
		return nil
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("snapshot the counters of %s: %w", ns, err)
	}
	wms, err := parseWatermarks(ns, wm.Val())
	if err != nil {
		return Snapshot{}, err
	}
	s := Snapshot{Watermarks: wms, Counters: make(map[Kind]map[string]string, len(kinds))}
	for i, kind := range kinds {
		s.Counters[kind] = cmds[i].Val()
	}
	return s, nil
}
