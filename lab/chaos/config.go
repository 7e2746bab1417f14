package chaos

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/stack"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// Config configures one chaos run.
type Config struct {
	// Bin is the wikiflow binary the run drives (required).
	Bin string
	// Topology is single (one node of each broker, default) or cluster (3 Kafka
	// nodes, 3 nats-servers, a Redis Cluster of 3 masters and 3 replicas, 3
	// aggregate shards; faults aimed at the leaders, see cluster.go).
	Topology string
	// LeaderKills is how many times, with Topology cluster, each kind of leader
	// is killed with SIGKILL and restarted: the JetStream stream leader (every
	// other time the shard mirror's), the Kafka node leading the most partitions,
	// the active KRaft controller and a Redis master (default 5).
	LeaderKills int
	// Root is the repository root, where stack/kafka/server.properties lives
	// (default: the first parent of the working directory holding go.mod).
	Root string
	// Home is the run folder: logs, configuration and broker data (default
	// <Root>/.wikiflow/chaos-<pid>).
	Home string
	// NATSServer is the nats-server binary (default <Root>/.wikiflow/bin/nats-server,
	// built from tools/go.mod when missing).
	NATSServer string
	// KafkaLibs is the folder of the Kafka jars (default
	// ${XDG_CACHE_HOME:-$HOME/.cache}/wikiflow/kafka-<stack.KafkaVersion>/libs, the
	// native stack's cache).
	KafkaLibs string
	// BasePort is the first of the block of consecutive ports the run uses; when one
	// of them is busy the next block of 100 is tried (default 21000).
	BasePort int
	// Seed drives the fault schedule and the generator (default: the current time).
	Seed int64
	// Speed is the emulator's pace factor for the recording: 1 = its recorded pace,
	// about 51 s (default 1).
	Speed float64
	// GenCount is the number of generated events written to Kafka (default 100000).
	GenCount int
	// GenRate is the generator's events per second (default 500).
	GenRate float64
	// Kills is how many times each of ingest, bridge and aggregate is killed with
	// SIGKILL (default 10).
	Kills int
	// MaxRestartDelay bounds the random delay before a killed process is restarted
	// (default 2s).
	MaxRestartDelay time.Duration
	// BrokerRestarts enables the broker faults: Kafka and NATS restarted cleanly;
	// Redis restarted cleanly once, killed with SIGKILL once, and killed once more
	// with the last second of its AOF dropped, as a machine crash would lose it
	// with appendfsync everysec; and the crash (see crash.go): NATS, Redis, bridge
	// and aggregate killed at once, JetStream's last CrashLoss and Redis's last
	// second dropped (default true).
	BrokerRestarts bool
	// CrashLoss is how much of JetStream's last writes the crash fault drops: the
	// store goes back to its state this long before the crash (default 3s, more
	// than Redis's second of AOF, so that the aggregate's watermark is most often
	// left above the stream's end).
	CrashLoss time.Duration
	// NATSSyncInterval is nats-server's JetStream sync_interval: "always" (default,
	// as the native stack) or a duration. The crash fault drops JetStream's tail
	// whatever it is, as an OS crash would with nats-server's default of 2m.
	NATSSyncInterval string
	// Seconds enables the second bridge and the second aggregate (default true).
	Seconds bool
	// SecondFor is how long the second bridge and the second aggregate run (default 20s).
	SecondFor time.Duration
	// DrainTimeout bounds the wait for the pipeline to drain once the faults are
	// over (default 3m).
	DrainTimeout time.Duration
	// Hash is the projection base name: the legacy domain -> count hash (default
	// wikimedia_stats).
	Hash string
	// KeepData keeps the brokers' data in Home after a successful run (default
	// false: only the logs stay).
	KeepData bool
	// Progress receives the run's progress lines (default os.Stderr; io.Discard
	// silences them).
	Progress io.Writer
}

// DefaultConfig returns the full run: the recording at its recorded pace, 100,000
// generated events at 500/s, 10 kills of each process and every broker fault.
func DefaultConfig() Config {
	return Config{
		BasePort:         21000,
		Seed:             time.Now().UnixNano() % 1_000_000_000,
		Speed:            1,
		GenCount:         100_000,
		GenRate:          500,
		Kills:            10,
		MaxRestartDelay:  2 * time.Second,
		BrokerRestarts:   true,
		Seconds:          true,
		SecondFor:        20 * time.Second,
		CrashLoss:        3 * time.Second,
		NATSSyncInterval: "always",
		DrainTimeout:     3 * time.Minute,
		Hash:             wire.DefaultHash,
		Topology:         "single",
		LeaderKills:      5,
	}
}

