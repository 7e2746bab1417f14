package projection

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client is what a Store needs from Redis (what its Reader needs, and scripts);
// *redis.Client, *redis.ClusterClient and redis.UniversalClient satisfy it.
type Client interface {
	ReadClient
	redis.Scripter
	Scan(ctx context.Context, cursor uint64, match string, count int64) *redis.ScanCmd
	Unlink(ctx context.Context, keys ...string) *redis.IntCmd
	SetNX(ctx context.Context, key string, value any, expiration time.Duration) *redis.BoolCmd
}

// Store writes the projection namespaces under one base name, and reads them
// through its embedded Reader. It is safe for concurrent use; a Delta passed to
// it is not.
type Store struct {
	*Reader
	c            Client
	shards       int
	mirror       bool
	applyScript  *redis.Script
	switchScript *redis.Script
	zincrScript  *redis.Script
	// shardSwitch is the switch script of a shard of a sharded projection.
	shardSwitch *redis.Script
}

// NewStore returns a Store over c for the base name base (wire.DefaultHash in
// production), writing the unsharded projection (shard 0 of 1).
func NewStore(c Client, base string) *Store { return NewShardStore(c, base, 0, 1) }

// NewShardStore returns a Store over c for the base name base that writes shard
// shard of a projection of shards shards; its embedded Reader reads that shard.
// It keeps the legacy hash (see MirrorsLegacy) when the projection is unsharded
// or c is not a *redis.ClusterClient.
func NewShardStore(c Client, base string, shard, shards int) *Store {
	_, cluster := c.(*redis.ClusterClient)
	return &Store{
		Reader: NewShardReader(c, base, shard), c: c, shards: max(shards, 1),
		mirror:      shards <= 1 || !cluster,
		applyScript: redis.NewScript(applySource), switchScript: redis.NewScript(switchSource),
		zincrScript: redis.NewScript(zincrSource), shardSwitch: redis.NewScript(switchShardSource),
	}
}

// MirrorsLegacy reports whether Apply also increments the legacy hash: always
// for an unsharded projection; for a sharded one only on a single Redis, where a
// script may write keys of several slots. On a Redis Cluster the shards' scripts
// keep to their own slot, and the legacy hash is not kept: readers sum the
// shards' all-time domain hashes (Head with legacy set) instead.
func (s *Store) MirrorsLegacy() bool { return s.mirror }

// ClaimShards records the Store's shard count as the projection's (in
// {B}:shards) unless one is recorded already, and returns an error wrapping
// ErrShardCount when the recorded count differs. An unsharded Store only checks.
func (s *Store) ClaimShards(ctx context.Context) error {
	key := s.Keys("").ShardCount()
	if s.shards > 1 {
		if err := s.c.SetNX(ctx, key, s.shards, 0).Err(); err != nil {
			return fmt.Errorf("record shard count: %w", err)
		}
	}
	n, err := parseShardCount(s.c.Get(ctx, key))
	if err != nil {
		return err
	}
	if n != s.shards {
		return fmt.Errorf("%w: the projection %s has %d shards, this writer %d", ErrShardCount, s.base, n, s.shards)
	}
	return nil
}

// ApplyStatus says what Apply did.
type ApplyStatus int

// Apply outcomes.
const (
	// Applied: the delta was applied and the watermark is now lastSeq.
	Applied ApplyStatus = iota + 1
	// Conflict: the consumer's watermark was not prevSeq; nothing changed and
	// ApplyResult.Watermark holds the current watermark.
	Conflict
	// Stale: the namespace is no longer the current one; nothing changed and
	// ApplyResult.Current names the current namespace.
	Stale
)

// String names the status.
func (s ApplyStatus) String() string {
	switch s {
	case Applied:
		return "applied"
	case Conflict:
		return "conflict"
	case Stale:
		return "stale namespace"
	}
	return "ApplyStatus(" + strconv.Itoa(int(s)) + ")"
}

// ApplyResult is the outcome of Apply.
type ApplyResult struct {
	// Status says whether the delta was applied.
	Status ApplyStatus
	// Watermark is the consumer's watermark after the call: lastSeq when
	// applied, the unchanged current value on a conflict.
	Watermark uint64
	// Current is the current namespace when Status is Stale.
	Current string
}

