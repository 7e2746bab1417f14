package chaos

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/wikiflow/wikiflow/internal/stack"
)

// With Topology cluster the run starts the brokers of TOPOLOGY=cluster
// (internal/stack: 3 Kafka KRaft nodes with combined roles, 3 routed
// nats-servers, a Redis Cluster of 3 masters and 3 replicas) on ports of its own
// block, and the pipeline as `wikiflow stack up` runs it there: ingest creating
// the topic with 6 partitions, replication factor 3 and min.insync.replicas 2,
// the bridge writing an R3 stream, the aggregate as 3 shard processes. The faults
// are aimed at the leaders (see clusterfaults.go).

// clusterOffset is where, in a run's block of ports, stack.ClusterPorts starts;
// busOffset is where Redis node i's cluster bus port is (busOffset + i - 1), so
// that every port of the run stays inside its block.
const (
	clusterOffset = 40
	busOffset     = 80
)

// clusterPortList returns the cluster's ports of the block at b.
func clusterPortList(b int) []int {
	cp := stack.ClusterPorts{Base: b + clusterOffset}
	var out []int
	for i := 1; i <= stack.ClusterSize; i++ {
		k, c, s := cp.Kafka(i)
		n, rt, m := cp.NATS(i)
		out = append(out, k, c, s, n, rt, m, cp.AggregateHealth(i))
	}
	for i := 1; i <= 2*stack.ClusterSize; i++ {
		out = append(out, cp.Redis(i), b+busOffset+i-1)
	}
	return out
}

func (r *runner) clustered() bool { return r.cfg.Topology == "cluster" }

// nodeOf splits a component name such as kafka2 into its kind and number (0 for
// a name without one).
func nodeOf(name string) (string, int) {
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(name[i:])
	return name[:i], n
}

// newClusterBrokers prepares the folders, configuration and commands of the
// cluster's twelve brokers through internal/stack.
func newClusterBrokers(ctx context.Context, cfg Config, pt ports) (*brokerSet, error) {
	sc, err := stackConfig(cfg, pt)
	if err != nil {
		return nil, err
	}
	sc.Topology, sc.Source = "cluster", "sample"
	sc.ClusterPorts = stack.ClusterPorts{Base: pt.Kafka + clusterOffset}
	sc.KafkaJVMOpts = append([]string(nil), stack.ClusterKafkaJVMOpts...)
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	if err := stack.EnsureTools(ctx, stack.LocalHost(), []stack.Tool{stack.ToolRedis, stack.ToolJava}, cfg.Progress); err != nil {
		return nil, err
	}
	if err := stack.EnsureNATSServer(ctx, cfg.Root, cfg.NATSServer, cfg.Progress); err != nil {
		return nil, err
	}
	b := &brokerSet{cfg: cfg, ports: pt, sc: sc, nodes: map[string]*stack.Proc{}, names: sc.BrokerNames()}
	for _, name := range b.names {
		args, err := b.prepareNode(ctx, name)
		if err != nil {
			return nil, err
		}
		b.nodes[name] = stack.NewProc(name, sc.RunDir(), sc.LogFile(name), args...)
	}
	return b, nil
}

// prepareNode prepares one broker of the cluster and returns its command line.
func (b *brokerSet) prepareNode(ctx context.Context, name string) ([]string, error) {
	kind, i := nodeOf(name)
	switch kind {
	case "kafka":
		k := b.sc.KafkaNode(i)
		return k.Args(), k.Prepare(ctx, b.cfg.Progress)
	case "nats":
		n := b.sc.NATSNode(i)
		return n.Args(), n.Prepare()
	default:
		rd := b.sc.RedisNode(i)
		rd.BusPort = b.ports.Kafka + busOffset + i - 1
		return rd.Args(), rd.Prepare()
	}
}

// startCluster starts every broker of the cluster, waits until each is
// healthy and forms the Redis Cluster.
func (b *brokerSet) startCluster(ctx context.Context) error {
	for i := len(b.names) - 1; i >= 0; i-- { // Redis, NATS, then Kafka
		if err := b.nodes[b.names[i]].Start(); err != nil {
			return err
		}
	}
	for _, name := range b.names {
		if err := b.waitHealthy(ctx, name); err != nil {
			return err
		}
	}
	s := &stack.Stack{Config: b.sc, Out: b.cfg.Progress, Err: b.cfg.Progress}
	return s.FormRedisCluster(ctx)
}

// restartNode starts a killed broker of the cluster again once its ports are
// free, and waits until it answers its health check.
func (b *brokerSet) restartNode(ctx context.Context, name string) error {
	if err := waitPortsFree(ctx, 60*time.Second, b.portsOf(name)...); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := b.nodes[name].Start(); err != nil {
		return err
	}
	return b.waitHealthy(ctx, name)
}

// startClusterBrokers is startBrokers for Topology cluster.
func (r *runner) startClusterBrokers(ctx context.Context, pt ports) (func(), error) {
	b, err := newClusterBrokers(ctx, r.cfg, pt)
	if err != nil {
		return func() {}, err
	}
	r.b = b
	for _, name := range b.names {
		r.addProc(b.nodes[name])
	}
	stop := func() {
		b.stopAll()
		r.say("brokers stopped")
	}
	if err := b.startCluster(ctx); err != nil {
		return stop, err
	}
	r.say("cluster healthy: Kafka %s, NATS %s, Redis %s", b.kafkaAddr(), b.natsURL(), b.redisURL())
	return stop, nil
}

// clusterArgs returns the command line of a pipeline process of the cluster:
// the one `wikiflow stack up` runs with TOPOLOGY=cluster, with the run's
// projection, consumer and restart settings.
func (r *runner) clusterArgs(name string) []string {
	if name == "emulator" {
		return r.singleArgs(name, false)
	}
	args, err := r.b.sc.ServiceArgs(name)
	if err != nil {
		panic(err) // the names are the stack's own
	}
	switch kind, _ := nodeOf(name); kind {
	case "ingest":
		args = append(args, "--backoff-max", "5s")
	case "aggregate":
		args = append(args, "--hash", r.cfg.Hash, "--consumer", consumer, "--ack-wait", "10s")
	}
	return args
}

// stopNodes stops the cluster's brokers kind by kind, Kafka first, the nodes of
// a kind at once.
func (b *brokerSet) stopNodes() {
	for _, kind := range []string{"kafka", "nats", "redis"} {
		var wg sync.WaitGroup
		for _, name := range b.names {
			if k, _ := nodeOf(name); k == kind {
				wg.Add(1)
				go func() {
					defer wg.Done()
					b.nodes[name].Stop(30 * time.Second)
				}()
			}
		}
		wg.Wait()
	}
}
