package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/wire"
	"github.com/wikiflow/wikiflow/replay"
	"github.com/wikiflow/wikiflow/replay/rebuild"
)

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func runReplay(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	var c common
	cfg := replay.DefaultConfig()
	f := newFlags("replay", "Read history back from the JetStream log and write it out: NDJSON (the raw events, one per\nline, default), a table, or SSE frames laid out like Wikimedia's. Select by time, sequence,\nwiki, type and bot flag; --follow goes on with live events. A summary goes to stderr.", `
Times select by when an event entered the log: a duration back from now (15m), an RFC 3339
time or Unix milliseconds.

Examples:
  wikiflow replay --since 10m --format table
  wikiflow replay --wiki enwiki --type edit --bot false | jq -r .title
  wikiflow replay --since 2026-11-29T08:00:00Z --until 2026-11-29T09:00:00Z > hour.ndjson
  wikiflow replay --format sse --follow          # an EventStreams-compatible feed on stdout`, getenv, stderr)
	log, err := c.parseLogged(f, args, stderr, func(f *cli.Flags) { replay.Flags(f, &cfg) }, func() error { return cfg.Validate() })
	if err != nil {
		return err
	}
	var progress io.Writer
	if !isTerminal(stdout) && isTerminal(stderr) {
		progress = stderr
	}
	sum, err := replay.New(cfg, log, progress).Run(ctx, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, sum.String())
	return nil
}

func runRebuild(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	var c common
	cfg := rebuild.DefaultConfig()
	f := newFlags("rebuild", "Rebuild every counter from the JetStream log into a fresh projection namespace, counted as\nthe live aggregate counts, while live ingestion goes on. When the rebuilt counters\nequal the live ones at the same watermark, readers are switched to them atomically and\nthe old namespace is removed. The API never serves a half-built projection. Buckets the\nlive projection has already let expire are not rebuilt; a rebuild that fails removes its\nnamespace. Memory stays under a soft 80 MiB limit unless GOMEMLIMIT is set.", `
A sharded projection (aggregates run with --shard k/N) is rebuilt shard by shard:
--shard k/N rebuilds shard k from the shard mirror <stream>_S<N> with the filters of
its live consumers, verifies it against shard k's live counters and switches shard k's
pointer only; --shard all does so for every shard in turn (a shard that fails or
differs keeps its pointer, the others go on) and prints a line per shard and a summary.
Without --shard a sharded projection is refused, as is an N other than its recorded
shard count. --redis-url with several nodes, or --redis-cluster, reads a Redis Cluster.

Examples:
  wikiflow rebuild                    # rebuild, verify, switch, drop the old namespace
  wikiflow rebuild --switch=false     # build only, to compare
  wikiflow rebuild --force            # switch even if the counts differ (e.g. after retention dropped events)
  wikiflow rebuild --shard all        # every shard of a sharded projection, one after the other
  wikiflow rebuild --shard 1/3 --force --redis-url redis://10.0.0.1:7000,redis://10.0.0.2:7000`, getenv, stderr)
	log, err := c.parseLogged(f, args, stderr, func(f *cli.Flags) { rebuild.Flags(f, &cfg) }, func() error { return cfg.Validate() })
	if err != nil {
		return err
	}
	var progress io.Writer
	if isTerminal(stderr) {
		progress = stderr
	}
	defer tuneGC(getenv, 0)()
	results, err := rebuild.New(cfg, log, progress).Run(ctx)
	if cfg.Shard != rebuild.ShardAll {
		if err != nil {
			return err
		}
		printRebuilt(stdout, "", results[0])
		return nil
	}
	built, switched := 0, 0
	for _, res := range results {
		if res.To != "" {
			printRebuilt(stdout, fmt.Sprintf("shard %d/%d: ", res.Shard, res.Shards), res)
		}
		if res.Elapsed > 0 {
			built++
		}
		if res.Switched {
			switched++
		}
	}
	if len(results) > 0 {
		fmt.Fprintf(stdout, "shards: %d of %d rebuilt, %d switched\n", built, results[0].Shards, switched)
	}
	return err
}

// printRebuilt writes what a rebuild (of one shard) did, each line starting
// with prefix.
func printRebuilt(w io.Writer, prefix string, res rebuild.Result) {
	fmt.Fprintf(w, "%srebuilt %d events into namespace %s in %s (%.0f events/s)\n", prefix, res.Events, res.To, res.Elapsed.Round(time.Millisecond), float64(res.Events)/res.Elapsed.Seconds())
	if res.Partial {
		fmt.Fprintf(w, "%spartial: retention had dropped older events; it counts from %s\n", prefix, res.PartialFrom.Format(time.RFC3339))
	}
	switch {
	case res.Switched && len(res.Differences) > 0:
		fmt.Fprintf(w, "%sswitched from %s despite %d differences (--force)\n", prefix, res.From, len(res.Differences))
	case res.Switched:
		fmt.Fprintf(w, "%sverified equal to %s at the same watermark; readers switched to %s\n", prefix, res.From, res.To)
	default:
		fmt.Fprintf(w, "%snot switched: readers still use %s\n", prefix, res.From)
	}
	if res.Dropped {
		fmt.Fprintf(w, "%sremoved the old namespace %s\n", prefix, res.From)
	}
}

