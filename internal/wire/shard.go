package wire

import "strconv"

// Shard names: a stream partitioned by wiki into N shards is read through its
// shard mirror, which stores each message of the stream at the same sequence
// under ShardSubjectPrefix.<k>.<wiki>.<type> (k the wiki's shard); shard k is
// consumed by its own durable consumer, filtered on its shard's subjects.

// ShardSubjectPrefix is the subject prefix of the shard mirror's messages.
const ShardSubjectPrefix = "wikimedia.shard"

// MirrorName is the name of the shard mirror of stream for n shards.
func MirrorName(stream string, n int) string { return stream + "_S" + strconv.Itoa(n) }

// ShardFilter is the filter subject of shard k in the shard mirror.
func ShardFilter(k int) string { return ShardSubjectPrefix + "." + strconv.Itoa(k) + ".>" }

// ShardConsumer is the durable consumer name of shard k of n for the base name
// consumer (consumer itself when n is 1); it is also the name of the shard's
// watermark in the projection.
func ShardConsumer(consumer string, k, n int) string {
	if n <= 1 {
		return consumer
	}
	return consumer + "-s" + strconv.Itoa(k)
}
