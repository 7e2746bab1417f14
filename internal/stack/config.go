package stack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// LiveURL is Wikimedia's EventStreams feed of recent changes (SOURCE=live).
const LiveURL = "https://stream.wikimedia.org/v2/stream/recentchange"

// Brokers are the broker components, in the order status lists them.
var Brokers = []string{"kafka", "nats", "redis"}

// Services are the pipeline's components, in the order status lists them.
var Services = []string{"emulator", "ingest", "bridge", "aggregate", "api"}

// Components are every component of the stack: Brokers, then Services.
func Components() []string { return append(append([]string(nil), Brokers...), Services...) }

// Ports are the TCP ports of one stack, all on 127.0.0.1.
type Ports struct {
	Kafka, KafkaController, KafkaSASL int
	NATS, NATSMonitor                 int
	Redis                             int
	API                               int
	IngestHealth                      int
	BridgeHealth                      int
	AggregateHealth                   int
	Emulator                          int
}

// DefaultPorts are the ports every wikiflow command and compose/ assume.
func DefaultPorts() Ports {
	return Ports{Kafka: 9092, KafkaController: 9093, KafkaSASL: 9094, NATS: 4222, NATSMonitor: 8222,
		Redis: 6379, API: 8080, IngestHealth: 8081, BridgeHealth: 8082, AggregateHealth: 8083, Emulator: 8090}
}

// portVar ties an environment variable STACK_<Name>_PORT to a field.
type portVar struct {
	name string
	port *int
}

func (p *Ports) vars() []portVar {
	return []portVar{{"KAFKA", &p.Kafka}, {"KAFKA_CONTROLLER", &p.KafkaController}, {"KAFKA_SASL", &p.KafkaSASL},
		{"NATS", &p.NATS}, {"NATS_MONITOR", &p.NATSMonitor}, {"REDIS", &p.Redis}, {"API", &p.API},
		{"INGEST_HEALTH", &p.IngestHealth}, {"BRIDGE_HEALTH", &p.BridgeHealth},
		{"AGGREGATE_HEALTH", &p.AggregateHealth}, {"EMULATOR", &p.Emulator}}
}

// ByEnv maps each port's environment variable (STACK_KAFKA_PORT, …) to its value.
func (p Ports) ByEnv() map[string]int {
	m := map[string]int{}
	for _, v := range p.vars() {
		m[portEnv(v.name)] = *v.port
	}
	return m
}

func portEnv(name string) string { return "STACK_" + name + "_PORT" }

// Of returns the ports a component listens on.
func (p Ports) Of(name string) []int {
	switch name {
	case "kafka":
		return []int{p.Kafka, p.KafkaController, p.KafkaSASL}
	case "nats":
		return []int{p.NATS, p.NATSMonitor}
	case "redis":
		return []int{p.Redis}
	case "emulator":
		return []int{p.Emulator}
	case "ingest":
		return []int{p.IngestHealth}
	case "bridge":
		return []int{p.BridgeHealth}
	case "aggregate":
		return []int{p.AggregateHealth}
	case "api":
		return []int{p.API}
	}
	return nil
}

