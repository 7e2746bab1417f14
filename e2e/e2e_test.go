package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wikiflow/wikiflow/aggregate"
	"github.com/wikiflow/wikiflow/api"
	"github.com/wikiflow/wikiflow/bridge"
	"github.com/wikiflow/wikiflow/ingest"
	"github.com/wikiflow/wikiflow/internal/emulator"
	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// expectedCounts counts the recording per meta.domain with encoding/json, apart
// from the pipeline's own decoder: canaries dropped, each meta.id once.
func expectedCounts(t *testing.T) (map[string]int64, int64) {
	t.Helper()
	seen := map[string]bool{}
	counts := map[string]int64{}
	var total int64
	sc := bufio.NewScanner(bytes.NewReader(recording.NDJSON()))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev struct {
			Meta struct{ ID, Domain string } `json:"meta"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("recording line: %v", err)
		}
		if ev.Meta.Domain == "canary" || seen[ev.Meta.ID] {
			continue
		}
		seen[ev.Meta.ID] = true
		counts[ev.Meta.Domain]++
		total++
	}
	return counts, total
}

func logger(t *testing.T) *slog.Logger {
	if testing.Verbose() && os.Getenv("WIKIFLOW_TEST_LOGS") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type statsResponse struct {
	Stats map[string]int64 `json:"stats"`
	Total int64            `json:"total"`
}

func getStats(t *testing.T, app interface {
	Test(*http.Request, ...int) (*http.Response, error)
}) (statsResponse, error) {
	req := httptest.NewRequest(http.MethodGet, "/stats", nil)
	resp, err := app.Test(req, 5000)
	if err != nil {
		return statsResponse{}, err
	}
	defer resp.Body.Close()
	var s statsResponse
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return s, errors.New(resp.Status + ": " + string(b))
	}
	err = json.NewDecoder(resp.Body).Decode(&s)
	return s, err
}

// TestRecordingEndToEnd sends the whole bundled recording through the emulator
// (with canaries, malformed frames, cut connections and repeats on resume),
// ingest, Kafka, bridge, JetStream, aggregate and Redis, and checks GET /stats
// against counts computed independently from the file.
func TestRecordingEndToEnd(t *testing.T) {
	kafkaAddr := testenv.KafkaAddr(t)
	rc := testenv.Redis(t)
	redisURL := testenv.RedisURL(t)
	base := testenv.Prefix(t, rc)
	natsURL, _ := testenv.NATS(t)
	topic := testenv.Topic(t, kafkaAddr, 3)
	dlq := testenv.Topic(t, kafkaAddr, 1)
	log := logger(t)

	ecfg := emulator.DefaultConfig()
	ecfg.Speed = 0
	ecfg.CanaryEvery = 97
	ecfg.MalformedEvery = 500
	ecfg.CutEvery = 800
	ecfg.RepeatOnResume = 25
	emu, err := emulator.New(ecfg, emulator.RecordingSource(), log)
	if err != nil {
		t.Fatal(err)
	}
	feed := httptest.NewServer(emu.Handler())
	defer feed.Close()

	icfg := ingest.DefaultConfig()
	icfg.URL = feed.URL + ecfg.Path
	icfg.Kafka.Brokers = []string{kafkaAddr}
	icfg.Kafka.Topic = topic
	icfg.DeadLetterTopic = dlq
	icfg.BackoffMin, icfg.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	in, err := ingest.New(icfg, log)
	if err != nil {
		t.Fatal(err)
	}

	bcfg := bridge.DefaultConfig()
	bcfg.Kafka.Brokers = []string{kafkaAddr}
	bcfg.Kafka.Topic = topic
	bcfg.NATS.URL = natsURL
	br, err := bridge.New(bcfg, log)
	if err != nil {
		t.Fatal(err)
	}

	acfg := aggregate.DefaultConfig()
	acfg.NATS.URL = natsURL
	acfg.Redis.URL = redisURL
	acfg.Base = base
	ag, err := aggregate.New(acfg, log)
	if err != nil {
		t.Fatal(err)
	}

	pcfg := api.DefaultConfig()
	pcfg.Redis.URL = redisURL
	pcfg.Base = base
	srv, err := api.New(pcfg, log)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 3)
	for _, s := range []interface{ Run(context.Context) error }{in, br, ag} {
		go func() { errs <- s.Run(ctx) }()
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		for range 3 {
			if err := <-errs; err != nil {
				t.Errorf("stage stopped with %v", err)
			}
		}
	}
	defer stop()

	want, wantTotal := expectedCounts(t)
	deadline := time.Now().Add(120 * time.Second)
	var got statsResponse
	for time.Now().Before(deadline) {
		got, err = getStats(t, srv.App())
		if err == nil && got.Total >= wantTotal {
			break
		}
		select {
		case err := <-errs:
			t.Fatalf("a stage stopped early: %v", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
	// Duplicates that reach Kafka behind ingest's back (a retried batch, a second
	// ingest) must be removed by the later hops: write 50 recorded events again.
	dup := &kafka.Writer{Addr: kafka.TCP(kafkaAddr), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	var again []kafka.Message
	for _, rec := range recording.Events()[:50] {
		ev, err := event.Parse(rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		again = append(again, kafka.Message{Key: []byte(ev.Wiki), Value: rec.Data, Headers: []kafka.Header{{Key: wire.HeaderMetaID, Value: []byte(ev.ID)}}})
	}
	if err := dup.WriteMessages(context.Background(), again...); err != nil {
		t.Fatal(err)
	}
	dup.Close()
	// Let the duplicates (and any other straggler) go through every hop.
	time.Sleep(2 * time.Second)
	got, err = getStats(t, srv.App())
	if err != nil {
		t.Fatal(err)
	}
	stop()

	if got.Total != wantTotal {
		t.Errorf("total = %d, want %d", got.Total, wantTotal)
	}
	if len(got.Stats) != len(want) {
		t.Errorf("%d domains, want %d", len(got.Stats), len(want))
	}
	for d, n := range want {
		if got.Stats[d] != n {
			t.Errorf("%s: %d, want %d", d, got.Stats[d], n)
		}
	}
	for d := range got.Stats {
		if _, ok := want[d]; !ok {
			t.Errorf("unexpected domain %q (canary or malformed event counted?)", d)
		}
	}
	es := emu.Stats()
	is := in.Stats()
	t.Logf("emulator: %d frames, %d connections, %d canaries, %d malformed; ingest: %d published, %d duplicates skipped, %d canaries, %d dead-lettered; bridge: %d duplicates",
		es.Frames.Load(), es.Connections.Load(), es.Canaries.Load(), es.Malformed.Load(),
		is.Published.Load(), is.Duplicates.Load(), is.Canaries.Load(), is.DeadLettered.Load(), br.Stats().Duplicates.Load()+br.Stats().AlreadyBridged.Load())
	if es.Connections.Load() < 2 {
		t.Errorf("the feed was never cut (%d connections): the resume path was not exercised", es.Connections.Load())
	}
	if in.Stats().DeadLettered.Load() == 0 || in.Stats().Canaries.Load() == 0 {
		t.Errorf("malformed frames or canaries did not reach ingest: %d dead-lettered, %d canaries",
			in.Stats().DeadLettered.Load(), in.Stats().Canaries.Load())
	}
}
