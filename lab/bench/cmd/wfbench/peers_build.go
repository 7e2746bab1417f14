package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// peersCache is where the bench builds the peers' programs (not committed).
const peersCache = ".wikiflow/cache/peers"

// peerTools are the built programs of the peers; an empty path comes with the
// reason it is missing.
type peerTools struct {
	python, pythonMissing    string
	benthos, benthosMissing  string
	kstreamsCP, kstreamsMiss string
	java                     string
	floor, floorMissing      string
}

// build runs a command in dir at the lowest priority, with its output in the log
// folder; the error carries the output's tail.
func (h *harness) build(ctx context.Context, name, dir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "nice", append([]string{"-n", "19"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	h.logf("building %s: %s", name, strings.Join(args, " "))
	out, err := cmd.CombinedOutput()
	_ = os.WriteFile(filepath.Join(h.tmp, "build-"+name+".log"), out, 0o644)
	if err != nil {
		s := strings.TrimSpace(string(out))
		if len(s) > 300 {
			s = "…" + s[len(s)-300:]
		}
		return fmt.Errorf("%v: %s", err, s)
	}
	return nil
}

// peerTools builds or finds every peer's program; what cannot be had becomes a
// reason, not an error.
func (h *harness) peerTools(ctx context.Context) peerTools {
	var t peerTools
	root, _ := os.Getwd()
	cache := filepath.Join(root, peersCache)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.floorMissing, t.benthosMissing = err.Error(), err.Error()
	}
	skipped := "not among --peer-systems"
	// The floors, from this module.
	t.floor = filepath.Join(cache, "floor")
	if !h.o.wantPeer("floor_nats", "floor_kafka", "floor_redis") {
		t.floor, t.floorMissing = "", skipped
	} else if err := h.build(ctx, "floor", root, nil, "go", "build", "-p", "1", "-o", t.floor, "./lab/bench/peers/floor"); err != nil {
		t.floor, t.floorMissing = "", "the floor program did not build: "+firstLine(err)
	}
	// Python: kafka-python and redis-py (tools/python/requirements.txt).
	if !h.o.wantPeer("python") {
		t.pythonMissing = skipped
	} else if py, err := exec.LookPath("python3"); err != nil {
		t.pythonMissing = "python3 is not installed"
	} else if out, err := exec.CommandContext(ctx, py, "-c", "import kafka, redis").CombinedOutput(); err != nil {
		t.pythonMissing = "python modules missing (pip install -r tools/python/requirements.txt): " + lastLine(string(out))
	} else {
		t.python = py
	}
	// Benthos: its own module, outside go.work.
	t.benthos = filepath.Join(cache, "benthos")
	if !h.o.wantPeer("benthos", "benthos_t8") {
		t.benthos, t.benthosMissing = "", skipped
	} else if err := h.build(ctx, "benthos", filepath.Join(root, "lab/bench/peers/benthos"), []string{"GOWORK=off"},
		"go", "build", "-p", "1", "-ldflags=-checklinkname=0", "-o", t.benthos, "."); err != nil {
		t.benthos, t.benthosMissing = "", "Benthos did not build: "+firstLine(err)
	}
	// Kafka Streams: Maven and a JVM.
	t.kstreamsMiss = skipped
	if h.o.wantPeer("kstreams") {
		t.kstreamsMiss = h.buildKStreams(ctx, root, &t)
	}
	return t
}

// buildKStreams packages the Kafka Streams job and returns why it cannot run ("" when it can).
func (h *harness) buildKStreams(ctx context.Context, root string, t *peerTools) string {
	java, err := exec.LookPath("java")
	if err != nil {
		return "java is not installed"
	}
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return "Maven (mvn) is not installed"
	}
	dir := filepath.Join(root, "lab/bench/peers/kstreams")
	if err := h.build(ctx, "kstreams", dir, nil, mvn, "-q", "-B", "-T", "1", "package"); err != nil {
		return "the Kafka Streams job did not build (Maven offline?): " + firstLine(err)
	}
	cp, err := os.ReadFile(filepath.Join(dir, "target", "classpath.txt"))
	if err != nil {
		return "the Kafka Streams job's class path is missing: " + err.Error()
	}
	jar := filepath.Join(dir, "target", "kstreams-peer-1.0.jar")
	if _, err := os.Stat(jar); err != nil {
		return "the Kafka Streams job's jar is missing: " + err.Error()
	}
	t.java, t.kstreamsCP = java, jar+string(os.PathListSeparator)+strings.TrimSpace(string(cp))
	return ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