// Config is one stack: where it lives, its ports and how it starts its parts.
// [New] fills it with the defaults, [FromEnv] with the STACK_* variables.
type Config struct {
	// Root is the repository root (stack/kafka, tools/ and cmd/wikiflow live there).
	Root string
	// Home holds run/ (pid files, logs, configuration) and data/ (the brokers'
	// data, kept by down) ($STACK_HOME, default <Root>/.wikiflow).
	Home string
	// Ports are the ports of every component ($STACK_<NAME>_PORT).
	Ports Ports
	// Timeout bounds the wait for a component to become healthy ($STACK_TIMEOUT
	// in seconds, default 120).
	Timeout time.Duration
	// FeedWait is how long up waits for ingest's first event ($STACK_FEED_WAIT in
	// seconds, default 15).
	FeedWait time.Duration
	// StopGrace is how long a component may take to stop after SIGTERM before
	// it gets SIGKILL (default 15s).
	StopGrace time.Duration
	// NATSSyncInterval is JetStream's sync_interval: always (default) or a
	// duration such as 1s ($STACK_NATS_SYNC_INTERVAL).
	NATSSyncInterval string
	// NATSName is the nats-server's name (default wikiflow).
	NATSName string
	// NATSServer is the nats-server binary (default <Home>/bin/nats-server,
	// built from tools/go.mod when missing or older than it).
	NATSServer string
	// KafkaLibs is the folder of the Kafka jars (default
	// ${XDG_CACHE_HOME:-$HOME/.cache}/wikiflow/kafka-<KafkaVersion>/libs).
	KafkaLibs string
	// KafkaJVMOpts are Kafka's JVM options ($STACK_KAFKA_JVM_OPTS, default a
	// 128-384 MB heap, the serial collector and the C1 compiler only).
	KafkaJVMOpts []string
	// Wikiflow is the wikiflow binary the stages run ($WIKIFLOW_BIN; default
	// <Home>/bin/wikiflow, built from cmd/wikiflow).
	Wikiflow string
	// WikiflowGiven records that Wikiflow came from $WIKIFLOW_BIN (it is then
	// never built).
	WikiflowGiven bool
	// Source is the feed: live, sample or an http(s) URL ($SOURCE, default live).
	Source string
	// Mode is native (default) or docker ($STACK).
	Mode string
	// Topology is single (default: one node of each broker) or cluster (3 Kafka
	// nodes, 3 nats-servers, a Redis Cluster of 3 masters and 3 replicas, 3
	// aggregate shards) ($TOPOLOGY; when it is unset, the topology whose brokers
	// run in the run folder, so that down, status and logs find a running cluster).
	Topology string
	// ClusterPorts are the brokers' and shards' ports of TOPOLOGY=cluster
	// ($STACK_CLUSTER_BASE_PORT).
	ClusterPorts ClusterPorts
	// LogLines is how many lines logs shows ($LOGS_LINES, default 50) and
	// LogsFollow whether it follows ($LOGS_FOLLOW=1).
	LogLines   int
	LogsFollow bool
}

// DefaultKafkaJVMOpts halve Kafka's start time on a small machine.
var DefaultKafkaJVMOpts = []string{"-Xms128m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"}

// ClusterKafkaJVMOpts are the JVM options of each of the three Kafka nodes of
// TOPOLOGY=cluster: a smaller heap than one node's.
var ClusterKafkaJVMOpts = []string{"-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"}

// New returns the default stack of the repository at root living in home
// (<root>/.wikiflow when empty).
func New(root, home string) (Config, error) {
	if home == "" {
		home = filepath.Join(root, ".wikiflow")
	}
	cache, err := CacheDir(os.Getenv)
	if err != nil {
		return Config{}, err
	}
	c := Config{Root: root, Home: home, Ports: DefaultPorts(), Timeout: 120 * time.Second,
		FeedWait: 15 * time.Second, StopGrace: 15 * time.Second, NATSSyncInterval: "always",
		NATSName: "wikiflow", KafkaLibs: filepath.Join(cache, "kafka-"+KafkaVersion, "libs"),
		KafkaJVMOpts: append([]string(nil), DefaultKafkaJVMOpts...), Source: "live", Mode: "native", LogLines: 50,
		Topology: "single", ClusterPorts: ClusterPorts{Base: DefaultClusterBasePort}}
	c.NATSServer = filepath.Join(c.BinDir(), "nats-server")
	c.Wikiflow = filepath.Join(c.BinDir(), "wikiflow")
	return c, nil
}

// CacheDir returns ${XDG_CACHE_HOME:-$HOME/.cache}/wikiflow.
func CacheDir(getenv func(string) string) (string, error) {
	if d := getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "wikiflow"), nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "wikiflow"), nil
	}
	return "", errors.New("cache folder: neither XDG_CACHE_HOME nor HOME is set")
}

var syncInterval = regexp.MustCompile(`^(always|[0-9]+(ms|s|m|h))$`)

