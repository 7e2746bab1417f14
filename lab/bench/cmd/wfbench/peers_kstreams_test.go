package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

// TestKafkaStreamsPeerCountsExactly builds the Kafka Streams job with Maven and
// runs it the way the bench does on a small generated backlog in the real Kafka:
// both of its output tables must hold the generator's truth exactly.
func TestKafkaStreamsPeerCountsExactly(t *testing.T) {
	addr := testenv.KafkaAddr(t)
	redisURL := testenv.RedisURL(t)
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testenv.InCI() {
				t.Fatalf("CI=true: %s is needed for the Kafka Streams peer: %v", tool, err)
			}
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	// Under a loaded machine (the whole suite) the job's start and its first
	// transactions can pause for longer than the bench allows.
	defer func(d time.Duration) { peerStall = d }(peerStall)
	peerStall = 90 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	root, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "wikiflow")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/wikiflow")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	h, err := newHarness(ctx, options{bin: bin, kafka: addr, redisURL: redisURL, stageN: 3000, reps: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.cleanup()
	var tools peerTools
	if why := h.buildKStreams(ctx, root, &tools); why != "" {
		t.Fatalf("Kafka Streams job: %s", why)
	}
	b, err := h.peerBacklog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	run, err := h.runKStreams(ctx, tools, b, brokerPIDs{}, 1)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(run.checks) != 2 {
		t.Fatalf("checks = %+v, want per domain and per minute", run.checks)
	}
	for _, c := range run.checks {
		if c.Over+c.Under > 0 || c.Counted != b.n {
			t.Errorf("%s: %s (expected %d, counted %d)", c.What, c, c.Expected, c.Counted)
		}
	}
}
