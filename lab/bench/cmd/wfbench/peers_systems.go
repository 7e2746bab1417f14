package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/lab/bench"
)

// peerSystems returns the systems of the comparison in the order of a round.
func (h *harness) peerSystems(ctx context.Context, b *peerBacklog) []peerSystem {
	t := h.peerTools(ctx)
	pids := h.findBrokers(ctx)
	floorMissing := func(s peerSystem) peerSystem {
		if t.floor == "" {
			s.run, s.missing = nil, t.floorMissing
		}
		return s
	}
	// The NATS floor reads the stream wikiflow's bridge wrote in the same round.
	var lastNATS *natsEnv
	var lastStream string
	out := []peerSystem{
		{key: bench.PeerWikiflow, name: "wikiflow (bridge + aggregate, whole projection)", kind: bench.PeerWikiflow, guarantee: "exactly once",
			run: func(ctx context.Context, r int) (peerRun, error) {
				if lastNATS != nil {
					lastNATS.close()
				}
				var run peerRun
				var err error
				run, lastNATS, lastStream, err = h.runWikiflow(ctx, h.o.bin, "pw", b, pids, r)
				return run, err
			}},
		floorMissing(peerSystem{key: "floor_nats", name: "floor: JetStream stream read (nats.go, ordered consumer)", kind: bench.PeerFloor,
			run: func(ctx context.Context, r int) (peerRun, error) {
				if lastNATS == nil {
					return peerRun{}, fmt.Errorf("no stream: wikiflow's run did not complete")
				}
				defer func() { lastNATS.close(); lastNATS = nil }()
				p := pids
				p.nats = lastNATS.p.cmd.Process.Pid
				return h.runFloor(ctx, t.floor, "nats", b, p, r, "-nats-url", lastNATS.url, "-stream", lastStream)
			}}),
		{key: "python", name: "Python consumer (kafka-python + redis-py, HINCRBY per message)", kind: bench.PeerSystem, guarantee: "at least once",
			missing: t.pythonMissing, run: func(ctx context.Context, r int) (peerRun, error) { return h.runPython(ctx, t.python, b, pids, r) }},
		{key: "benthos", name: "Benthos v4.27 (kafka → redis HINCRBY, default threads)", kind: bench.PeerSystem, guarantee: "at least once",
			missing: t.benthosMissing, run: func(ctx context.Context, r int) (peerRun, error) { return h.runBenthos(ctx, t.benthos, "", b, pids, r) }},
		{key: "benthos_t8", name: "Benthos v4.27 (pipeline.threads: 8)", kind: bench.PeerSystem, guarantee: "at least once",
			missing: t.benthosMissing, run: func(ctx context.Context, r int) (peerRun, error) {
				return h.runBenthos(ctx, t.benthos, "8", b, pids, r)
			}},
		{key: "kstreams", name: "Kafka Streams 4.4 (exactly_once_v2, per domain + 1-minute windows per wiki and type)", kind: bench.PeerSystem, guarantee: "exactly once",
			missing: t.kstreamsMiss, run: func(ctx context.Context, r int) (peerRun, error) { return h.runKStreams(ctx, t, b, pids, r) }},
		floorMissing(peerSystem{key: bench.FloorKafkaKey, name: "floor: Kafka topic read (kafka-go, one reader per partition)", kind: bench.PeerFloor,
			run: func(ctx context.Context, r int) (peerRun, error) {
				return h.runFloor(ctx, t.floor, "kafka", b, pids, r)
			}}),
		floorMissing(peerSystem{key: "floor_redis", name: "floor: pipelined HINCRBY into Redis (go-redis, 1,000 per round trip)", kind: bench.PeerFloor,
			run: func(ctx context.Context, r int) (peerRun, error) {
				return h.runFloor(ctx, t.floor, "redis", b, pids, r)
			}}),
	}
	if h.o.abBin != "" {
		// The other binary runs right after the first in every round, so that both
		// meet the same machine; the NATS floor then reads its stream.
		ab := peerSystem{key: bench.PeerWikiflowB, name: "wikiflow, binary B (" + filepath.Base(h.o.abBin) + ")", kind: bench.PeerSystem,
			guarantee: "exactly once", run: func(ctx context.Context, r int) (peerRun, error) {
				if lastNATS != nil {
					lastNATS.close()
				}
				var run peerRun
				var err error
				run, lastNATS, lastStream, err = h.runWikiflow(ctx, h.o.abBin, "pb", b, pids, r)
				return run, err
			}}
		out = append(out[:1], append([]peerSystem{ab}, out[1:]...)...)
	}
	out = h.o.pickPeers(out)
	for i := range out {
		if out[i].missing != "" {
			out[i].run = nil
			h.note("peers: %s not measured: %s", out[i].name, out[i].missing)
		}
	}
	return out
}