// ClusterConfig returns the full cluster run: the recording at its recorded
// pace, 60,000 generated events at 300/s, 5 kills of each process and 5 of each
// kind of leader.
func ClusterConfig() Config {
	c := DefaultConfig()
	c.Topology = "cluster"
	c.BasePort = 23000
	c.GenCount = 60_000
	c.GenRate = 300
	c.Kills = 5
	c.DrainTimeout = 5 * time.Minute
	return c
}

// ClusterSmallConfig returns the short cluster run of the test suite: the
// recording four times faster, 4,000 generated events, 2 kills of each process
// and 2 of each kind of leader.
func ClusterSmallConfig() Config {
	c := ClusterConfig()
	c.BasePort = 24000
	c.Speed = 4
	c.GenCount = 4_000
	c.GenRate = 100
	c.Kills = 2
	c.LeaderKills = 2
	c.DrainTimeout = 3 * time.Minute
	return c
}

// SmallConfig returns the short run of the test suite: the recording four times
// faster, 5,000 generated events, 3 kills of each process, every broker fault once.
func SmallConfig() Config {
	c := DefaultConfig()
	c.BasePort = 22000
	c.Speed = 4
	c.GenCount = 5_000
	c.GenRate = 100
	c.Kills = 3
	c.SecondFor = 8 * time.Second
	c.DrainTimeout = 2 * time.Minute
	return c
}

