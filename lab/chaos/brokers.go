package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wikiflow/wikiflow/internal/stack"
)

// ports are the TCP ports of one run.
type ports struct {
	Kafka, KafkaController, NATS, NATSMonitor, Redis         int
	Emulator, Ingest, Bridge, Aggregate, Bridge2, Aggregate2 int
	KafkaSASL                                                int
}

const portCount = 12

// blockSize is the span of one block of ports (a cluster run's included).
const blockSize = 100

func portsFrom(base int) ports {
	return ports{base, base + 1, base + 2, base + 3, base + 4, base + 5, base + 6, base + 7, base + 8, base + 9, base + 10, base + 11}
}

func (p ports) list() []int {
	return []int{p.Kafka, p.KafkaController, p.NATS, p.NATSMonitor, p.Redis, p.Emulator, p.Ingest, p.Bridge, p.Aggregate, p.Bridge2, p.Aggregate2, p.KafkaSASL}
}

// portFree reports whether nothing listens on 127.0.0.1:port and it can be bound.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// pickPorts returns the first block of free ports at base, base+100, ...,
// base+900; with cluster, the block also holds the cluster's ports (see
// clusterPortList).
func pickPorts(base int, cluster bool) (ports, error) {
	for b := base; b+blockSize < 65535 && b < base+1000; b += 100 {
		ok := true
		list := portsFrom(b).list()
		if cluster {
			list = append(list, clusterPortList(b)...)
		}
		for _, p := range list {
			if !portFree(p) {
				ok = false
				break
			}
		}
		if ok {
			return portsFrom(b), nil
		}
	}
	return ports{}, fmt.Errorf("no block of %d free ports from %d", portCount, base)
}

// waitPortsFree waits until every port can be bound again (after a kill).
func waitPortsFree(ctx context.Context, timeout time.Duration, list ...int) error {
	return poll(ctx, timeout, 100*time.Millisecond, func() error {
		for _, p := range list {
			if !portFree(p) {
				return fmt.Errorf("port %d is still in use", p)
			}
		}
		return nil
	})
}

