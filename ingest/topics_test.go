package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestCreateTopicsSetsMinInsyncReplicas checks that a topic ingest creates gets
// --min-insync-replicas as its min.insync.replicas.
func TestCreateTopicsSetsMinInsyncReplicas(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "http://127.0.0.1:1/")
	cfg.MinInsyncReplicas = 1
	cl := freshClient(t, cfg.Kafka.Brokers[0])
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := createTopics(ctx, cl, cfg, []string{cfg.Kafka.Topic}); err != nil {
		t.Fatal(err)
	}
	resp, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: cfg.Kafka.Topic, ConfigNames: []string{"min.insync.replicas"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Resources {
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "min.insync.replicas" {
				// ConfigSource 1 is DYNAMIC_TOPIC_CONFIG: set on the topic itself.
				if e.ConfigValue != "1" || e.ConfigSource != 1 {
					t.Errorf("min.insync.replicas %q (source %d), want 1 set on the topic (source 1)", e.ConfigValue, e.ConfigSource)
				}
				return
			}
		}
	}
	t.Errorf("no min.insync.replicas in %+v", resp.Resources)
}
