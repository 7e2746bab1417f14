package bench

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// PartitionEnds returns the last offset (the offset of the next record) of each
// partition of topic, asking each partition's leader.
func PartitionEnds(ctx context.Context, brokers, topic string) (map[int]int64, error) {
	conn, err := kafka.DialContext(ctx, "tcp", brokers)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", brokers, err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	ends := map[int]int64{}
	for _, p := range parts {
		lc, err := kafka.DialLeader(ctx, "tcp", brokers, topic, p.ID)
		if err != nil {
			return nil, fmt.Errorf("leader of %s/%d: %w", topic, p.ID, err)
		}
		ends[p.ID], err = lc.ReadLastOffset()
		lc.Close()
		if err != nil {
			return nil, fmt.Errorf("last offset of %s/%d: %w", topic, p.ID, err)
		}
	}
	return ends, nil
}