// poll calls check every interval until it returns nil, ctx ends or timeout passes.
func poll(ctx context.Context, timeout, interval time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

// brokerSet is the run's private Kafka, NATS and Redis, configured and checked
// by internal/stack.
type brokerSet struct {
	cfg   Config
	ports ports
	sc    stack.Config
	kafka *stack.Proc
	nats  *stack.Proc
	redis *stack.Proc
	// nodes are the brokers of Topology cluster by name (kafka1-3, nats1-3,
	// redis1-6), in the order of names.
	nodes map[string]*stack.Proc
	names []string
	// restarts counts broker restarts by name and mode.
	restarts []string
}

// kafkaAddr, natsURL and redisURL are the brokers' addresses: comma-separated
// lists of every node with Topology cluster.
func (b *brokerSet) kafkaAddr() string { return b.sc.KafkaAddrs() }
func (b *brokerSet) natsURL() string   { return b.sc.NATSURLs() }
func (b *brokerSet) redisURL() string  { return b.sc.RedisURLs() }

// stackConfig returns the run's brokers as internal/stack describes them.
func stackConfig(cfg Config, pt ports) (stack.Config, error) {
	sc, err := stack.New(cfg.Root, cfg.Home)
	if err != nil {
		return sc, err
	}
	sc.Ports = stack.Ports{Kafka: pt.Kafka, KafkaController: pt.KafkaController, KafkaSASL: pt.KafkaSASL,
		NATS: pt.NATS, NATSMonitor: pt.NATSMonitor, Redis: pt.Redis, Emulator: pt.Emulator,
		IngestHealth: pt.Ingest, BridgeHealth: pt.Bridge, AggregateHealth: pt.Aggregate}
	sc.NATSServer, sc.KafkaLibs, sc.NATSSyncInterval = cfg.NATSServer, cfg.KafkaLibs, cfg.NATSSyncInterval
	sc.NATSName, sc.Wikiflow = "wikiflow-chaos", cfg.Bin
	return sc, nil
}

// newBrokers prepares the three brokers' folders, configuration and commands
// (Kafka's jars are fetched and its storage formatted here).
func newBrokers(ctx context.Context, cfg Config, pt ports) (*brokerSet, error) {
	sc, err := stackConfig(cfg, pt)
	if err != nil {
		return nil, err
	}
	if err := stack.EnsureTools(ctx, stack.LocalHost(), []stack.Tool{stack.ToolRedis, stack.ToolJava}, cfg.Progress); err != nil {
		return nil, err
	}
	if err := sc.Kafka().Prepare(ctx, cfg.Progress); err != nil {
		return nil, err
	}
	if err := stack.EnsureNATSServer(ctx, cfg.Root, cfg.NATSServer, cfg.Progress); err != nil {
		return nil, err
	}
	if err := sc.NATS().Prepare(); err != nil {
		return nil, err
	}
	if err := sc.Redis().Prepare(); err != nil {
		return nil, err
	}
	run := sc.RunDir()
	b := &brokerSet{cfg: cfg, ports: pt, sc: sc}
	b.kafka = stack.NewProc("kafka", run, sc.LogFile("kafka"), sc.Kafka().Args()...)
	b.nats = stack.NewProc("nats", run, sc.LogFile("nats"), sc.NATS().Args()...)
	b.redis = stack.NewProc("redis", run, sc.LogFile("redis"), sc.Redis().Args()...)
	return b, nil
}

// brokerTimeout bounds how long a broker may take to become healthy.
const brokerTimeout = 120 * time.Second

// startAll starts the three brokers and waits until they are healthy.
func (b *brokerSet) startAll(ctx context.Context) error {
	for _, p := range []*stack.Proc{b.redis, b.nats, b.kafka} {
		if err := p.Start(); err != nil {
			return err
		}
	}
	for _, name := range []string{"redis", "nats", "kafka"} {
		if err := b.waitHealthy(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func (b *brokerSet) proc(name string) *stack.Proc {
	if p, ok := b.nodes[name]; ok {
		return p
	}
	switch name {
	case "kafka":
		return b.kafka
	case "nats":
		return b.nats
	default:
		return b.redis
	}
}

func (b *brokerSet) portsOf(name string) []int {
	ports := b.sc.PortsOf(name)
	if kind, i := nodeOf(name); kind == "redis" && b.nodes != nil {
		ports = append(ports, b.ports.Kafka+busOffset+i-1)
	}
	return ports
}

// waitHealthy waits until the broker answers its health check.
func (b *brokerSet) waitHealthy(ctx context.Context, name string) error {
	p := b.proc(name)
	err := poll(ctx, brokerTimeout, 250*time.Millisecond, func() error {
		if up, _ := p.Running(); !up {
			return fmt.Errorf("exited: %v", p.ExitError())
		}
		return b.sc.Check(ctx, name)
	})
	if err != nil {
		return fmt.Errorf("%s is not healthy: %w\nlast lines of %s:\n%s", name, err, p.Log, p.Tail(30))
	}
	return nil
}

// restart stops the broker (hard: SIGKILL; else SIGTERM with a grace period),
// waits until its ports are free, starts it again and waits until it is healthy.
// With loseAOF (Redis only) the AOF loses what Redis appended during the last
// second before the kill, as after a machine crash with appendfsync everysec.
func (b *brokerSet) restart(ctx context.Context, name string, hard, loseAOF bool) error {
	p := b.proc(name)
	mode := "clean restart"
	switch {
	case loseAOF:
		mode = "SIGKILL + restart, " + b.killRedisLosingAOF()
	case hard:
		mode = "SIGKILL + restart"
		p.Kill()
	case !p.Stop(60 * time.Second):
		mode = "clean restart (SIGKILL after 60s)"
	}
	b.restarts = append(b.restarts, name+": "+mode)
	if err := waitPortsFree(ctx, 60*time.Second, b.portsOf(name)...); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := p.Start(); err != nil {
		return err
	}
	return b.waitHealthy(ctx, name)
}

// stopAll stops the brokers: Kafka first (its clients are gone), then NATS and Redis.
func (b *brokerSet) stopAll() {
	if b.nodes != nil {
		b.stopNodes()
		return
	}
	for _, p := range []*stack.Proc{b.kafka, b.nats, b.redis} {
		if p != nil {
			p.Stop(30 * time.Second)
		}
	}
}

// redisIncrAOF returns the path and size of Redis's current incremental AOF file
// (Redis 7 multi-part AOF: appendonlydir/<manifest> names it with "type i").
func (b *brokerSet) redisIncrAOF() (string, int64, error) {
	dir := filepath.Join(b.cfg.Home, "data", "redis", "appendonlydir")
	manifests, _ := filepath.Glob(filepath.Join(dir, "*.manifest"))
	if len(manifests) != 1 {
		return "", 0, fmt.Errorf("%d AOF manifests in %s", len(manifests), dir)
	}
	m, err := os.ReadFile(manifests[0])
	if err != nil {
		return "", 0, err
	}
	var incr string
	for _, line := range strings.Split(string(m), "\n") {
		// e.g. "file appendonly.aof.1.incr.aof seq 1 type i"
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "file" {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			if f[i] == "type" && f[i+1] == "i" {
				incr = f[1]
			}
		}
	}
	if incr == "" {
		return "", 0, fmt.Errorf("no incremental AOF file in %s", manifests[0])
	}
	path := filepath.Join(dir, incr)
	st, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	return path, st.Size(), nil
}

// killRedisLosingAOF notes the size of the AOF, lets Redis run one more second
// (longer, up to 30 s, until it has appended something), kills it with SIGKILL
// and cuts the AOF back to the noted size. It returns what happened.
func (b *brokerSet) killRedisLosingAOF() string {
	path, before, err := b.redisIncrAOF()
	if err != nil {
		b.redis.Kill()
		return fmt.Sprintf("AOF kept (%v)", err)
	}
	time.Sleep(time.Second)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if p, n, err := b.redisIncrAOF(); err != nil || p != path || n > before {
			break
		}
	}
	b.redis.Kill()
	return cutAOF(b, path, before, nil)
}
