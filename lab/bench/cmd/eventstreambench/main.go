// Command eventstreambench measures GET /v2/stream/recentchange under many
// clients: a real `wikiflow api` process serving a private JetStream stream
// (nats-server embedded in this program) and the real Redis, first alone, then
// with N concurrent SSE clients while events are published at a live rate. It
// reports the API's resident memory before, with and after the clients, the
// latency of GET /stats meanwhile, and what the clients received, and writes the
// figures as JSON and as a Markdown table.
//
//	go run ./lab/bench/cmd/eventstreambench -clients 1000 -rate 50 -duration 30s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/wikiflow/wikiflow/internal/brokers"
)

// options are the measurement's settings.
type options struct {
	clients  int
	rate     float64
	duration time.Duration
	redisURL string
	bin      string
	outJSON  string
	outMD    string
	keepLogs bool
}

func main() {
	var o options
	fs := flag.NewFlagSet("eventstreambench", flag.ExitOnError)
	fs.IntVar(&o.clients, "clients", 1000, "concurrent SSE clients")
	fs.Float64Var(&o.rate, "rate", 50, "events published per second while the clients are connected")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long events are published with the clients connected")
	fs.StringVar(&o.redisURL, "redis-url", brokers.DefaultRedis, "Redis the API reads (its keys get a unique prefix, removed at the end)")
	fs.StringVar(&o.bin, "bin", "", "wikiflow binary to measure (default: go build ./cmd/wikiflow into a temporary folder)")
	fs.StringVar(&o.outJSON, "out-json", "lab/bench/eventstream.json", "JSON results")
	fs.StringVar(&o.outMD, "out-md", "lab/bench/eventstream.md", "Markdown results, for BENCHMARKS.md")
	fs.BoolVar(&o.keepLogs, "keep-logs", false, "keep the temporary folder with the processes' logs")
	_ = fs.Parse(os.Args[1:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "eventstreambench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if o.clients < 1 || o.rate <= 0 || o.duration <= 0 {
		return fmt.Errorf("clients, rate and duration must be positive")
	}
	tmp, err := os.MkdirTemp("", "eventstreambench-")
	if err != nil {
		return err
	}
	if o.keepLogs {
		logf("logs kept in %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	env, err := setup(ctx, o, tmp)
	if env != nil {
		defer env.close()
	}
	if err != nil {
		return err
	}
	res, err := measure(ctx, o, env)
	if err != nil {
		return err
	}
	if err := writeResults(o, res); err != nil {
		return err
	}
	fmt.Print(res.markdown())
	logf("wrote %s and %s", o.outJSON, o.outMD)
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s eventstreambench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// writeResults writes the JSON and Markdown files, creating their folders.
func writeResults(o options, r *results) error {
	for path, body := range map[string][]byte{o.outJSON: r.json(), o.outMD: []byte(r.markdown())} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, body, 0o644); err != nil {
			return err
		}
	}
	return nil
}
