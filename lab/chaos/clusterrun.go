package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/aggregate"
	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/stack"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// serviceNames are the run's pipeline processes, the emulator and ingest first.
func (r *runner) serviceNames() []string {
	if r.clustered() {
		return []string{"emulator", "ingest", "bridge", "aggregate1", "aggregate2", "aggregate3"}
	}
	return []string{"emulator", "ingest", "bridge", "aggregate"}
}

// stagePorts are the health ports of ingest, the bridge and every aggregate.
func (r *runner) stagePorts() map[string]int {
	pt := r.b.ports
	out := map[string]int{"ingest": pt.Ingest, "bridge": pt.Bridge}
	if !r.clustered() {
		out["aggregate"] = pt.Aggregate
		return out
	}
	for k := 1; k <= stack.ClusterSize; k++ {
		out["aggregate"+strconv.Itoa(k)] = r.b.sc.ClusterPorts.AggregateHealth(k)
	}
	return out
}

// sampleRSS adds up the resident memory of every running process of the run
// and keeps the peak in the report.
func (r *runner) sampleRSS() {
	r.mu.Lock()
	defer r.mu.Unlock()
	var total int64
	for _, p := range r.procs {
		if up, _ := p.Running(); up {
			total += rssKB(p.Pid())
		}
	}
	if mb := total / 1024; mb > r.rep.PeakRSSMB {
		r.rep.PeakRSSMB = mb
	}
}

// rssKB returns VmRSS of a process in KiB (0 when unknown).
func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// clusterRedis returns a Redis Cluster client over every node of the cluster.
func (r *runner) clusterRedis() (redis.UniversalClient, error) {
	return brokers.Redis{URL: r.b.redisURL()}.Universal()
}

// clusterCounts reads the domain -> count answer of the sharded projection:
// the sum of the shards' all-time domain hashes, as the API reads it.
func (r *runner) clusterCounts(ctx context.Context) (map[string]int64, error) {
	c, err := r.clusterRedis()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	h, err := projection.NewReader(c, r.cfg.Hash).Head(ctx, "", true)
	if err != nil {
		return nil, err
	}
	if h.Shards != stack.ClusterSize {
		return nil, fmt.Errorf("the projection has %d shards, want %d", h.Shards, stack.ClusterSize)
	}
	out := make(map[string]int64, len(h.Legacy))
	for d, v := range h.Legacy {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("count of %s: %q: %w", d, v, err)
		}
		out[d] = n
	}
	return out, nil
}

// shardState is one shard's position at the end of a run.
type shardState struct {
	watermark, ackFloor uint64
	pending, ackPending uint64
	mirrorLast          uint64
	// next is the sequence of the shard's first message after its watermark
	// (0: none).
	next uint64
}

// shardStates reads each shard's watermark in Redis and its consumer on the
// shard mirror.
func (r *runner) shardStates(ctx context.Context, js jetstream.JetStream, c redis.UniversalClient) ([]shardState, error) {
	mirror, err := js.Stream(ctx, aggregate.MirrorName(wire.DefaultStream, stack.ClusterSize))
	if err != nil {
		return nil, fmt.Errorf("shard mirror: %w", err)
	}
	mi, err := mirror.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("shard mirror: %w", err)
	}
	out := make([]shardState, stack.ClusterSize)
	for k := range out {
		name := aggregate.ShardConsumer(consumer, k, stack.ClusterSize)
		cons, err := mirror.Consumer(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", name, err)
		}
		ci, err := cons.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", name, err)
		}
		rd := projection.NewShardReader(c, r.cfg.Hash, k)
		ns, err := rd.Current(ctx)
		if err != nil {
			return nil, err
		}
		wm, err := rd.Watermark(ctx, ns, name)
		if err != nil {
			return nil, err
		}
		out[k] = shardState{watermark: wm, ackFloor: ci.AckFloor.Stream, pending: ci.NumPending,
			ackPending: uint64(ci.NumAckPending), mirrorLast: mi.State.LastSeq}
		// The ack floor of a shard's consumer may pass other shards' messages
		// after the shard's last one: what counts is the shard's next message.
		next, err := mirror.GetMsg(ctx, wm+1, jetstream.WithGetMsgSubject(aggregate.ShardFilter(k)))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return nil, fmt.Errorf("shard %d: message after %d: %w", k, wm, err)
		default:
			out[k].next = next.Sequence
		}
	}
	return out, nil
}

// drainCluster waits until the bridge has no Kafka lag, the stream stopped
// growing, the shard mirror holds all of it, and every shard's consumer has
// nothing pending and the shard's watermark at its last message.
func (r *runner) drainCluster(ctx context.Context) error {
	nc, err := nats.Connect(r.b.natsURL(), nats.Name("chaos"), nats.Timeout(3*time.Second))
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	c, err := r.clusterRedis()
	if err != nil {
		return err
	}
	defer c.Close()
	var prev uint64
	var stable int
	err = r.pollDrain(ctx, func() error { return r.drainedCluster(ctx, js, c, &prev, &stable) })
	if err != nil {
		return err
	}
	r.say("drained: bridge lag 0, stream last sequence %d, every shard's watermark at its last message", r.rep.StreamLastSeq)
	return nil
}

// drainedCluster is one check of drainCluster.
func (r *runner) drainedCluster(ctx context.Context, js jetstream.JetStream, c redis.UniversalClient, prev *uint64, stable *int) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := scrape(cctx, r.b.ports.Bridge)
	if err != nil {
		return fmt.Errorf("bridge metrics: %w", err)
	}
	lag := m["wikiflow_bridge_kafka_lag_records"]
	last, err := r.streamLastSeq(cctx)
	if err != nil {
		return err
	}
	if last == *prev && lag == 0 {
		*stable++
	} else {
		*stable = 0
	}
	*prev = last
	if lag != 0 {
		return fmt.Errorf("bridge lag %d", lag)
	}
	// The bridge's lag gauge keeps its last value while it cannot read Kafka's
	// offsets: the stream must also hold as many messages as distinct events.
	if want := r.rep.RecordingEvents + r.rep.GeneratedEvents; int64(last) < want {
		return fmt.Errorf("the stream holds %d messages of the %d distinct events (bridge lag gauge %d)", last, want, lag)
	}
	if *stable < 3 {
		return fmt.Errorf("stream at %d, waiting for it to stay put", last)
	}
	states, err := r.shardStates(cctx, js, c)
	if err != nil {
		return err
	}
	r.rep.StreamLastSeq, r.rep.Watermark = last, 0
	for k, s := range states {
		r.rep.Watermark = max(r.rep.Watermark, s.watermark)
		switch {
		case s.mirrorLast != last:
			return fmt.Errorf("shard mirror at %d, stream at %d", s.mirrorLast, last)
		case s.pending > 0 || s.ackPending > 0:
			return fmt.Errorf("shard %d: %d pending, %d unacknowledged", k, s.pending, s.ackPending)
		case s.next != 0 && s.next <= s.ackFloor:
			return fmt.Errorf("shard %d: message %d acknowledged but not counted (watermark %d, ack floor %d)", k, s.next, s.watermark, s.ackFloor)
		case s.next != 0:
			return fmt.Errorf("shard %d: message %d after the watermark %d not counted yet", k, s.next, s.watermark)
		}
	}
	return nil
}

// floorReplayLog begins the aggregate's warning that its watermark in Redis is
// behind the consumer's ack floor (Redis lost applies) and that it replays the
// lost range.
const floorReplayLog = "watermark in Redis is behind the consumer's ack floor"

// countLines returns how many lines of the file at path contain s.
func countLines(path, s string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), s)
}
