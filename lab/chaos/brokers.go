package chaos

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

// kafkaVersion is the Kafka release of stack/kafka/pom.xml.
const kafkaVersion = "4.4.0"

// kafkaJVMOpts are scripts/stack.sh's defaults: a small heap, the serial
// collector and the C1 compiler only (about twice as fast to start).
var kafkaJVMOpts = []string{"-Xms128m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
	"-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true"}

// ports are the TCP ports of one run.
type ports struct {
	Kafka, KafkaController, NATS, NATSMonitor, Redis         int
	Emulator, Ingest, Bridge, Aggregate, Bridge2, Aggregate2 int
	KafkaSASL                                                int
}

const portCount = 12

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

// pickPorts returns the first block of free ports at base, base+100, ...
func pickPorts(base int) (ports, error) {
	for b := base; b+portCount < 65535 && b < base+2000; b += 100 {
		ok := true
		for _, p := range portsFrom(b).list() {
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

// brokerSet is the run's private Kafka, NATS and Redis.
type brokerSet struct {
	cfg   Config
	ports ports
	kafka *proc
	nats  *proc
	redis *proc
	// restarts counts broker restarts by name and mode.
	restarts []string
}

func (b *brokerSet) kafkaAddr() string { return fmt.Sprintf("127.0.0.1:%d", b.ports.Kafka) }
func (b *brokerSet) natsURL() string   { return fmt.Sprintf("nats://127.0.0.1:%d", b.ports.NATS) }
func (b *brokerSet) redisURL() string  { return fmt.Sprintf("redis://127.0.0.1:%d/0", b.ports.Redis) }

// newBrokers prepares the three brokers' folders and commands (Kafka's storage is
// formatted here).
func newBrokers(ctx context.Context, cfg Config, pt ports) (*brokerSet, error) {
	run, data := filepath.Join(cfg.Home, "run"), filepath.Join(cfg.Home, "data")
	for _, d := range []string{run, filepath.Join(data, "kafka"), filepath.Join(data, "nats"), filepath.Join(data, "redis")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("run folder: %w", err)
		}
	}
	b := &brokerSet{cfg: cfg, ports: pt}

	// Kafka, as scripts/stack.sh starts it.
	if err := ensureKafkaLibs(ctx, cfg, run); err != nil {
		return nil, err
	}
	tmpl, err := os.ReadFile(filepath.Join(cfg.Root, "stack", "kafka", "server.properties"))
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	props := strings.NewReplacer(":9092", fmt.Sprintf(":%d", pt.Kafka), ":9093", fmt.Sprintf(":%d", pt.KafkaController),
		":9094", fmt.Sprintf(":%d", pt.KafkaSASL)).Replace(string(tmpl))
	props += "\n# Added by the chaos run\nlog.dirs=" + filepath.Join(data, "kafka") + "\n"
	propsFile := filepath.Join(run, "kafka.properties")
	if err := os.WriteFile(propsFile, []byte(props), 0o644); err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	java := append(append([]string{"java"}, kafkaJVMOpts...),
		"-Dlog4j2.configurationFile="+filepath.Join(cfg.Root, "stack", "kafka", "log4j2.properties"),
		"-cp", filepath.Join(cfg.KafkaLibs, "*"))
	if _, err := os.Stat(filepath.Join(data, "kafka", "meta.properties")); err != nil {
		id, err := clusterID()
		if err != nil {
			return nil, err
		}
		format := exec.CommandContext(ctx, java[0], append(java[1:], "kafka.tools.StorageTool", "format", "-t", id, "-c", propsFile, "--standalone")...)
		format.Dir = run
		if out, err := format.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("kafka: format the storage: %w\n%s", err, out)
		}
	}
	b.kafka = newProc("kafka", run, filepath.Join(run, "kafka.log"), append(java, "kafka.Kafka", propsFile)...)

	if err := ensureNATSServer(ctx, cfg); err != nil {
		return nil, err
	}
	// As scripts/stack.sh: the sync interval has no command-line flag.
	natsConf := filepath.Join(run, "nats.conf")
	conf := fmt.Sprintf("jetstream {\n  store_dir: %q\n  sync_interval: %q\n}\n", filepath.Join(data, "nats"), cfg.NATSSyncInterval)
	if err := os.WriteFile(natsConf, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	b.nats = newProc("nats", run, filepath.Join(run, "nats.log"), cfg.NATSServer, "-n", "wikiflow-chaos",
		"-a", "127.0.0.1", "-p", strconv.Itoa(pt.NATS), "-m", strconv.Itoa(pt.NATSMonitor), "-c", natsConf)

	b.redis = newProc("redis", run, filepath.Join(run, "redis.log"), "redis-server", "--port", strconv.Itoa(pt.Redis),
		"--bind", "127.0.0.1", "--dir", filepath.Join(data, "redis"), "--appendonly", "yes", "--appendfsync", "everysec",
		"--save", "", "--daemonize", "no", "--logfile", "")
	return b, nil
}

// clusterID returns a random Kafka cluster id (16 bytes, URL-safe base64, no
// padding, not starting with '-').
func clusterID() (string, error) {
	for {
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", fmt.Errorf("kafka cluster id: %w", err)
		}
		id := base64.RawURLEncoding.EncodeToString(raw[:])
		if !strings.HasPrefix(id, "-") {
			return id, nil
		}
	}
}

// ensureKafkaLibs fetches the Kafka jars with Maven when they are missing, like
// scripts/stack.sh does.
func ensureKafkaLibs(ctx context.Context, cfg Config, run string) error {
	if m, _ := filepath.Glob(filepath.Join(cfg.KafkaLibs, "kafka_*.jar")); len(m) > 0 {
		return nil
	}
	if _, err := exec.LookPath("mvn"); err != nil {
		return fmt.Errorf("kafka: no jars in %s and no mvn to fetch them (run 'go tool task infra' once)", cfg.KafkaLibs)
	}
	tmp := cfg.KafkaLibs + ".tmp." + strconv.Itoa(os.Getpid())
	os.RemoveAll(tmp)
	mvn := exec.CommandContext(ctx, "mvn", "-q", "-B", "-Dstyle.color=never", "-f", filepath.Join(cfg.Root, "stack", "kafka", "pom.xml"),
		"dependency:copy-dependencies", "-DoutputDirectory="+tmp)
	mvn.Dir = run
	if out, err := mvn.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("kafka: fetch the jars with Maven: %w\n%s", err, out)
	}
	if m, _ := filepath.Glob(filepath.Join(cfg.KafkaLibs, "kafka_*.jar")); len(m) > 0 {
		os.RemoveAll(tmp) // fetched meanwhile by someone else
		return nil
	}
	os.RemoveAll(cfg.KafkaLibs)
	if err := os.Rename(tmp, cfg.KafkaLibs); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

// ensureNATSServer builds the nats-server pinned in tools/go.mod when missing.
func ensureNATSServer(ctx context.Context, cfg Config) error {
	if st, err := os.Stat(cfg.NATSServer); err == nil && !st.IsDir() {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(cfg.NATSServer), 0o755); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", cfg.NATSServer, "github.com/nats-io/nats-server/v2")
	build.Dir = filepath.Join(cfg.Root, "tools")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("nats: build nats-server: %w\n%s", err, out)
	}
	return nil
}

