package ingest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

// TestReadyNamesKafka checks /readyz's answer: unready while the brokers do not
// answer or the topic is missing, ready once the topic exists.
func TestReadyNamesKafka(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/v2/stream/recentchange")
	in, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := in.Ready(ctx); err == nil || !strings.Contains(err.Error(), "kafka: topic "+cfg.Kafka.Topic) {
		t.Fatalf("before the topic exists: Ready = %v, want the missing topic named", err)
	}
	if _, err := ensureTopics(ctx, in.client, cfg); err != nil {
		t.Fatal(err)
	}
	if err := in.Ready(ctx); err != nil {
		t.Fatalf("with the topic: Ready = %v, want nil", err)
	}

	down := cfg
	down.Kafka.Brokers = []string{"127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))}
	gone, err := New(down, nil)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
	defer scancel()
	if err := gone.Ready(sctx); err == nil || !strings.HasPrefix(err.Error(), "kafka: "+down.Kafka.Brokers[0]) {
		t.Fatalf("brokers down: Ready = %v, want the brokers named", err)
	}
}