// checkDomains compares a Redis hash of domain -> count with the truth.
func (h *harness) checkDomains(ctx context.Context, b *peerBacklog, key string) (bench.CountCheck, error) {
	got, err := h.hashCounts(ctx, key)
	if err != nil {
		return bench.CountCheck{}, err
	}
	return bench.Compare("per domain", b.truth.PerDomain, got), nil
}

// runWikiflow runs bridge and aggregate at once on the backlog, with a private
// nats-server; it returns the server and stream for the NATS floor.
func (h *harness) runWikiflow(ctx context.Context, bin, prefix string, b *peerBacklog, pids brokerPIDs, r int) (peerRun, *natsEnv, string, error) {
	var run peerRun
	tag := prefix + strconv.Itoa(r)
	pt, err := ports(2)
	if err != nil {
		return run, nil, "", err
	}
	env, err := h.startNATS(ctx, tag)
	if err != nil {
		return run, env, "", err
	}
	pids.nats = env.p.cmd.Process.Pid
	stream, base := h.stream(tag), h.base(tag)
	mark := markBrokers(pids)
	bp, err := h.start("bridge-"+tag, bin, h.bridgeArgs(env, pt[0], b.topic, stream)...)
	if err != nil {
		return run, env, stream, err
	}
	defer bp.stop(grace)
	if err := waitHealthy(ctx, pt[0], bp, healthMax); err != nil {
		return run, env, stream, err
	}
	if _, err := watch(ctx, 20*time.Millisecond, healthMax, 1, func() (int64, error) {
		_, err := env.js.Stream(ctx, stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return 0, nil
		}
		return 1, err
	}, bp); err != nil {
		return run, env, stream, fmt.Errorf("stream %s: %w", stream, err)
	}
	ap, err := h.start("aggregate-"+tag, bin, h.aggregateArgs(env, pt[1], stream, base)...)
	if err != nil {
		return run, env, stream, err
	}
	defer ap.stop(grace)
	meta := "{" + base + "}:ns:live:meta"
	run.pr, err = peerWatch(ctx, b.n, func() (int64, error) { return h.redisInt(ctx, meta, "events") }, bp, ap)
	run.brokers = mark.since()
	run.usageOf(bp, ap)
	if err != nil {
		return run, env, stream, err
	}
	h.noteApplies(tag, pt[1])
	c, err := h.checkDomains(ctx, b, base)
	run.checks = append(run.checks, c)
	return run, env, stream, err
}

// runPython runs the Python consumer until it stops by itself at the end offsets.
func (h *harness) runPython(ctx context.Context, py string, b *peerBacklog, pids brokerPIDs, r int) (peerRun, error) {
	var run peerRun
	tag := "pp" + strconv.Itoa(r)
	key := h.base(tag)
	mark := markBrokers(pids)
	p, err := h.start("python-"+tag, py, pythonArgs(h.o.kafka, b.topic, key, h.o.redisURL, key, endsArg(b.ends))...)
	if err != nil {
		return run, err
	}
	defer p.stop(grace)
	run.pr, err = peerWatch(ctx, b.n, func() (int64, error) { return h.hashSum(ctx, key) })
	run.brokers = mark.since()
	if err != nil {
		return run, err
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		run.note = "did not stop by itself at the end offsets"
	}
	run.usageOf(p)
	c, err := h.checkDomains(ctx, b, key)
	run.checks = append(run.checks, c)
	return run, err
}

// pythonArgs is the command line of the Python consumer (after python3).
func pythonArgs(brokers, topic, group, redisURL, hash, ends string) []string {
	return []string{filepath.Join("lab", "bench", "peers", "python", "consumer.py"), "--brokers", brokers, "--topic", topic,
		"--group", group, "--redis-url", redisURL, "--hash", hash, "--end", ends, "--idle", "15"}
}

