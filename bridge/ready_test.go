package bridge

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

// readiness returns b's readiness check (the obs.Readier the health server asks).
func readiness(t testing.TB, b *Bridge) func(context.Context) error {
	t.Helper()
	r, ok := any(b).(interface{ Ready(context.Context) error })
	if !ok {
		t.Fatal("the bridge has no Ready(ctx) error method: /readyz cannot tell a missing dependency")
	}
	return r.Ready
}

// readyErr waits up to 15s for Ready to answer with an error starting with
// prefix ("" waits for nil) and returns the last answer.
func readyErr(t testing.TB, ready func(context.Context) error, prefix string) error {
	t.Helper()
	var err error
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = ready(ctx)
		cancel()
		if (prefix == "" && err == nil) || (prefix != "" && err != nil && strings.HasPrefix(err.Error(), prefix)) {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready = %v, want %s", err, map[bool]string{true: "nil", false: "an error starting with " + prefix}[prefix == ""])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestReadyNamesTheMissingDependency(t *testing.T) {
	t.Run("kafka unreachable", func(t *testing.T) {
		url, _ := testenv.NATS(t)
		cfg := DefaultConfig()
		cfg.Kafka.Brokers = []string{fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
		cfg.NATS.URL = url
		r := start(t, cfg)
		ready := readiness(t, r.b)
		t.Logf("Ready: %v", readyErr(t, ready, "kafka: "))
	})
	t.Run("topic missing", func(t *testing.T) {
		cfg := missingTopicConfig(t)
		r := start(t, cfg)
		err := readyErr(t, readiness(t, r.b), "kafka: ")
		if !strings.Contains(err.Error(), cfg.Kafka.Topic) {
			t.Errorf("Ready = %v, want the missing topic named", err)
		}
	})
	t.Run("nats stopped and started", func(t *testing.T) {
		addr := testenv.KafkaAddr(t)
		port, dir := testenv.FreePort(t), t.TempDir()
		url, srv := testenv.NATSAt(t, port, dir)
		e := &env{t: t, addr: addr, topic: testenv.Topic(t, addr, 1), url: url, sent: map[string]sent{}}
		b, err := New(e.config(), testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		ready := readiness(t, b)
		if err := ready(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "nats: ") {
			t.Errorf("before Run: Ready = %v, want a nats: error", err)
		}
		r := start(t, e.config())
		ready = readiness(t, r.b)
		readyErr(t, ready, "")
		srv.Shutdown()
		srv.WaitForShutdown()
		t.Logf("Ready with NATS down: %v", readyErr(t, ready, "nats: "))
		testenv.NATSAt(t, port, dir)
		readyErr(t, ready, "")
	})
}