func runStatus(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	var (
		c            common
		natsCfg      brokers.NATS
		redisCfg     brokers.Redis
		stream, base string
	)
	f := newFlags("status", "Show the JetStream log (retention, first/last sequence and time), its consumers and the\nRedis projection (current namespace, watermarks, freshness).", "", getenv, stderr)
	c.flags(f, false)
	brokers.NATSFlags(f, &natsCfg)
	brokers.RedisFlags(f, &redisCfg)
	f.String(&stream, "stream", "WIKIFLOW_STREAM", wire.DefaultStream, "JetStream stream")
	f.String(&base, "hash", "WIKIFLOW_HASH", wire.DefaultHash, "base name of the projection")
	validStream := func() error {
		if err := wire.ValidStreamName(stream); err != nil {
			return fmt.Errorf("stream: %w", err)
		}
		return nil
	}
	if err := parse(f, args, validStream); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	var errs []error

	nc, err := natsCfg.Connect("status")
	if err != nil {
		errs = append(errs, err)
	} else {
		defer nc.Close()
		if err := streamStatus(ctx, tw, nc, stream); err != nil {
			errs = append(errs, err)
		}
	}
	rc, err := redisCfg.Client()
	if err != nil {
		errs = append(errs, err)
	} else {
		defer rc.Close()
		store := projection.NewStore(rc, base)
		cur, err := store.Current(ctx)
		if err != nil {
			errs = append(errs, err)
		} else {
			meta, err := store.Meta(ctx, cur)
			if err != nil {
				errs = append(errs, err)
			}
			wms, _ := rc.HGetAll(ctx, store.Keys(cur).Watermarks()).Result()
			fmt.Fprintf(tw, "\nPROJECTION\t%s (hash %s)\n", cur, base)
			fmt.Fprintf(tw, "  events\t%d\n", meta.Events)
			if !meta.AsOf.IsZero() {
				fmt.Fprintf(tw, "  as of (event time)\t%s\n", meta.AsOf.Format(time.RFC3339))
			}
			if !meta.Updated.IsZero() {
				fmt.Fprintf(tw, "  updated\t%s (%s ago)\n", meta.Updated.Format(time.RFC3339), time.Since(meta.Updated).Round(time.Second))
			}
			if v := meta.Fields[projection.MetaPartialFrom]; v != "" {
				fmt.Fprintf(tw, "  partial from\t%s\n", msTime(v))
			}
			names := make([]string, 0, len(wms))
			for n := range wms {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				fmt.Fprintf(tw, "  watermark %s\tseq %s\n", n, wms[n])
			}
		}
	}
	return errors.Join(errs...)
}

func msTime(v string) string {
	var ms int64
	fmt.Sscan(v, &ms)
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func streamStatus(ctx context.Context, tw io.Writer, nc *nats.Conn, stream string) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w (has the bridge run yet?)", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	s, cfg := info.State, info.Config
	fmt.Fprintf(tw, "STREAM\t%s (%s)\n", cfg.Name, strings.Join(cfg.Subjects, ", "))
	fmt.Fprintf(tw, "  retention\tmax age %s, max bytes %s, duplicate window %s\n", age(cfg.MaxAge), size(cfg.MaxBytes), cfg.Duplicates)
	fmt.Fprintf(tw, "  messages\t%d (%s)\n", s.Msgs, size(int64(s.Bytes)))
	if s.Msgs > 0 {
		fmt.Fprintf(tw, "  first\tseq %d at %s\n", s.FirstSeq, s.FirstTime.UTC().Format(time.RFC3339))
		fmt.Fprintf(tw, "  last\tseq %d at %s\n", s.LastSeq, s.LastTime.UTC().Format(time.RFC3339))
	}
	lister := st.ListConsumers(ctx)
	for ci := range lister.Info() {
		fmt.Fprintf(tw, "  consumer %s\tpending %d, ack pending %d, ack floor seq %d\n", ci.Name, ci.NumPending, ci.NumAckPending, ci.AckFloor.Stream)
	}
	return lister.Err()
}

func age(d time.Duration) string {
	if d == 0 {
		return "unlimited"
	}
	return d.String()
}

func size(b int64) string {
	switch {
	case b < 0:
		return "unlimited"
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", b>>10)
	}
}