// brokerTimeout bounds how long a broker may take to become healthy.
const brokerTimeout = 120 * time.Second

// startAll starts the three brokers and waits until they are healthy.
func (b *brokerSet) startAll(ctx context.Context) error {
	for _, p := range []*proc{b.redis, b.nats, b.kafka} {
		if err := p.start(); err != nil {
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

func (b *brokerSet) proc(name string) *proc {
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
	switch name {
	case "kafka":
		return []int{b.ports.Kafka, b.ports.KafkaController, b.ports.KafkaSASL}
	case "nats":
		return []int{b.ports.NATS, b.ports.NATSMonitor}
	default:
		return []int{b.ports.Redis}
	}
}

// waitHealthy waits until the broker answers its health check.
func (b *brokerSet) waitHealthy(ctx context.Context, name string) error {
	p := b.proc(name)
	err := poll(ctx, brokerTimeout, 250*time.Millisecond, func() error {
		if up, _ := p.running(); !up {
			return fmt.Errorf("exited: %v", p.exitError())
		}
		return b.healthy(ctx, name)
	})
	if err != nil {
		return fmt.Errorf("%s is not healthy: %w\nlast lines of %s:\n%s", name, err, p.log, p.tail(30))
	}
	return nil
}

func (b *brokerSet) healthy(ctx context.Context, name string) error {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	switch name {
	case "kafka":
		conn, err := (&kafka.Dialer{Timeout: 2 * time.Second}).DialContext(cctx, "tcp", b.kafkaAddr())
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := conn.Brokers(); err != nil {
			return err
		}
		_, err = conn.Controller()
		return err
	case "nats":
		req, _ := http.NewRequestWithContext(cctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/healthz", b.ports.NATSMonitor), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %s", resp.Status)
		}
		return nil
	default:
		c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", b.ports.Redis), MaxRetries: -1})
		defer c.Close()
		return c.Ping(cctx).Err()
	}
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
		p.kill()
	case !p.stop(60 * time.Second):
		mode = "clean restart (SIGKILL after 60s)"
	}
	b.restarts = append(b.restarts, name+": "+mode)
	if err := waitPortsFree(ctx, 60*time.Second, b.portsOf(name)...); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := p.start(); err != nil {
		return err
	}
	return b.waitHealthy(ctx, name)
}

// stopAll stops the brokers: Kafka first (its clients are gone), then NATS and Redis.
func (b *brokerSet) stopAll() {
	for _, p := range []*proc{b.kafka, b.nats, b.redis} {
		if p != nil {
			p.stop(30 * time.Second)
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
		b.redis.kill()
		return fmt.Sprintf("AOF kept (%v)", err)
	}
	time.Sleep(time.Second)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if p, n, err := b.redisIncrAOF(); err != nil || p != path || n > before {
			break
		}
	}
	b.redis.kill()
	return cutAOF(b, path, before, nil)
}
