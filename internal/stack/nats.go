package stack

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// NATSMaxConsumers is the consumers JetStream allows per stream: each
// /v2/stream/recentchange client of the API has its own (up to
// --events-max-clients, 1000), beside the aggregate's and the replays';
// nats-server allows 1000 unless told otherwise.
const NATSMaxConsumers = 2000

// NATS is one nats-server with JetStream.
type NATS struct {
	// Bin is the nats-server binary.
	Bin string
	// Name is the server's name.
	Name string
	// Port is the client port; MonitorPort (0: none) serves /healthz.
	Port, MonitorPort int
	// StoreDir is JetStream's folder; Conf the configuration file written for it.
	StoreDir, Conf string
	// SyncInterval is JetStream's sync_interval (empty: nats-server's default).
	SyncInterval string
	// MaxConsumers is the consumers allowed per stream (0: nats-server's default).
	MaxConsumers int
	// ClusterName, RoutePort and Routes (every node's route URL) make the server
	// one node of a cluster (RoutePort 0: none).
	ClusterName string
	RoutePort   int
	Routes      []string
}

// NATS returns the stack's nats-server.
func (c Config) NATS() NATS {
	return NATS{Bin: c.NATSServer, Name: c.NATSName, Port: c.Ports.NATS, MonitorPort: c.Ports.NATSMonitor,
		StoreDir: filepath.Join(c.DataDir(), "nats"), Conf: filepath.Join(c.RunDir(), "nats.conf"),
		SyncInterval: c.NATSSyncInterval, MaxConsumers: NATSMaxConsumers}
}

// Args is the server's command line.
func (n NATS) Args() []string {
	args := []string{n.Bin, "-n", n.Name, "-a", "127.0.0.1", "-p", strconv.Itoa(n.Port)}
	if n.MonitorPort > 0 {
		args = append(args, "-m", strconv.Itoa(n.MonitorPort))
	}
	return append(args, "-c", n.Conf)
}

// Prepare writes the configuration and creates the store. JetStream acknowledges
// a write before it is on disk; sync_interval bounds what an OS crash or power
// loss can take back (the command line has no flag for it).
func (n NATS) Prepare() error {
	if err := os.MkdirAll(n.StoreDir, 0o755); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(n.Conf), 0o755); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n", n.StoreDir)
	if n.SyncInterval != "" {
		if !syncInterval.MatchString(n.SyncInterval) {
			return fmt.Errorf("nats: sync interval %q is neither always nor a duration such as 1s", n.SyncInterval)
		}
		fmt.Fprintf(&b, "  sync_interval: %q\n", n.SyncInterval)
	}
	if n.MaxConsumers > 0 {
		fmt.Fprintf(&b, "  limits { default_max_consumers: %d }\n", n.MaxConsumers)
	}
	b.WriteString("}\n")
	if n.RoutePort > 0 {
		fmt.Fprintf(&b, "cluster {\n  name: %q\n  listen: \"127.0.0.1:%d\"\n  routes: [\n", n.ClusterName, n.RoutePort)
		for _, r := range n.Routes {
			fmt.Fprintf(&b, "    %q\n", r)
		}
		b.WriteString("  ]\n}\n")
	}
	if err := os.WriteFile(n.Conf, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	return nil
}

// EnsureNATSServer builds the nats-server pinned in <root>/tools/go.mod into bin
// when bin is missing or older than the pin.
func EnsureNATSServer(ctx context.Context, root, bin string, out io.Writer) error {
	mod, err := os.Stat(filepath.Join(root, "tools", "go.mod"))
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	if st, err := os.Stat(bin); err == nil && !st.IsDir() && !mod.ModTime().After(st.ModTime()) {
		return nil
	}
	if _, err := exec.LookPath("go"); err != nil {
		return fmt.Errorf("nats: go is not installed (needed to build nats-server)")
	}
	fmt.Fprintf(out, "nats: building nats-server %s from tools/go.mod into %s\n", NATSServerVersion, bin)
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	build.Dir = filepath.Join(root, "tools")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("nats: building nats-server failed: %w\n%s", err, b)
	}
	return nil
}

// Redis is one redis-server with an append-only file.
type Redis struct {
	// Port is the port on 127.0.0.1.
	Port int
	// Dir is the data folder.
	Dir string
	// Cluster makes it a Redis Cluster node (its nodes.conf in Dir).
	Cluster bool
	// BusPort is a cluster node's bus port (0: Redis's default, Port + 10000).
	BusPort int
}

// Redis returns the stack's redis-server.
func (c Config) Redis() Redis {
	return Redis{Port: c.Ports.Redis, Dir: filepath.Join(c.DataDir(), "redis")}
}

// Args is the server's command line: appendfsync everysec, no snapshots, the
// log on stdout.
func (r Redis) Args() []string {
	args := []string{"redis-server", "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--dir", r.Dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no", "--logfile", ""}
	if r.Cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(r.Dir, "nodes.conf"),
			"--cluster-node-timeout", "5000")
		if r.BusPort > 0 {
			args = append(args, "--cluster-port", strconv.Itoa(r.BusPort))
		}
	}
	return args
}

// Prepare creates the data folder.
func (r Redis) Prepare() error {
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}
