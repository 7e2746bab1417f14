package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/stack"
)

// KindLeader kills the current leader of Target with SIGKILL and restarts it
// after Delay (Topology cluster): LeaderNATS, LeaderMirror, LeaderPartitions,
// LeaderController or LeaderRedis.
const KindLeader = "leader"

// The leaders a KindLeader fault kills.
const (
	// LeaderNATS is the nats-server leading the stream.
	LeaderNATS = "nats-stream"
	// LeaderMirror is the nats-server leading the aggregate's shard mirror.
	LeaderMirror = "nats-mirror"
	// LeaderPartitions is the Kafka node leading the most partitions of the topic.
	LeaderPartitions = "kafka-partitions"
	// LeaderController is the active KRaft controller.
	LeaderController = "kafka-controller"
	// LeaderRedis is the Redis master of one aggregate shard's slot (shard i mod 3
	// for the i-th such fault); its replica takes over before it is restarted,
	// every other time after missing the master's last writes.
	LeaderRedis = "redis-master"
)

// leaderNames describe the leaders.
var leaderNames = map[string]string{
	LeaderNATS:       "JetStream stream leader",
	LeaderMirror:     "shard mirror's stream leader",
	LeaderPartitions: "Kafka node leading the most partitions",
	LeaderController: "active KRaft controller",
	LeaderRedis:      "Redis master of a shard",
}

// healTimeout bounds the wait for a cluster to be whole again after a fault.
const healTimeout = 3 * time.Minute

// clusterSchedule is Schedule for Topology cluster: ingest killed while it reads
// the recording, the bridge and each aggregate shard over both phases, and the
// leader faults of each broker kind spread evenly over both phases (one kind's
// faults run one after the other; kinds overlap): LeaderKills NATS faults (the
// stream's leader and the mirror's in turn), LeaderKills of each Kafka leader
// (partitions and controller in turn) and LeaderKills Redis masters.
func clusterSchedule(cfg Config) []Action {
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0xc1a5))
	p1, p2 := Phases(cfg)
	window := p1 + p2
	between := func(from, to time.Duration) time.Duration {
		if to <= from {
			return from
		}
		return from + time.Duration(rng.Int64N(int64(to-from)))
	}
	delay := func() time.Duration {
		if cfg.MaxRestartDelay <= 0 {
			return 0
		}
		return between(100*time.Millisecond, cfg.MaxRestartDelay)
	}
	var out []Action
	for i := 0; i < cfg.Kills; i++ {
		out = append(out, Action{At: between(p1/10, p1*9/10), Kind: KindKill, Target: "ingest", Delay: delay()})
	}
	for _, t := range []string{"bridge", "aggregate1", "aggregate2", "aggregate3"} {
		for i := 0; i < cfg.Kills; i++ {
			out = append(out, Action{At: between(time.Second, window), Kind: KindKill, Target: t, Delay: delay()})
		}
	}
	spread := func(n int, targets ...string) {
		for i := 0; i < n; i++ {
			from, to := window*time.Duration(i)/time.Duration(n), window*time.Duration(i+1)/time.Duration(n)
			out = append(out, Action{At: between(from+(to-from)/10, to), Kind: KindLeader, Target: targets[i%len(targets)], Delay: delay()})
		}
	}
	spread(cfg.LeaderKills, LeaderNATS, LeaderMirror)
	spread(2*cfg.LeaderKills, LeaderPartitions, LeaderController)
	spread(cfg.LeaderKills, LeaderRedis)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// leaderFault performs one KindLeader fault; faults of one broker kind run one
// at a time, each once the previous one's cluster is whole again.
func (r *runner) leaderFault(ctx context.Context, a Action) error {
	var err error
	var what string
	t := time.Now()
	switch a.Target {
	case LeaderNATS, LeaderMirror:
		r.natsMu.Lock()
		defer r.natsMu.Unlock()
		what, err = r.natsFault(ctx, a)
	case LeaderPartitions, LeaderController:
		r.kafkaMu.Lock()
		defer r.kafkaMu.Unlock()
		what, err = r.kafkaFault(ctx, a)
	default:
		r.redisMu.Lock()
		defer r.redisMu.Unlock()
		what, err = r.redisFault(ctx, a)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", a, err)
	}
	what += fmt.Sprintf("; whole again after %s", time.Since(t).Round(100*time.Millisecond))
	r.mu.Lock()
	r.rep.LeaderKills[a.Target]++
	r.rep.BrokerRestarts = append(r.rep.BrokerRestarts, what)
	r.mu.Unlock()
	r.say("%s", what)
	return nil
}

