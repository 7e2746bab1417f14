package aggregate

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// Sharding: N instances, each counting the wikis of its shard k into shard k of
// the projection, with its own durable consumer and its own watermark.
//
// The shards are told apart by JetStream's deterministic subject partitioning,
// applied in a mirror of the stream rather than in the stream itself: the
// mirror <Stream>_S<N> stores every message of the stream at the same sequence
// under the subject wikimedia.shard.<p>.<wiki>.<type>, where p is
// {{partition(N,1)}}, the FNV-1a hash of the wiki token modulo N. Instance k
// consumes the mirror with the single filter subject wikimedia.shard.<k>.>.
//
// Why a mirror, and why by wiki:
//   - The stream keeps its subjects wikimedia.recentchange.<wiki>.<type>, so the
//     API's event stream, replay and rebuild filters, the bridge's recovery and
//     every existing consumer work as before (a SubjectTransform on the stream
//     itself would rename the stored subjects and break their exact filters; an
//     explicit shard token would have to be added by the bridge and would break
//     them alike; FilterSubjects lists of wikis cannot name wikis not seen yet).
//   - A mirror keeps the source's sequence numbers, so a shard's watermark is a
//     sequence of the stream as it is unsharded: the tail checks, the ack-floor
//     check and the contiguity rules (contiguity.go) hold unchanged. With one
//     filter subject per shard, "the first message at or after P+1 on the
//     filter subject" (GetMsg with a subject) is exactly the message that must
//     follow P, however far apart the shard's sequences are. The mirror also
//     keeps the source's message times, so the tail checks (tail.go) run against
//     the source: a source that lost its tail and reused sequences is noticed,
//     although the mirror, which ignores sequences it holds, would not show it.
//   - Partitioning by wiki puts every counter of a wiki, and so of its domain, in
//     one shard: a top list of the projection is the merge of the shards' top
//     lists, exactly, and each domain's all-time count comes from one shard.
//   - N = 1 uses neither the mirror nor a shard suffix: exactly the unsharded
//     stage.
//
// The cost is a second copy of the stream (its limits are the source's) that the
// server fills asynchronously; a lost mirror can be deleted and is filled again
// from the source, at the same sequences. The shard count is fixed for a
// projection ({B}:shards): resharding means counting into a fresh projection.

// ParseShard parses "k/N": shard k (0-based) of N (see projection.ParseShard).
func ParseShard(s string) (k, n int, err error) { return projection.ParseShard(s) }

// MirrorName is the name of the shard mirror of stream for n shards
// (wire.MirrorName).
func MirrorName(stream string, n int) string { return wire.MirrorName(stream, n) }

// ShardFilter is the filter subject of shard k in the shard mirror
// (wire.ShardFilter).
func ShardFilter(k int) string { return wire.ShardFilter(k) }

// ShardConsumer is the durable consumer name of shard k of n for the base name
// consumer, consumer itself when n is 1 (wire.ShardConsumer).
func ShardConsumer(consumer string, k, n int) string { return wire.ShardConsumer(consumer, k, n) }

// MirrorConfig is the configuration of the shard mirror of the stream src for n
// shards with replicas replicas (0: src's), as the aggregate creates it.
func MirrorConfig(src jetstream.StreamConfig, n, replicas int) jetstream.StreamConfig {
	if replicas == 0 {
		replicas = src.Replicas
	}
	p := strconv.Itoa(n)
	return jetstream.StreamConfig{
		Name:        MirrorName(src.Name, n),
		Description: "the stream " + src.Name + " partitioned by wiki into " + p + " shards, for the sharded aggregate",
		Mirror: &jetstream.StreamSource{Name: src.Name, SubjectTransforms: []jetstream.SubjectTransformConfig{{
			Source:      wire.SubjectPrefix + ".*.*",
			Destination: wire.ShardSubjectPrefix + ".{{partition(" + p + ",1)}}.{{wildcard(1)}}.{{wildcard(2)}}",
		}}},
		Retention:  jetstream.LimitsPolicy,
		Storage:    jetstream.FileStorage,
		Discard:    jetstream.DiscardOld,
		MaxAge:     src.MaxAge,
		MaxBytes:   src.MaxBytes,
		MaxMsgs:    -1,
		Replicas:   replicas,
		DenyDelete: true,
		DenyPurge:  true,
	}
}

// ensureMirror returns the shard mirror of the source stream, creating it when
// missing (an existing mirror of another partitioning is an error), and the
// source stream.
func (w *worker) ensureMirror(ctx context.Context) (mirror, source jetstream.Stream, err error) {
	src, err := w.js.Stream(ctx, w.source)
	if err != nil {
		return nil, nil, fmt.Errorf("stream %s: %w", w.source, err)
	}
	want := MirrorConfig(src.CachedInfo().Config, w.shards, w.cfg.Replicas)
	s, err := w.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if s, err = w.js.CreateStream(ctx, want); err == nil {
			w.log.Info("created the shard mirror", "stream", want.Name, "source", w.source, "shards", w.shards, "replicas", want.Replicas)
			return s, src, nil
		}
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = w.js.Stream(ctx, want.Name)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("shard mirror %s: %w", want.Name, err)
	}
	cur := s.CachedInfo().Config
	if cur.Mirror == nil || cur.Mirror.Name != w.source || len(cur.Mirror.SubjectTransforms) != 1 ||
		cur.Mirror.SubjectTransforms[0] != want.Mirror.SubjectTransforms[0] {
		return nil, nil, fmt.Errorf("shard mirror %s: it is not a mirror of %s partitioned into %d shards", want.Name, w.source, w.shards)
	}
	return s, src, nil
}