// Apply applies d to namespace ns as consumer's batch (prevSeq, lastSeq], in one
// script call that changes everything or nothing: only when ns is the current
// namespace (else Stale) and the consumer's watermark equals prevSeq (else
// Conflict). The legacy hash is incremented too, since ns is current.
func (s *Store) Apply(ctx context.Context, ns, consumer string, prevSeq, lastSeq uint64, d *Delta) (ApplyResult, error) {
	return s.run(ctx, ns, consumer, prevSeq, lastSeq, d, true)
}

// ApplyStandby is Apply for a namespace that need not be current, such as one a
// rebuild is filling: it skips the namespace check and increments the legacy hash
// only if ns happens to be current.
func (s *Store) ApplyStandby(ctx context.Context, ns, consumer string, prevSeq, lastSeq uint64, d *Delta) (ApplyResult, error) {
	return s.run(ctx, ns, consumer, prevSeq, lastSeq, d, false)
}

func (s *Store) run(ctx context.Context, ns, consumer string, prevSeq, lastSeq uint64, d *Delta, requireCurrent bool) (ApplyResult, error) {
	keys, args, err := s.encodeApply(ns, consumer, prevSeq, lastSeq, d, requireCurrent, d.keys[:0], d.args[:0])
	if err != nil {
		return ApplyResult{}, err
	}
	d.keys, d.args = keys, args
	v, err := s.applyScript.Run(ctx, s.c, keys, args...).Slice()
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply to %s as %s (%d,%d]: %w", ns, consumer, prevSeq, lastSeq, err)
	}
	return parseApply(v)
}

// encodeApply appends the apply script's keys and arguments for d to keys and args.
func (s *Store) encodeApply(ns, consumer string, prevSeq, lastSeq uint64, d *Delta, requireCurrent bool, keys []string, args []any) ([]string, []any, error) {
	if ns == "" || consumer == "" {
		return nil, nil, errors.New("apply: empty namespace or consumer name")
	}
	if lastSeq < prevSeq {
		return nil, nil, fmt.Errorf("apply: lastSeq %d below prevSeq %d", lastSeq, prevSeq)
	}
	k := s.Keys(ns)
	d.init()
	events, asOf, first := d.n, d.asOfMs, d.FirstSeq
	if first == 0 && d.n > 0 {
		first = prevSeq + 1
	}
	if d.parts&Counts == 0 {
		// Sorted sets and sketches alone: the events were counted with the counts.
		events, asOf, first = 0, 0, 0
	}
	keys = append(keys, k.Pointer(), k.Watermarks(), k.Meta(), s.legacyKey(k))
	args = applyHeader(ns, consumer, prevSeq, lastSeq, asOf, events, first, requireCurrent, args)
	keys, args = d.encode(k, s.mirror, keys, args)
	return keys, args, nil
}

// legacyKey is the apply script's legacy hash key for the keys k: the legacy
// hash when the Store keeps it, else a key of the shard's own slot that the
// script never writes (the domain counts are then encoded without mirroring),
// which keeps the script within that slot.
func (s *Store) legacyKey(k Keys) string {
	if s.mirror {
		return k.Legacy()
	}
	return k.All(KindDomain)
}

func parseApply(v []any) (ApplyResult, error) {
	if len(v) != 2 {
		return ApplyResult{}, fmt.Errorf("apply: unexpected reply %v", v)
	}
	code, _ := v[0].(int64)
	val, _ := v[1].(string)
	switch code {
	case applyOK, applyConflict:
		w, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return ApplyResult{}, fmt.Errorf("apply: watermark %q is not a sequence", val)
		}
		st := Applied
		if code == applyConflict {
			st = Conflict
		}
		return ApplyResult{Status: st, Watermark: w}, nil
	case applyStale:
		return ApplyResult{Status: Stale, Current: val}, nil
	}
	return ApplyResult{}, fmt.Errorf("apply: unexpected reply %v", v)
}

// ErrNotCaughtUp is matched (errors.Is) by the *NotCaughtUpError Switch returns
// when a consumer's watermarks differ between the two namespaces.
var ErrNotCaughtUp = errors.New("namespace not caught up")

// ErrStaleNamespace is returned (wrapped) by Switch when the pointer no longer
// names the namespace to switch from.
var ErrStaleNamespace = errors.New("namespace is not current")

