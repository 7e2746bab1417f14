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
	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
	"github.com/wikiflow/wikiflow/lab/emulator"
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
	checkRoutes(t, srv.App())

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

type tester interface {
	Test(*http.Request, ...int) (*http.Response, error)
}

func getJSON(t *testing.T, app tester, path string, into any) {
	t.Helper()
	resp, err := app.Test(httptest.NewRequest(http.MethodGet, path, nil), 5000)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

// checkRoutes compares the windowed, grouped and top-N routes with figures computed
// from the recording with encoding/json, by event time as the API defines windows:
// the N minutes ending with the minute of the newest event.
func checkRoutes(t *testing.T, app tester) {
	type rec struct {
		Meta struct {
			ID, Domain, Dt string
		} `json:"meta"`
		Type, Title, User string
		Bot               bool
	}
	var evs []rec
	var newest time.Time
	sc := bufio.NewScanner(bytes.NewReader(recording.NDJSON()))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r rec
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, r)
		if dt, err := time.Parse(time.RFC3339, r.Meta.Dt); err == nil && dt.After(newest) {
			newest = dt
		}
	}
	lastMin := newest.Unix() / 60
	inWindow := func(r rec, minutes int64) bool {
		dt, _ := time.Parse(time.RFC3339, r.Meta.Dt)
		m := dt.Unix() / 60
		return minutes == 0 || (m > lastMin-minutes && m <= lastMin)
	}
	for _, w := range []struct {
		name    string
		minutes int64
	}{{"1m", 1}, {"5m", 5}, {"1h", 60}, {"24h", 1440}, {"all", 0}} {
		byType := map[string]int64{}
		var total, bots int64
		for _, r := range evs {
			if inWindow(r, w.minutes) {
				byType[r.Type]++
				total++
				if r.Bot {
					bots++
				}
			}
		}
		var got struct {
			Stats    map[string]int64 `json:"stats"`
			Total    int64            `json:"total"`
			BotShare float64          `json:"bot_share"`
		}
		getJSON(t, app, "/stats?by=type&window="+w.name, &got)
		if got.Total != total {
			t.Errorf("window %s: total %d, want %d", w.name, got.Total, total)
		}
		for typ, n := range byType {
			if got.Stats[typ] != n {
				t.Errorf("window %s: %s = %d, want %d", w.name, typ, got.Stats[typ], n)
			}
		}
		var humans struct {
			Total int64 `json:"total"`
		}
		getJSON(t, app, "/stats?bot=false&window="+w.name, &humans)
		if humans.Total != total-bots {
			t.Errorf("window %s: %d human edits, want %d", w.name, humans.Total, total-bots)
		}
	}
	// Top pages of the last hour.
	pages := map[string]int64{}
	for _, r := range evs {
		if inWindow(r, 60) {
			pages[r.Meta.Domain+"|"+r.Title]++
		}
	}
	var top struct {
		Items []struct {
			Domain, Title string
			Count         int64
		} `json:"items"`
	}
	getJSON(t, app, "/stats/top/pages?window=1h&top=5", &top)
	if len(top.Items) != 5 {
		t.Fatalf("top pages: %d items", len(top.Items))
	}
	for i, it := range top.Items {
		if want := pages[it.Domain+"|"+it.Title]; it.Count != want {
			t.Errorf("top page %d %s %q: %d, want %d", i, it.Domain, it.Title, it.Count, want)
		}
		for k, n := range pages {
			if n > top.Items[len(top.Items)-1].Count && !containsPage(top.Items, k) {
				t.Errorf("page %s (%d) is missing from the top 5", k, n)
			}
		}
	}
	// The time series of the last 5 minutes adds up to the 5m total.
	var series struct {
		Total []int64 `json:"total"`
	}
	getJSON(t, app, "/stats/timeseries?window=5m", &series)
	var sum, want int64
	for _, n := range series.Total {
		sum += n
	}
	for _, r := range evs {
		if inWindow(r, 5) {
			want++
		}
	}
	if len(series.Total) != 5 || sum != want {
		t.Errorf("timeseries 5m: %d points summing to %d, want 5 summing to %d", len(series.Total), sum, want)
	}
}

func containsPage(items []struct {
	Domain, Title string
	Count         int64
}, key string) bool {
	for _, it := range items {
		if it.Domain+"|"+it.Title == key {
			return true
		}
	}
	return false
}