// runBenthos runs Benthos with lab/bench/peers/benthos/config.yaml until the counts
// reach the backlog, then stops it.
func (h *harness) runBenthos(ctx context.Context, bin, threads string, b *peerBacklog, pids brokerPIDs, r int) (peerRun, error) {
	var run peerRun
	tag := "pb" + threads + "r" + strconv.Itoa(r)
	key := h.base(tag)
	port, err := bench.FreePort()
	if err != nil {
		return run, err
	}
	env := []string{"KAFKA_BROKERS=" + h.o.kafka, "KAFKA_TOPIC=" + b.topic, "KAFKA_GROUP=" + key, "REDIS_URL=" + h.o.redisURL,
		"REDIS_HASH=" + key, "BENTHOS_HTTP_ADDR=" + addr(port)}
	if threads != "" {
		env = append(env, "BENTHOS_THREADS="+threads)
	}
	args := append(env, bin, "-c", filepath.Join("lab", "bench", "peers", "benthos", "config.yaml"))
	mark := markBrokers(pids)
	// env(1) execs Benthos in its own place: the process measured is Benthos.
	p, err := h.start("benthos-"+tag, "/usr/bin/env", args...)
	if err != nil {
		return run, err
	}
	defer p.stop(grace)
	run.pr, err = peerWatch(ctx, b.n, func() (int64, error) { return h.hashSum(ctx, key) }, p)
	run.brokers = mark.since()
	run.usageOf(p)
	if err != nil {
		return run, err
	}
	// Let late duplicates land before the counts are read.
	time.Sleep(time.Second)
	c, err := h.checkDomains(ctx, b, key)
	run.checks = append(run.checks, c)
	return run, err
}

// runFloor runs the floor program in one mode and takes its own timing.
func (h *harness) runFloor(ctx context.Context, bin, mode string, b *peerBacklog, pids brokerPIDs, r int, extra ...string) (peerRun, error) {
	var run peerRun
	tag := "pf" + mode + strconv.Itoa(r)
	key := h.base(tag)
	args := append([]string{"-mode", mode, "-brokers", h.o.kafka, "-topic", b.topic, "-redis-url", h.o.redisURL, "-hash", key,
		"-n", strconv.FormatInt(b.n, 10)}, extra...)
	mark := markBrokers(pids)
	p, err := h.start("floor-"+tag, bin, args...)
	if err != nil {
		return run, err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.stop(grace)
		return run, ctx.Err()
	}
	run.brokers = mark.since()
	if p.err != nil {
		return run, fmt.Errorf("floor %s: %v\n%s", mode, p.err, p.tail())
	}
	fr, err := readFloorResult(p.log)
	if err != nil {
		return run, err
	}
	t0 := time.Now()
	run.pr = progress{first: t0, end: t0.Add(time.Duration(fr.Seconds * float64(time.Second))), endV: fr.Events}
	run.cpu, run.rss = fr.CPUSeconds, fr.MaxRSS
	if mode == "redis" {
		// Kafka worked only for the untimed read of the domains.
		run.brokers.kafka = math.NaN()
		c, err := h.checkDomains(ctx, b, key)
		run.checks = append(run.checks, c)
		return run, err
	}
	return run, nil
}

// floorResult is what the floor program prints.
type floorResult struct {
	Events     int64   `json:"events"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	MaxRSS     int64   `json:"max_rss_bytes"`
}

// readFloorResult takes the floor program's JSON line from its log.
func readFloorResult(log string) (floorResult, error) {
	var fr floorResult
	b, err := os.ReadFile(log)
	if err != nil {
		return fr, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "{") {
			if err := json.Unmarshal([]byte(lines[i]), &fr); err != nil {
				return fr, fmt.Errorf("floor result: %w", err)
			}
			return fr, nil
		}
	}
	return fr, fmt.Errorf("floor result: no JSON line in %s", log)
}

// wantPeer reports whether --peer-systems names any of keys (or is empty).
func (o options) wantPeer(keys ...string) bool {
	if o.peerSystems == "" {
		return true
	}
	for _, k := range strings.Split(o.peerSystems, ",") {
		if slices.Contains(keys, strings.TrimSpace(k)) {
			return true
		}
	}
	return false
}

// pickPeers keeps the systems named by --peer-systems (all when it is empty),
// in their order.
func (o options) pickPeers(all []peerSystem) []peerSystem {
	if o.peerSystems == "" {
		return all
	}
	want := map[string]bool{}
	for _, k := range strings.Split(o.peerSystems, ",") {
		want[strings.TrimSpace(k)] = true
	}
	var out []peerSystem
	for _, s := range all {
		if want[s.key] {
			out = append(out, s)
		}
	}
	return out
}

// noteApplies notes how many events the aggregate applied per Redis call: its
// batches fill up only when it reads faster than the bridge writes.
func (h *harness) noteApplies(tag string, port int) {
	ev, err1 := metric(port, "wikiflow_aggregate_events_applied_total")
	n, err2 := metric(port, "wikiflow_aggregate_batches_applied_total")
	if err := errors.Join(err1, err2); err != nil || n == 0 {
		h.note("peers %s: events per apply unknown: %v", tag, err)
		return
	}
	h.note("peers %s: %.0f events in %.0f applies, %.0f per apply", tag, ev, n, ev/n)
}
