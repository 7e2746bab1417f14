package brokers

import (
	"context"
	"fmt"
	"strings"

	"github.com/segmentio/kafka-go"
)

// TopicReady asks the brokers of k, through cl, for the metadata of k.Topic and says
// what is missing: the brokers, the topic, or its partitions. It is the Kafka part of
// a stage's readiness (/readyz).
func (k Kafka) TopicReady(ctx context.Context, cl *kafka.Client) error {
	addrs := strings.Join(k.Brokers, ",")
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{k.Topic}})
	if err != nil {
		return fmt.Errorf("kafka: %s: %w", addrs, scrub(err, k.Password))
	}
	for _, t := range md.Topics {
		if t.Name != k.Topic {
			continue
		}
		if t.Error != nil {
			return fmt.Errorf("kafka: topic %s: %w", k.Topic, t.Error)
		}
		if len(t.Partitions) > 0 {
			return nil
		}
	}
	return fmt.Errorf("kafka: topic %s has no partitions (does it exist?)", k.Topic)
}