// FromEnv returns the stack of the repository at root as the environment
// configures it (see the package's STACK_* variables); it reports every problem
// at once.
func FromEnv(root string, getenv func(string) string) (Config, error) {
	c, err := New(root, getenv("STACK_HOME"))
	if err != nil {
		return c, err
	}
	if cache, err := CacheDir(getenv); err == nil {
		c.KafkaLibs = filepath.Join(cache, "kafka-"+KafkaVersion, "libs")
	}
	var errs []error
	seconds := func(name string, d *time.Duration) {
		if s := getenv(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				errs = append(errs, fmt.Errorf("%s=%s is not a positive number of seconds", name, s))
				return
			}
			*d = time.Duration(n) * time.Second
		}
	}
	seconds("STACK_TIMEOUT", &c.Timeout)
	seconds("STACK_FEED_WAIT", &c.FeedWait)
	if s := getenv("TOPOLOGY"); s != "" {
		c.Topology = s
	} else {
		c.Topology = c.runningTopology()
	}
	for _, v := range c.Ports.vars() {
		if s := getenv(portEnv(v.name)); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 65535 {
				errs = append(errs, fmt.Errorf("%s=%s is not a port (1-65535)", portEnv(v.name), s))
				continue
			}
			*v.port = n
		}
	}
	if s := getenv("STACK_NATS_SYNC_INTERVAL"); s != "" {
		c.NATSSyncInterval = s
	}
	if s := getenv("STACK_KAFKA_JVM_OPTS"); s != "" {
		c.KafkaJVMOpts = strings.Fields(s)
	} else if c.Clustered() {
		c.KafkaJVMOpts = append([]string(nil), ClusterKafkaJVMOpts...)
	}
	if s := getenv("WIKIFLOW_BIN"); s != "" {
		c.Wikiflow, c.WikiflowGiven = s, true
	}
	if s := getenv("SOURCE"); s != "" {
		c.Source = s
	}
	if s := getenv("STACK"); s != "" {
		c.Mode = s
	}
	if s := getenv("STACK_CLUSTER_BASE_PORT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1024 || n > 65535-10040 {
			errs = append(errs, fmt.Errorf("STACK_CLUSTER_BASE_PORT=%s is not a port between 1024 and %d", s, 65535-10040))
		}
		c.ClusterPorts.Base = n
	}
	if s := getenv("LOGS_LINES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("LOGS_LINES=%s is not a number of lines", s))
		}
		c.LogLines = n
	}
	c.LogsFollow = getenv("LOGS_FOLLOW") == "1"
	errs = append(errs, c.Validate())
	return c, errors.Join(errs...)
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.Mode != "native" && c.Mode != "docker" {
		errs = append(errs, fmt.Errorf("STACK must be native or docker, not %q", c.Mode))
	}
	if c.Topology != "single" && c.Topology != "cluster" {
		errs = append(errs, fmt.Errorf("TOPOLOGY must be single or cluster, not %q", c.Topology))
	}
	if c.Clustered() && c.Mode == "docker" {
		errs = append(errs, errors.New("TOPOLOGY=cluster runs natively only (STACK=native)"))
	}
	if _, err := c.SourceURL(); err != nil {
		errs = append(errs, err)
	}
	if !syncInterval.MatchString(c.NATSSyncInterval) {
		errs = append(errs, fmt.Errorf("STACK_NATS_SYNC_INTERVAL=%s is neither always nor a duration such as 1s", c.NATSSyncInterval))
	}
	seen := map[int]string{}
	for _, v := range c.Ports.vars() {
		if other, ok := seen[*v.port]; ok {
			errs = append(errs, fmt.Errorf("%s and %s are both %d", portEnv(other), portEnv(v.name), *v.port))
		}
		seen[*v.port] = v.name
	}
	if c.Clustered() {
		for _, name := range append(c.BrokerNames(), "aggregate1", "aggregate2", "aggregate3") {
			for _, p := range c.PortsOf(name) {
				if other, ok := seen[p]; ok {
					errs = append(errs, fmt.Errorf("%s's port %d (STACK_CLUSTER_BASE_PORT=%d) is also %s", name, p, c.ClusterPorts.Base, portEnv(other)))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// SourceURL returns the URL ingest reads, from Source.
func (c Config) SourceURL() (string, error) {
	switch s := c.Source; {
	case s == "live" || s == "":
		return LiveURL, nil
	case s == "sample":
		return fmt.Sprintf("http://127.0.0.1:%d/v2/stream/recentchange", c.Ports.Emulator), nil
	case strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://"):
		return s, nil
	default:
		return "", fmt.Errorf("SOURCE must be live, sample or an http(s) URL, not %q", s)
	}
}

// RunDir holds pid files, logs and the brokers' configuration.
func (c Config) RunDir() string { return filepath.Join(c.Home, "run") }

// DataDir holds the brokers' data (kafka/, nats/, redis/).
func (c Config) DataDir() string { return filepath.Join(c.Home, "data") }

// BinDir holds the nats-server and wikiflow binaries.
func (c Config) BinDir() string { return filepath.Join(c.Home, "bin") }

// KafkaAddr is the Kafka bootstrap address.
func (c Config) KafkaAddr() string { return fmt.Sprintf("127.0.0.1:%d", c.Ports.Kafka) }

// NATSURL is the NATS client URL.
func (c Config) NATSURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", c.Ports.NATS) }

// RedisURL is the Redis URL (database 0).
func (c Config) RedisURL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", c.Ports.Redis) }

// FindRoot returns the first parent of dir (the working directory when empty)
// that holds go.mod.
func FindRoot(dir string) (string, error) {
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("find the repository root: %w", err)
		}
		dir = wd
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find the repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}
