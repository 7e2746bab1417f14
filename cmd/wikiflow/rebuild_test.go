package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/aggregate"
	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// countedShards publishes the first n recorded events into a fresh stream and
// counts them with shards shard aggregates into a fresh projection; it returns
// the NATS URL and the projection's base name.
func countedShards(t *testing.T, n, shards int) (natsURL, base string) {
	t.Helper()
	natsURL, _ = testenv.NATS(t)
	base = testenv.Prefix(t, testenv.Redis(t))
	js, err := jetstream.New(testenv.Connect(t, natsURL))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: wire.DefaultStream, Subjects: []string{wire.SubjectAll}}); err != nil {
		t.Fatal(err)
	}
	for _, rec := range recording.Events()[:n] {
		ev, err := event.Parse(rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(ev.Subject(wire.SubjectPrefix))
		m.Data = rec.Data
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	var stops []func() error
	for k := range shards {
		cfg := aggregate.DefaultConfig()
		cfg.NATS.URL, cfg.Redis.URL, cfg.Base, cfg.Shard = natsURL, testenv.RedisURL(t), base, fmt.Sprintf("%d/%d", k, shards)
		a, err := aggregate.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		stops = append(stops, testenv.Run(t, 20*time.Second, a.Run))
	}
	names := make([]string, shards)
	for k := range names {
		names[k] = wire.ShardConsumer(aggregate.DefaultConsumer, k, shards)
	}
	testenv.WaitConsumed(t, js, wire.MirrorName(wire.DefaultStream, shards), uint64(n), names...)
	for _, stop := range stops {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	return natsURL, base
}

// TestRebuildShardsCommand runs `wikiflow rebuild` over a projection of three
// shards: without --shard, and with another shard count from the environment,
// it is refused naming the count and the command; --shard all rebuilds and
// switches every shard, a line per shard and a summary.
func TestRebuildShardsCommand(t *testing.T) {
	natsURL, base := countedShards(t, 600, 3)
	env := map[string]string{"WIKIFLOW_NATS_URL": natsURL, "WIKIFLOW_REDIS_URL": testenv.RedisURL(t), "WIKIFLOW_HASH": base}
	if _, _, err := runArgs([]string{"rebuild"}, env); err == nil || !strings.Contains(err.Error(), "has 3 shards") || !strings.Contains(err.Error(), "wikiflow rebuild --shard all") {
		t.Errorf("rebuild without --shard of 3 shards: %v", err)
	}
	env["WIKIFLOW_REBUILD_SHARD"] = "0/2"
	if _, _, err := runArgs([]string{"rebuild"}, env); err == nil || !strings.Contains(err.Error(), "not 2") {
		t.Errorf("rebuild --shard 0/2 of 3 shards: %v", err)
	}
	out, _, err := runArgs([]string{"rebuild", "--shard", "all", "--drop-after", "500ms"}, env)
	if err != nil {
		t.Fatal(err)
	}
	for k := range 3 {
		if want := fmt.Sprintf("shard %d/3: verified equal to live at the same watermark", k); !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	t.Log(out)
	if !strings.Contains(out, "shards: 3 of 3 rebuilt, 3 switched") {
		t.Errorf("the output lacks the summary:\n%s", out)
	}
	_, stderr, err := runArgs([]string{"rebuild", "--help"}, nil)
	if !errors.Is(err, cli.ErrHelp) || !strings.Contains(stderr, "--shard all") || !strings.Contains(stderr, "WIKIFLOW_REBUILD_SHARD") {
		t.Errorf("rebuild --help does not explain --shard (%v):\n%s", err, stderr)
	}
}
