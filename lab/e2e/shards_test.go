package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/aggregate"
	"github.com/wikiflow/wikiflow/api"
	"github.com/wikiflow/wikiflow/bridge"
	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// shardedQueries are the API answers compared between one aggregate and three.
var shardedQueries = []string{
	"/stats",
	"/stats?window=all&by=wiki",
	"/stats?window=1h&by=type",
	"/stats?window=24h&by=domain&bot=false",
	"/stats?window=15m&wiki=enwiki&by=type",
	"/stats?window=1h&by=namespace",
	"/stats/timeseries?window=1h",
	"/stats/timeseries?window=1h&by=who",
	"/stats/timeseries?window=15m&by=wiki&top=5",
	"/stats/top/pages?window=1h&top=10",
	"/stats/top/pages?window=24h&top=25",
	"/stats/top/pages?window=1h&wiki=enwiki&top=5",
	"/stats/top/editors?window=1h&top=10",
	"/stats/top/editors?window=24h&top=20",
}

// publishRecording publishes the bundled recording into a fresh stream created
// as the bridge creates it, and returns how many events the aggregate counts.
func publishRecording(t *testing.T, url string) int64 {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, bridge.DefaultConfig().StreamConfig()); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, r := range recording.Events() {
		ev, err := event.Parse(r.Data)
		if err != nil {
			continue
		}
		m := nats.NewMsg(ev.Subject(wire.SubjectPrefix))
		m.Data = r.Data
		m.Header.Set(jetstream.MsgIDHeader, ev.ID)
		ack, err := js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if !ack.Duplicate {
			n++
		}
	}
	return n
}

// runAggregate runs an aggregate until the test ends; the test fails if Run
// returns an error or does not return within 20 s of its cancellation.
func runAggregate(t *testing.T, cfg aggregate.Config) {
	t.Helper()
	a, err := aggregate.New(cfg, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	stop := testenv.Run(t, 20*time.Second, a.Run)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("aggregate %s: %v", cfg.Shard, err)
		}
	})
}

// waitEvents waits until the projection of base at redisURL counted n events.
func waitEvents(t *testing.T, redisURL, base string, n int64) {
	t.Helper()
	rc, err := brokers.Redis{URL: redisURL}.Universal()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	r := projection.NewReader(rc, base)
	deadline := time.Now().Add(60 * time.Second)
	for {
		h, err := r.Head(context.Background(), "", false)
		if err == nil && h.Meta.Events == n {
			return
		}
		if err == nil && h.Meta.Events > n || time.Now().After(deadline) {
			t.Fatalf("projection %s: %d events (%v), want %d", base, h.Meta.Events, err, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// apiAnswers asks an API server over base at redisURL every shardedQueries
// question, and returns the answers without their wall-clock fields.
func apiAnswers(t *testing.T, redisURL, base string) map[string]any {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Redis.URL, cfg.Base, cfg.StageMetrics = redisURL, base, nil
	s, err := api.New(cfg, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := map[string]any{}
	for _, q := range shardedQueries {
		resp, err := s.App().Test(httptest.NewRequest("GET", q, nil), 10_000)
		if err != nil {
			t.Fatalf("GET %s: %v", q, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", q, resp.StatusCode, body)
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("GET %s: %v", q, err)
		}
		delete(v, "updated_at")
		delete(v, "freshness_seconds")
		out[q] = v
	}
	return out
}

// TestShardedAggregateAnswersLikeOne counts the recording with one aggregate
// into a single Redis and with three shards (three instances, three consumers)
// into a single Redis and into a Redis Cluster of three masters, and asks the
// API the same questions of each.
func TestShardedAggregateAnswersLikeOne(t *testing.T) {
	natsURL, _ := testenv.NATS(t)
	n := publishRecording(t, natsURL)
	single := testenv.RedisURL(t)
	rdb := testenv.Redis(t)
	one := testenv.Prefix(t, rdb)
	cfg := aggregate.DefaultConfig()
	cfg.NATS.URL, cfg.Redis.URL, cfg.Base, cfg.BatchSize = natsURL, single, one, 500
	runAggregate(t, cfg)
	waitEvents(t, single, one, n)
	want := apiAnswers(t, single, one)
	for name, redisURL := range map[string]string{"redis": single, "cluster": testenv.RedisCluster(t)} {
		t.Run(name, func(t *testing.T) {
			base := testenv.Prefix(t, rdb) // unique, so that the two runs use distinct consumers' projections
			for k := range 3 {
				c := cfg
				c.Redis.URL, c.Base, c.Shard, c.BatchSize = redisURL, base, fmt.Sprintf("%d/3", k), 200
				c.Consumer = "aggregate-" + name
				runAggregate(t, c)
			}
			waitEvents(t, redisURL, base, n)
			checkLegacy(t, redisURL, base, name == "redis")
			got := apiAnswers(t, redisURL, base)
			for q, v := range want {
				if !reflect.DeepEqual(got[q], v) {
					t.Errorf("GET %s:\n got %v\nwant %v", q, got[q], v)
				}
			}
		})
	}
}

// checkLegacy checks that the shards keep the legacy hash on a single Redis
// (kept) and leave it alone on a cluster, where their scripts keep to their slot.
func checkLegacy(t *testing.T, redisURL, base string, kept bool) {
	t.Helper()
	rc, err := brokers.Redis{URL: redisURL}.Universal()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n, err := rc.HLen(context.Background(), base).Result()
	if err != nil {
		t.Fatal(err)
	}
	if (n > 0) != kept {
		t.Errorf("legacy hash %s has %d fields; want it kept: %v", base, n, kept)
	}
}
