package rebuild

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/internal/projection"
)

// Sharded projections. Shard k of N is what `aggregate --shard k/N` counts:
// the stream's shard mirror (wire.MirrorName) read by the durable consumers
// named in shard k's live watermarks (wire.ShardConsumer), each filtered on
// shard k's subjects (wire.ShardFilter), into the keys of shard k (hash tag
// {B:s<k>}, {B} for shard 0) with its own pointer. A shard is rebuilt exactly
// as the unsharded projection is, on the shard's Store and the mirror: its
// replay takes the filters of the shard's live consumers, so it counts the
// shard's wikis only, its counters are compared with the shard's live ones at
// an equal watermark, and its Switch moves the shard's pointer only (readers
// follow each shard's pointer, and the legacy hash moves by the shard's
// change). Every key a shard's rebuild writes shares the shard's hash tag, so
// on a Redis Cluster its pipelines and scripts go to one node.
//
// The shard count recorded in {B}:shards decides: without Shard a sharded
// projection is refused (a rebuild of the unsharded layout would see shard 0
// only), and a Shard k/N whose N differs from the recorded count is refused.

// ShardAll is the Config.Shard that rebuilds every shard.
const ShardAll = "all"

// resolve reads the projection's recorded shard count and returns the shards
// Config.Shard names and the count, or why they cannot be rebuilt.
func (r *Rebuilder) resolve(ctx context.Context, rc redis.UniversalClient) (shards []int, n int, err error) {
	recorded, err := projection.NewReader(rc, r.cfg.Base).Shards(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("projection %s: %w", r.cfg.Base, err)
	}
	key := projection.New(r.cfg.Base, "").ShardCount()
	switch r.cfg.Shard {
	case "":
		if recorded > 1 {
			return nil, 0, fmt.Errorf("the projection %s has %d shards (%s): rebuild them with 'wikiflow rebuild --shard all', or one with --shard k/%d; without --shard only the unsharded layout is rebuilt", r.cfg.Base, recorded, key, recorded)
		}
		return []int{0}, 1, nil
	case ShardAll:
		for k := range recorded {
			shards = append(shards, k)
		}
		return shards, recorded, nil
	}
	k, n, err := projection.ParseShard(r.cfg.Shard)
	if err != nil {
		return nil, 0, err
	}
	if n != recorded && recorded == 1 {
		return nil, 0, fmt.Errorf("shard %s: the projection %s is not sharded (%s is unset): rebuild it without --shard", r.cfg.Shard, r.cfg.Base, key)
	}
	if n != recorded {
		return nil, 0, fmt.Errorf("shard %s: the projection %s has %d shards (%s), not %d: rebuild with --shard k/%d or --shard all", r.cfg.Shard, r.cfg.Base, recorded, key, n, recorded)
	}
	return []int{k}, n, nil
}

// RunShards rebuilds over existing connections what Config.Shard names: the
// unsharded projection or one shard (as RunWith), or with ShardAll every shard
// of the projection one after the other, each with its own progress line and
// Timeout. A shard that fails (its counters differ, say) leaves its pointer as
// it was and the next shard is rebuilt all the same; the error joins every
// shard's. The old namespaces of the switched shards are removed at the end,
// DropAfter after each switch. It returns a Result per shard attempted.
func (r *Rebuilder) RunShards(ctx context.Context, nc *nats.Conn, rc redis.UniversalClient) ([]Result, error) {
	shards, n, err := r.resolve(ctx, rc)
	if err != nil {
		return nil, err
	}
	var results []Result
	var errs []error
	for _, k := range shards {
		res, err := r.rebuild(ctx, nc, rc, k, n)
		results = append(results, res)
		if err != nil {
			errs = append(errs, shardErr(k, n, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	dctx, cancel := context.WithTimeout(ctx, r.cfg.DropAfter+r.cfg.Timeout)
	defer cancel()
	for i := range results {
		if err := r.dropOld(dctx, rc, &results[i]); err != nil {
			errs = append(errs, shardErr(results[i].Shard, n, err))
		}
	}
	return results, errors.Join(errs...)
}

// shardErr names shard k of n in err (n 1: err as it is).
func shardErr(k, n int, err error) error {
	if n <= 1 {
		return err
	}
	return fmt.Errorf("shard %d/%d: %w", k, n, err)
}
