// Command shardcost measures what one event costs the sharded aggregate: it
// publishes a backlog of distinct events into an embedded JetStream, counts it
// with N aggregate processes (wikiflow aggregate --shard k/N) into a fresh
// projection, and reports the CPU time of the aggregate processes, of Redis
// (INFO cpu) and of the embedded NATS server (this process, idle but for it),
// per event and per shard. Each aggregate process's CPU is read (from /proc)
// when its shard has counted its last event, before it idles; with N > 1 the
// shard mirror is created and filled before the aggregates start, and measured
// apart.
//
//	go run ./lab/bench/cmd/shardcost --redis-url redis://127.0.0.1:6379/0 --shards 1,3
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/wikiflow/wikiflow/internal/brokers"
)

type options struct {
	bin, redisURL, shards, out string
	events                     int
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "wikiflow binary (default: built into a temporary directory)")
	flag.StringVar(&o.redisURL, "redis-url", brokers.DefaultRedis, "Redis URL (a comma-separated list for a Redis Cluster)")
	flag.StringVar(&o.shards, "shards", "1,3", "shard counts to measure")
	flag.IntVar(&o.events, "events", 50_000, "events in the backlog")
	flag.StringVar(&o.out, "out", "", "also write the table as a Markdown report to this file (e.g. docs/shard-cost.md)")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "shardcost")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.bin == "" {
		o.bin = filepath.Join(dir, "wikiflow")
		if out, err := exec.CommandContext(ctx, "go", "build", "-p", "1", "-o", o.bin, "./cmd/wikiflow").CombinedOutput(); err != nil {
			return fmt.Errorf("build wikiflow: %v\n%s", err, out)
		}
	}
	b, err := newBacklog(ctx, dir, o.events)
	if err != nil {
		return err
	}
	defer b.close()
	var md strings.Builder
	line := func(s string) {
		fmt.Println(s)
		md.WriteString(s + "\n")
	}
	line("| shards | events | wall s | events/s | aggregate CPU µs/event (all shards) | per shard: aggregate µs per own event | Redis CPU µs/event (all nodes) | NATS server CPU µs/event (delivery) | NATS server CPU µs/event (filling the shard mirror) |")
	line("|---|---|---|---|---|---|---|---|---|")
	for _, s := range strings.Split(o.shards, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("shards: %q is not a count", s)
		}
		r, err := b.measure(ctx, o, n)
		if err != nil {
			return fmt.Errorf("%d shards: %w", n, err)
		}
		line(r.row())
	}
	if o.out == "" {
		return nil
	}
	head := fmt.Sprintf("Cost per event of the sharded aggregate, measured by `go run ./lab/bench/cmd/shardcost --shards %s --events %d` on %s "+
		"(%d CPUs, Redis at %s): separate `wikiflow aggregate --shard k/N` processes counting one backlog into a fresh projection; CPU time "+
		"per event, which carries over to other machines better than the wall-clock rate. This machine's 2 cores cannot show the speed-up "+
		"of more shards; the per-shard cost is what scales.\n\n",
		o.shards, o.events, time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), redactedHosts(o.redisURL))
	if err := os.WriteFile(o.out, []byte(head+md.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", o.out, err)
	}
	return nil
}

// redactedHosts lists the host:port of each Redis URL, without credentials.
func redactedHosts(urls string) string {
	var hosts []string
	for _, u := range strings.Split(urls, ",") {
		u = strings.TrimSpace(u)
		if i := strings.LastIndex(u, "@"); i >= 0 {
			u = u[i+1:]
		}
		u = strings.TrimPrefix(strings.TrimPrefix(u, "redis://"), "rediss://")
		host, _, _ := strings.Cut(u, "/")
		hosts = append(hosts, host)
	}
	return strings.Join(hosts, ", ")
}

// result is one measured configuration.
type result struct {
	shards         int
	events         int
	wall           time.Duration
	aggCPU         time.Duration   // all aggregate processes
	shardCPU       []time.Duration // per shard
	shardEvents    []int
	redisCPU, nats time.Duration
	mirror         time.Duration // filling the shard mirror (NATS server)
	shardRedis     []string      // on a cluster: each shard's master and its µs per own event
}

func perEvent(d time.Duration, n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(d.Microseconds())/float64(n), 'f', 1, 64)
}

// redisPerShard lists each shard's master and its CPU per event of the shard
// (a master holding several shards is counted for each).
func redisPerShard(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return " (per shard's master: " + strings.Join(s, ", ") + ")"
}

func (r result) row() string {
	var per []string
	for k := range r.shards {
		per = append(per, perEvent(r.shardCPU[k], r.shardEvents[k])+" ("+strconv.Itoa(r.shardEvents[k])+" ev)")
	}
	mirror := "-"
	if r.shards > 1 {
		mirror = perEvent(r.mirror, r.events)
	}
	return fmt.Sprintf("| %d | %d | %.2f | %.0f | %s | %s | %s | %s | %s |", r.shards, r.events, r.wall.Seconds(),
		float64(r.events)/r.wall.Seconds(), perEvent(r.aggCPU, r.events), strings.Join(per, ", "),
		perEvent(r.redisCPU, r.events)+redisPerShard(r.shardRedis), perEvent(r.nats, r.events), mirror)
}