// Flags registers the run's flags with their environment fallbacks.
func Flags(f *cli.Flags, c *Config) {
	f.String(&c.Bin, "bin", "WIKIFLOW_CHAOS_BIN", c.Bin, "the wikiflow binary to drive")
	f.String(&c.Topology, "topology", "WIKIFLOW_CHAOS_TOPOLOGY", c.Topology, "single (one node of each broker) or cluster (3 Kafka, 3 NATS, a Redis Cluster of 6, 3 aggregate shards; leaders killed)")
	f.Int(&c.LeaderKills, "leader-kills", "WIKIFLOW_CHAOS_LEADER_KILLS", c.LeaderKills, "with --topology cluster: SIGKILLs of each kind of leader (stream, partitions, controller, Redis master)")
	f.String(&c.Root, "root", "WIKIFLOW_CHAOS_ROOT", c.Root, "repository root (default: found from the working directory)")
	f.String(&c.Home, "home", "WIKIFLOW_CHAOS_HOME", c.Home, "run folder (default <root>/.wikiflow/chaos-<pid>)")
	f.Int(&c.BasePort, "base-port", "WIKIFLOW_CHAOS_BASE_PORT", c.BasePort, "first port of the run's block of ports")
	f.Int64(&c.Seed, "seed", "WIKIFLOW_CHAOS_SEED", c.Seed, "seed of the fault schedule and of the generator")
	f.Float64(&c.Speed, "speed", "WIKIFLOW_CHAOS_SPEED", c.Speed, "emulator pace of the recording (1 = recorded pace, 0 = as fast as possible)")
	f.Int(&c.GenCount, "gen-count", "WIKIFLOW_CHAOS_GEN_COUNT", c.GenCount, "generated events written to Kafka")
	f.Float64(&c.GenRate, "gen-rate", "WIKIFLOW_CHAOS_GEN_RATE", c.GenRate, "generated events per second")
	f.Int(&c.Kills, "kills", "WIKIFLOW_CHAOS_KILLS", c.Kills, "SIGKILLs of each of ingest, bridge and aggregate")
	f.Duration(&c.MaxRestartDelay, "max-restart-delay", "WIKIFLOW_CHAOS_MAX_RESTART_DELAY", c.MaxRestartDelay, "largest random delay before a killed process is restarted")
	f.Bool(&c.BrokerRestarts, "broker-restarts", "WIKIFLOW_CHAOS_BROKER_RESTARTS", c.BrokerRestarts, "restart Kafka, NATS and Redis (Redis also with SIGKILL, once losing its last second of AOF), and crash NATS and Redis together losing their tails")
	f.Duration(&c.CrashLoss, "crash-loss", "WIKIFLOW_CHAOS_CRASH_LOSS", c.CrashLoss, "how much of JetStream's last writes the crash drops")
	f.String(&c.NATSSyncInterval, "nats-sync-interval", "WIKIFLOW_CHAOS_NATS_SYNC_INTERVAL", c.NATSSyncInterval, "nats-server's JetStream sync_interval: always or a duration")
	f.Bool(&c.Seconds, "seconds", "WIKIFLOW_CHAOS_SECONDS", c.Seconds, "run a second bridge and a second aggregate for a while")
	f.Duration(&c.SecondFor, "second-for", "WIKIFLOW_CHAOS_SECOND_FOR", c.SecondFor, "how long the second bridge and aggregate run")
	f.Duration(&c.DrainTimeout, "drain-timeout", "WIKIFLOW_CHAOS_DRAIN_TIMEOUT", c.DrainTimeout, "longest wait for the pipeline to drain after the faults")
	f.String(&c.Hash, "hash", "WIKIFLOW_CHAOS_HASH", c.Hash, "projection base name (the legacy domain -> count hash)")
	f.Bool(&c.KeepData, "keep-data", "WIKIFLOW_CHAOS_KEEP_DATA", c.KeepData, "keep the brokers' data after a successful run")
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.Bin == "" {
		errs = append(errs, errors.New("bin: the wikiflow binary is required"))
	} else if st, err := os.Stat(c.Bin); err != nil || st.IsDir() {
		errs = append(errs, fmt.Errorf("bin: %q is not a file", c.Bin))
	}
	if c.Topology != "single" && c.Topology != "cluster" {
		errs = append(errs, fmt.Errorf("topology: must be single or cluster, got %q", c.Topology))
	}
	if c.LeaderKills < 0 {
		errs = append(errs, fmt.Errorf("leader-kills: must be >= 0, got %d", c.LeaderKills))
	}
	if c.BasePort < 1024 || c.BasePort > 65000 {
		errs = append(errs, fmt.Errorf("base-port: must be in [1024, 65000], got %d", c.BasePort))
	}
	if c.Speed < 0 {
		errs = append(errs, fmt.Errorf("speed: must be >= 0, got %v", c.Speed))
	}
	if c.GenCount <= 0 {
		errs = append(errs, fmt.Errorf("gen-count: must be positive, got %d", c.GenCount))
	}
	if c.GenRate < 0 {
		errs = append(errs, fmt.Errorf("gen-rate: must be >= 0, got %v", c.GenRate))
	}
	if c.Kills < 0 {
		errs = append(errs, fmt.Errorf("kills: must be >= 0, got %d", c.Kills))
	}
	if c.MaxRestartDelay < 0 || c.SecondFor < 0 {
		errs = append(errs, errors.New("max-restart-delay and second-for must not be negative"))
	}
	if c.CrashLoss < time.Second {
		errs = append(errs, fmt.Errorf("crash-loss: must be at least 1s (Redis loses one second), got %v", c.CrashLoss))
	}
	if _, err := time.ParseDuration(c.NATSSyncInterval); err != nil && c.NATSSyncInterval != "always" {
		errs = append(errs, fmt.Errorf("nats-sync-interval: %q is neither always nor a duration", c.NATSSyncInterval))
	}
	if c.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("drain-timeout: must be positive, got %v", c.DrainTimeout))
	}
	if c.Hash == "" {
		errs = append(errs, errors.New("hash: must not be empty"))
	}
	return errors.Join(errs...)
}

// withDefaults fills the paths that depend on the machine.
func (c Config) withDefaults() (Config, error) {
	if c.Root == "" {
		root, err := FindRoot()
		if err != nil {
			return c, err
		}
		c.Root = root
	}
	bin, err := filepath.Abs(c.Bin)
	if err != nil {
		return c, fmt.Errorf("bin: %w", err)
	}
	c.Bin = bin
	if c.Home == "" {
		c.Home = filepath.Join(c.Root, ".wikiflow", fmt.Sprintf("chaos-%d", os.Getpid()))
	}
	if c.NATSServer == "" {
		c.NATSServer = filepath.Join(c.Root, ".wikiflow", "bin", "nats-server")
	}
	if c.KafkaLibs == "" {
		cache, err := stack.CacheDir(os.Getenv)
		if err != nil {
			return c, fmt.Errorf("kafka libs: %w", err)
		}
		c.KafkaLibs = filepath.Join(cache, "kafka-"+stack.KafkaVersion, "libs")
	}
	if c.Progress == nil {
		c.Progress = os.Stderr
	}
	return c, nil
}

// FindRoot returns the first parent of the working directory holding go.mod.
func FindRoot() (string, error) { return stack.FindRoot("") }
