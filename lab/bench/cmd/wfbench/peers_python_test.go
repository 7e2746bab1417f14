package main

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/lab/bench"
	"github.com/wikiflow/wikiflow/lab/gen"
)

// TestPythonConsumerCountsExactly runs the Python peer on a small 3-partition
// topic against the real Kafka and Redis: it must stop by itself at the end
// offsets, print the number of messages, and count every domain exactly.
func TestPythonConsumerCountsExactly(t *testing.T) {
	addr := testenv.KafkaAddr(t)
	redisURL := testenv.RedisURL(t)
	rdb := testenv.Redis(t)
	py, err := exec.LookPath("python3")
	if err == nil {
		err = exec.Command(py, "-c", "import kafka, redis").Run()
	}
	if err != nil {
		if testenv.InCI() {
			t.Fatalf("CI=true: python3 with kafka-python and redis (tools/python/requirements.txt) is needed: %v", err)
		}
		t.Skipf("python3 with kafka-python and redis is not available: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	topic := testenv.Topic(t, addr, 3)
	w, err := gen.NewKafkaWriter(gen.KafkaConfig{Kafka: brokers.Kafka{Brokers: []string{addr}, Topic: topic}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 600
	truth, err := gen.WriteKafka(ctx, w, gen.New(gen.DefaultProfile(), 3), n, 0, nil)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{o: options{kafka: addr}}
	ends, err := bench.PartitionEnds(ctx, h.o.kafka, topic)
	if err != nil {
		t.Fatal(err)
	}
	hash := testenv.Prefix(t, rdb) + "counts"
	cmd := exec.CommandContext(ctx, py, pythonArgs(addr, topic, hash, redisURL, hash, endsArg(ends))...)
	cmd.Dir = "../../../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("consumer.py: %v\n%s", err, stderrOf(err))
	}
	if got := strings.TrimSpace(string(out)); got != strconv.Itoa(n) {
		t.Errorf("consumer.py printed %q, want %d", got, n)
	}
	got, err := rdb.HGetAll(ctx, hash).Result()
	if err != nil {
		t.Fatal(err)
	}
	counted := map[string]int64{}
	for k, v := range got {
		counted[k], _ = strconv.ParseInt(v, 10, 64)
	}
	if c := bench.Compare("per domain", truth.PerDomain, counted); c.Over+c.Under > 0 || c.Counted != n || len(truth.PerDomain) < 2 {
		t.Errorf("counts %s: expected %d, counted %d over %d domains", c, c.Expected, c.Counted, len(truth.PerDomain))
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
