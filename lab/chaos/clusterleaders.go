package chaos

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wikiflow/wikiflow/aggregate"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/stack"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// The leaders of the cluster, found as a client sees them: the JetStream
// stream's Raft leader from its stream info, the Kafka partitions' leaders from
// the topic's metadata, the active KRaft controller from DescribeQuorum (which
// every broker answers for the metadata quorum), a Redis master from CLUSTER
// NODES. Each broker of the cluster is a process of the run, named kafka<id>,
// nats<n> (server name n<n>) or redis<i> (port ClusterPorts.Redis(i)).

// streams are the stream and its shard mirror.
func streams() []string {
	return []string{wire.DefaultStream, aggregate.MirrorName(wire.DefaultStream, stack.ClusterSize)}
}

// jetStream connects to the cluster's JetStream; the caller closes the connection.
func (r *runner) jetStream() (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(r.b.natsURL(), nats.Name("chaos"), nats.Timeout(3*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// streamCluster returns the cluster info of a stream.
func (r *runner) streamCluster(ctx context.Context, name string) (*jetstream.ClusterInfo, error) {
	nc, js, err := r.jetStream()
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := js.Stream(cctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	info := s.CachedInfo()
	if info.Cluster == nil {
		return nil, fmt.Errorf("stream %s has no cluster info", name)
	}
	return info.Cluster, nil
}

// natsLeader returns the nats process leading stream name.
func (r *runner) natsLeader(ctx context.Context, name string) (string, error) {
	ci, err := r.streamCluster(ctx, name)
	if err != nil {
		return "", err
	}
	n, ok := strings.CutPrefix(ci.Leader, "n")
	if _, err := strconv.Atoi(n); !ok || err != nil {
		return "", fmt.Errorf("stream %s: leader %q is not a server of the cluster", name, ci.Leader)
	}
	return "nats" + n, nil
}

// streamsCurrent returns nil when the stream and its mirror each have a leader
// and two current, online replicas.
func (r *runner) streamsCurrent(ctx context.Context) error {
	for _, name := range streams() {
		ci, err := r.streamCluster(ctx, name)
		if err != nil {
			return err
		}
		if ci.Leader == "" || len(ci.Replicas) != stack.ClusterSize-1 {
			return fmt.Errorf("stream %s: leader %q, %d replicas", name, ci.Leader, len(ci.Replicas))
		}
		for _, p := range ci.Replicas {
			if !p.Current || p.Offline {
				return fmt.Errorf("stream %s: replica %s not current (lag %d)", name, p.Name, p.Lag)
			}
		}
	}
	return nil
}

// partitions returns the topic's partitions as a live broker reports them.
func (r *runner) partitions(ctx context.Context) ([]kafka.Partition, error) {
	d := &kafka.Dialer{Timeout: 3 * time.Second}
	var err error
	for _, addr := range strings.Split(r.b.kafkaAddr(), ",") {
		var c *kafka.Conn
		if c, err = d.DialContext(ctx, "tcp", addr); err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		var ps []kafka.Partition
		ps, err = c.ReadPartitions(wire.DefaultTopic)
		c.Close()
		if err == nil {
			return ps, nil
		}
	}
	return nil, fmt.Errorf("partitions of %s: %w", wire.DefaultTopic, err)
}

// partitionLeader returns the Kafka node leading the most partitions of the
// topic, and how many it leads.
func (r *runner) partitionLeader(ctx context.Context) (int, int, error) {
	ps, err := r.partitions(ctx)
	if err != nil {
		return 0, 0, err
	}
	led := map[int]int{}
	best := 0
	for _, p := range ps {
		led[p.Leader.ID]++
		if led[p.Leader.ID] > led[best] || led[p.Leader.ID] == led[best] && p.Leader.ID < best {
			best = p.Leader.ID
		}
	}
	if best < 1 || best > stack.ClusterSize {
		return 0, 0, fmt.Errorf("no partition of %s has a leader", wire.DefaultTopic)
	}
	return best, led[best], nil
}

// kafkaController returns the node id of the active KRaft controller: the
// leader of the metadata quorum, as DescribeQuorum reports it.
func (r *runner) kafkaController(ctx context.Context) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(r.b.kafkaAddr(), ",")...), kgo.RequestRetries(2))
	if err != nil {
		return 0, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = "__cluster_metadata"
	t.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(cctx, cl)
	if err != nil {
		return 0, fmt.Errorf("describe quorum: %w", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, errors.New("describe quorum: no metadata partition in the answer")
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || resp.ErrorCode != 0 {
		return 0, fmt.Errorf("describe quorum: error codes %d/%d", resp.ErrorCode, p.ErrorCode)
	}
	if p.LeaderID < 1 || int(p.LeaderID) > stack.ClusterSize {
		return 0, fmt.Errorf("describe quorum: leader %d is not a node of the cluster", p.LeaderID)
	}
	return int(p.LeaderID), nil
}

// partitionsLed returns nil when every partition has a leader that answers
// (not the node down, unless it is healthy again) and, with full, three
// replicas in sync.
func (r *runner) partitionsLed(ctx context.Context, down int, full bool) error {
	ps, err := r.partitions(ctx)
	if err != nil {
		return err
	}
	upAgain := down == 0 || r.b.sc.Check(ctx, fmt.Sprintf("kafka%d", down)) == nil
	for _, p := range ps {
		switch {
		case p.Leader.ID < 1 || p.Leader.ID == down && !upAgain:
			return fmt.Errorf("partition %d: leader %d", p.ID, p.Leader.ID)
		case full && len(p.Isr) != stack.ClusterSize:
			return fmt.Errorf("partition %d: %d replicas in sync", p.ID, len(p.Isr))
		}
	}
	return nil
}

// redisAddrs are the Redis nodes' addresses, node i at index i-1.
func (r *runner) redisAddrs() []string {
	var out []string
	for i := 1; i <= 2*stack.ClusterSize; i++ {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", r.b.sc.ClusterPorts.Redis(i)))
	}
	return out
}

// redisDo runs fn against the first node of the cluster that answers, skipping
// the node named skip.
func (r *runner) redisDo(ctx context.Context, skip string, fn func(*redis.Client) error) error {
	err := errors.New("no Redis node answers")
	for _, addr := range r.redisAddrs() {
		if addr == skip {
			continue
		}
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
		err = fn(c)
		c.Close()
		if err == nil {
			return nil
		}
	}
	return err
}

// slotMaster returns the addresses of the master serving the slot of key and
// of its replica ("" when it has none), as a node other than skip sees them.
func (r *runner) slotMaster(ctx context.Context, key, skip string) (master, replica string, err error) {
	err = r.redisDo(ctx, skip, func(c *redis.Client) error {
		slot, err := c.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			return err
		}
		ranges, err := c.ClusterSlots(ctx).Result()
		if err != nil {
			return err
		}
		for _, rg := range ranges {
			if int64(rg.Start) <= slot && slot <= int64(rg.End) && len(rg.Nodes) > 0 {
				master = rg.Nodes[0].Addr
				if len(rg.Nodes) > 1 {
					replica = rg.Nodes[1].Addr
				}
				return nil
			}
		}
		return fmt.Errorf("no node serves slot %d", slot)
	})
	return master, replica, err
}

// cutReplica freezes the replica at addr (SIGSTOP) and cuts its link to
// master, then waits until shard's watermark on the master has moved (the
// aggregate applied and acknowledged more), at most lagFor; the returned
// function lets the replica run again, and lost says by how many sequences the
// watermark moved. Taking over then, the replica lacks those applies, as in
// TestRedisFailoverLosingTheLastApplies.
func (r *runner) cutReplica(ctx context.Context, master, addr string, shard int) (resume func(), lost uint64, err error) {
	name, err := r.redisNode(addr)
	if err != nil {
		return nil, 0, err
	}
	p := r.b.nodes[name]
	p.Signal(syscall.SIGSTOP)
	resume = func() { p.Signal(syscall.SIGCONT) }
	c := redis.NewClient(&redis.Options{Addr: master, MaxRetries: -1})
	defer c.Close()
	if err := c.Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
		resume()
		return nil, 0, fmt.Errorf("cut the replication link of %s: %w", master, err)
	}
	rd := projection.NewShardReader(c, r.cfg.Hash, shard)
	cons := aggregate.ShardConsumer(consumer, shard, stack.ClusterSize)
	wm := func() uint64 {
		ns, err := rd.Current(ctx)
		if err != nil {
			return 0
		}
		w, _ := rd.Watermark(ctx, ns, cons)
		return w
	}
	from := wm()
	for deadline := time.Now().Add(lagFor); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(200 * time.Millisecond) {
		if w := wm(); w > from {
			lost = w - from
			time.Sleep(time.Second) // more applies, and their acks
			break
		}
	}
	if w := wm(); w > from {
		lost = w - from
	}
	return resume, lost, nil
}

// lagFor bounds how long a replica stays cut off waiting for its master's
// watermark to move.
const lagFor = 45 * time.Second

// redisNode returns the process name of the node at addr.
func (r *runner) redisNode(addr string) (string, error) {
	for i, a := range r.redisAddrs() {
		if a == addr {
			return "redis" + strconv.Itoa(i+1), nil
		}
	}
	return "", fmt.Errorf("%s is not a node of the cluster", addr)
}

// redisHealthy returns nil when every node reports the cluster ok with all
// slots served and six nodes known, every replica's link to its master up, and
// the node at replica (if any) a replica.
func (r *runner) redisHealthy(ctx context.Context, replica string) error {
	for _, addr := range r.redisAddrs() {
		info, err := stack.RedisClusterInfo(ctx, addr)
		if err != nil {
			return err
		}
		if info["cluster_state"] != "ok" || info["cluster_slots_ok"] != "16384" || info["cluster_known_nodes"] != "6" {
			return fmt.Errorf("%s: cluster_state %s, slots ok %s, known nodes %s", addr,
				info["cluster_state"], info["cluster_slots_ok"], info["cluster_known_nodes"])
		}
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		repl, err := c.Info(ctx, "replication").Result()
		c.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
		slave := strings.Contains(repl, "role:slave")
		if slave && !strings.Contains(repl, "master_link_status:up") {
			return fmt.Errorf("%s: replica whose link to its master is not up", addr)
		}
		if addr == replica && !slave {
			return fmt.Errorf("%s is a master again, not a replica", addr)
		}
	}
	return nil
}