// bounce kills a broker of the cluster, restarts it after delay and waits
// until it is healthy.
func (r *runner) bounce(ctx context.Context, name string, delay time.Duration) error {
	r.b.nodes[name].Kill()
	select {
	case <-time.After(delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	return r.b.restartNode(ctx, name)
}

// natsFault kills the leader of the stream (or of the shard mirror), restarts
// it and waits until both streams have three current replicas again.
func (r *runner) natsFault(ctx context.Context, a Action) (string, error) {
	stream := streams()[0]
	if a.Target == LeaderMirror {
		stream = streams()[1]
	}
	name, err := r.natsLeader(ctx, stream)
	if err != nil {
		return "", err
	}
	r.say("SIGKILL %s, the leader of stream %s; restart after %s", name, stream, a.Delay.Round(time.Millisecond))
	if err := r.bounce(ctx, name, a.Delay); err != nil {
		return "", err
	}
	if err := poll(ctx, healTimeout, 500*time.Millisecond, func() error { return r.streamsCurrent(ctx) }); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: SIGKILL %s (leader of %s), restarted after %s", a.Target, name, stream, a.Delay.Round(time.Millisecond)), nil
}

// kafkaFault kills the node leading the most partitions (or the active
// controller), restarts it and waits until every partition has a leader that
// answers and three replicas in sync again.
func (r *runner) kafkaFault(ctx context.Context, a Action) (string, error) {
	var id, led int
	var err error
	role := "controller"
	if a.Target == LeaderPartitions {
		id, led, err = r.partitionLeader(ctx)
		role = fmt.Sprintf("leader of %d partitions", led)
	} else {
		id, err = r.kafkaController(ctx)
	}
	if err != nil {
		return "", err
	}
	name := "kafka" + strconv.Itoa(id)
	r.say("SIGKILL %s (%s); restart after %s", name, role, a.Delay.Round(time.Millisecond))
	r.b.nodes[name].Kill()
	restarted := make(chan error, 1)
	go func() {
		select {
		case <-time.After(a.Delay):
			restarted <- r.b.restartNode(ctx, name)
		case <-ctx.Done():
			restarted <- ctx.Err()
		}
	}()
	err = poll(ctx, healTimeout, 500*time.Millisecond, func() error { return r.partitionsLed(ctx, id, false) })
	if rerr := <-restarted; rerr != nil || err != nil {
		return "", fmt.Errorf("%s: %w", name, errors.Join(rerr, err))
	}
	if err := poll(ctx, healTimeout, time.Second, func() error { return r.partitionsLed(ctx, 0, true) }); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: SIGKILL %s (%s), restarted after %s", a.Target, name, role, a.Delay.Round(time.Millisecond)), nil
}

// redisFault kills the master of one aggregate shard's slot, waits until its
// replica has taken over, restarts it after the delay and waits until it has
// rejoined as a replica and the cluster serves every slot. Every other time the
// replica is first frozen and cut off until the shard's watermark has moved, so
// that the failover loses the master's last applies and the aggregate must find
// its watermark behind the consumer's ack floor and count the lost range again.
func (r *runner) redisFault(ctx context.Context, a Action) (string, error) {
	r.mu.Lock()
	i := r.rep.LeaderKills[LeaderRedis]
	r.mu.Unlock()
	shard, lag := i%stack.ClusterSize, i%2 == 1
	key := projection.New(r.cfg.Hash, "").InShard(shard).Pointer()
	addr, replica, err := r.slotMaster(ctx, key, "")
	if err != nil {
		return "", err
	}
	name, err := r.redisNode(addr)
	if err != nil {
		return "", err
	}
	how := ""
	resume := func() {}
	if lag && replica != "" {
		r.say("freezing %s, the replica of %s, and cutting its link until shard %d's watermark moves", replica, name, shard)
		var lost uint64
		if resume, lost, err = r.cutReplica(ctx, addr, replica, shard); err != nil {
			return "", err
		}
		how = fmt.Sprintf(" after its replica had been cut off while shard %d's watermark moved by %d", shard, lost)
		r.mu.Lock()
		r.rep.FailoverLost += int64(lost)
		r.mu.Unlock()
	}
	r.say("SIGKILL %s, the master of shard %d's slot%s; restart %s after its replica took over", name, shard, how, a.Delay.Round(time.Millisecond))
	r.b.nodes[name].Kill()
	resume()
	t := time.Now()
	var next string
	err = poll(ctx, healTimeout, 250*time.Millisecond, func() error {
		m, _, err := r.slotMaster(ctx, key, addr)
		if err == nil && m == addr {
			err = fmt.Errorf("%s still serves the slot", addr)
		}
		next = m
		return err
	})
	if err != nil {
		return "", err
	}
	took := time.Since(t).Round(100 * time.Millisecond)
	select {
	case <-time.After(a.Delay):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if err := r.b.restartNode(ctx, name); err != nil {
		return "", err
	}
	if err := poll(ctx, healTimeout, 500*time.Millisecond, func() error { return r.redisHealthy(ctx, addr) }); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: SIGKILL %s (master of shard %d)%s, %s took over after %s, %s restarted %s later and rejoined as its replica",
		a.Target, name, shard, how, next, took, name, a.Delay.Round(time.Millisecond)), nil
}