// ErrCurrentNamespace is returned by Drop for the current namespace.
var ErrCurrentNamespace = errors.New("namespace is current")

// NotCaughtUpError reports a consumer whose watermark in the target namespace
// differs from its watermark in the current one.
type NotCaughtUpError struct {
	// Consumer is the consumer name.
	Consumer string
	// From and To are its watermarks in the current and the target namespace.
	From, To uint64
}

// Error describes the difference.
func (e *NotCaughtUpError) Error() string {
	return fmt.Sprintf("consumer %s: watermark %d in the target namespace, %d in the current one", e.Consumer, e.To, e.From)
}

// Is makes errors.Is(err, ErrNotCaughtUp) true.
func (e *NotCaughtUpError) Is(target error) bool { return target == ErrNotCaughtUp }

// Switch atomically makes namespace to the current one, provided the pointer still
// names from and every consumer's watermark is the same in both (else a
// *NotCaughtUpError, changing nothing). The legacy hash becomes a copy of to's
// all-time per-domain counts (needs Redis >= 6.2, COPY). Of a shard of a sharded
// projection only the shard's pointer moves, and the legacy hash, where the
// shards keep it (see MirrorsLegacy), moves by the shard's change: from's domain
// counts out, to's in.
func (s *Store) Switch(ctx context.Context, from, to string, consumers []string) error {
	if from == "" || to == "" || from == to {
		return fmt.Errorf("switch %q -> %q: need two different namespaces", from, to)
	}
	kf, kt := s.Keys(from), s.Keys(to)
	script, keys := s.switchScript, []string{kf.Pointer(), kf.Watermarks(), kt.Watermarks(), kf.Legacy(), kt.All(KindDomain)}
	if s.shards > 1 {
		script, keys = s.shardSwitch, keys[:3]
		if s.mirror {
			keys = append(keys, kf.Legacy(), kt.All(KindDomain), kf.All(KindDomain))
		}
	}
	args := []any{from, to, DefaultNamespace}
	for _, c := range consumers {
		args = append(args, c)
	}
	v, err := script.Run(ctx, s.c, keys, args...).Slice()
	if err != nil {
		return fmt.Errorf("switch %s -> %s: %w", from, to, err)
	}
	code, _ := v[0].(int64)
	switch {
	case code == switchOK:
		return nil
	case code == switchStale && len(v) == 2:
		return fmt.Errorf("switch %s -> %s: %w (current is %v)", from, to, ErrStaleNamespace, v[1])
	case code == switchNotCaughtUp && len(v) == 4:
		e := &NotCaughtUpError{}
		e.Consumer, _ = v[1].(string)
		a, _ := v[2].(string)
		b, _ := v[3].(string)
		e.From, _ = strconv.ParseUint(a, 10, 64)
		e.To, _ = strconv.ParseUint(b, 10, 64)
		return e
	}
	return fmt.Errorf("switch %s -> %s: unexpected reply %v", from, to, v)
}

// Drop deletes every key of namespace ns (SCAN and UNLINK in batches). It refuses
// the current namespace.
func (s *Store) Drop(ctx context.Context, ns string) error {
	if ns == "" {
		return errors.New("drop: empty namespace")
	}
	cur, err := s.Current(ctx)
	if err != nil {
		return fmt.Errorf("drop %s: %w", ns, err)
	}
	if cur == ns {
		return fmt.Errorf("drop %s: %w", ns, ErrCurrentNamespace)
	}
	k := s.Keys(ns)
	var c Client = s.c
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		// Every key of the namespace shares the hash tag, hence one node.
		node, err := cc.MasterForKey(ctx, k.Pointer())
		if err != nil {
			return fmt.Errorf("drop %s: find node: %w", ns, err)
		}
		c = node
	}
	match := globEscape(k.Prefix()) + "*"
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, match, 500).Result()
		if err != nil {
			return fmt.Errorf("drop %s: scan: %w", ns, err)
		}
		if len(keys) > 0 {
			if err := c.Unlink(ctx, keys...).Err(); err != nil {
				return fmt.Errorf("drop %s: unlink: %w", ns, err)
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

var (
	_ Client = (*redis.Client)(nil)
	_ Client = (*redis.ClusterClient)(nil)
	_ Client = redis.UniversalClient(nil)
)
