package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/aggregate"
	"github.com/wikiflow/wikiflow/api"
	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// webStack is the real pipeline behind the page: an embedded nats-server with the
// stream, the live aggregate applying it into the real Redis, and the API on a
// port of its own that the test can stop and start again.
type webStack struct {
	t        *testing.T
	natsURL  string
	js       jetstream.JetStream
	redisURL string
	store    *projection.Store
	base     string
	seq      uint64 // events published so far (= the stream's last sequence)
	copies   int    // recording copies handed out so far (for unique meta.ids)
	// onPublish, when set, hears every event published (by meta.id).
	onPublish func(id string, raw []byte)

	addr      string
	apiCancel context.CancelFunc
	apiDone   chan error
}

func newWebStack(t *testing.T) *webStack {
	t.Helper()
	rc := testenv.Redis(t)
	s := &webStack{t: t, redisURL: testenv.RedisURL(t), base: testenv.Prefix(t, rc)}
	s.store = projection.NewStore(rc, s.base)
	s.natsURL, _ = testenv.NATS(t)
	js, err := jetstream.New(testenv.Connect(t, s.natsURL))
	if err != nil {
		t.Fatal(err)
	}
	s.js = js
	cfg := jetstream.StreamConfig{Name: wire.DefaultStream, Subjects: []string{wire.SubjectAll}, Storage: jetstream.FileStorage, DenyDelete: true, DenyPurge: true}
	if _, err := js.CreateStream(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	acfg := aggregate.DefaultConfig()
	acfg.NATS.URL = s.natsURL
	acfg.Redis.URL = s.redisURL
	acfg.Base = s.base
	runAggregate(t, acfg)
	return s
}

// recorded returns n events of the bundled recording (cycled, each copy with
// fresh meta.ids), their times spread evenly from first to last.
func (s *webStack) recorded(n int, first, last time.Time) [][]byte {
	times := make([]time.Time, n)
	for i := range times {
		times[i] = first
		if n > 1 {
			times[i] = first.Add(time.Duration(int64(last.Sub(first)) * int64(i) / int64(n-1)))
		}
	}
	return s.recordedAt(times)
}

// recordedAt returns one recorded event (cycled, fresh meta.id) per time.
func (s *webStack) recordedAt(times []time.Time) [][]byte {
	s.t.Helper()
	recs := recording.Events()
	out := make([][]byte, len(times))
	for i, at := range times {
		k := s.copies + i
		out[i] = rewrite(s.t, recs[k%len(recs)].Data, at, fmt.Sprintf("web-%d", k))
	}
	s.copies += len(times)
	return out
}

// wavy returns n times from first to last whose rate per step rises and falls
// (two slow waves), as a real feed's does over a day or an hour.
func wavy(n int, first, last time.Time, step time.Duration) []time.Time {
	buckets := int(last.Sub(first) / step)
	weights := make([]float64, buckets)
	var sum float64
	for i := range weights {
		x := float64(i)
		weights[i] = 1 + 0.35*math.Sin(x/3.1) + 0.2*math.Sin(x/1.3+1)
		sum += weights[i]
	}
	out := make([]time.Time, 0, n)
	for i, w := range weights {
		k := int(math.Round(float64(n) * w / sum))
		if i == buckets-1 {
			k = n - len(out)
		}
		start := first.Add(time.Duration(i) * step)
		for j := 0; j < k && len(out) < n; j++ {
			out = append(out, start.Add(step*time.Duration(j)/time.Duration(k)))
		}
	}
	return out
}

// rewrite gives a recorded event a new meta.dt (and timestamp) and meta.id,
// leaving every other field as recorded.
func rewrite(t *testing.T, raw []byte, at time.Time, id string) []byte {
	t.Helper()
	var top map[string]json.RawMessage
	var meta map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(top["meta"], &meta); err != nil {
		t.Fatal(err)
	}
	meta["dt"], _ = json.Marshal(at.UTC().Format("2006-01-02T15:04:05.000Z"))
	meta["id"], _ = json.Marshal(id)
	top["meta"], _ = json.Marshal(meta)
	top["timestamp"] = json.RawMessage(strconv.FormatInt(at.Unix(), 10))
	b, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publish stores events in the stream as the bridge does (subject per wiki and
// type, Nats-Msg-Id = meta.id), checking every acknowledgment.
func (s *webStack) publish(evs [][]byte) {
	s.t.Helper()
	if err := s.tryPublish(evs); err != nil {
		s.t.Fatal(err)
	}
}

// tryPublish is publish for other goroutines than the test's.
func (s *webStack) tryPublish(evs [][]byte) error {
	futures := make([]jetstream.PubAckFuture, 0, len(evs))
	for _, raw := range evs {
		ev, err := event.Parse(raw)
		if err != nil {
			return err
		}
		m := nats.NewMsg(ev.Subject(wire.SubjectPrefix))
		m.Data = raw
		m.Header.Set(nats.MsgIdHdr, ev.ID)
		fu, err := s.js.PublishMsgAsync(m, jetstream.WithStallWait(30*time.Second))
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		futures = append(futures, fu)
		if s.onPublish != nil {
			s.onPublish(ev.ID, raw)
		}
	}
	for _, fu := range futures {
		select {
		case ack := <-fu.Ok():
			if ack.Duplicate {
				return fmt.Errorf("message %d is a duplicate", ack.Sequence)
			}
			s.seq = max(s.seq, ack.Sequence)
		case err := <-fu.Err():
			return fmt.Errorf("publish: %w", err)
		case <-time.After(30 * time.Second):
			return errors.New("publish: no ack in 30s")
		}
	}
	return nil
}

// waitApplied waits until the aggregate has applied everything published.
func (s *webStack) waitApplied() {
	s.t.Helper()
	ctx := context.Background()
	consumer := aggregate.DefaultConfig().Consumer
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if ns, err := s.store.Current(ctx); err == nil {
			if wm, err := s.store.Watermark(ctx, ns, consumer); err == nil && wm >= s.seq {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("the aggregate did not apply sequence %d in 60s", s.seq)
}

// startAPI runs the API on addr ("127.0.0.1:0" for a free port) until stopAPI.
func (s *webStack) startAPI(addr string) {
	s.t.Helper()
	cfg := api.DefaultConfig()
	cfg.Addr = addr
	cfg.Redis.URL = s.redisURL
	cfg.Base = s.base
	cfg.Events.NATS.URL = s.natsURL
	srv, err := api.New(cfg, logger(s.t))
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.apiCancel, s.apiDone = cancel, make(chan error, 1)
	go func() { s.apiDone <- srv.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Addr() == nil {
		select {
		case err := <-s.apiDone:
			s.t.Fatalf("api on %s: %v", addr, err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatal("the api did not listen in 10s")
		}
	}
	s.addr = srv.Addr().String()
}

// stopAPI shuts the API down and waits until it has stopped.
func (s *webStack) stopAPI() {
	s.t.Helper()
	if s.apiCancel == nil {
		return
	}
	s.apiCancel()
	s.apiCancel = nil
	if err := <-s.apiDone; err != nil {
		s.t.Errorf("api: %v", err)
	}
}

func (s *webStack) url(path string) string { return "http://" + s.addr + path }

// getJSON reads an API document with net/http and encoding/json.
func (s *webStack) getJSON(path string, v any) {
	s.t.Helper()
	resp, err := http.Get(s.url(path))
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = errors.New(resp.Status + ": " + string(body))
	}
	if err == nil {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
}

// windowStats is the part of a /stats body the page shows.
type windowStats struct {
	Stats            map[string]int64 `json:"stats"`
	Total            int64            `json:"total"`
	BotShare         float64          `json:"bot_share"`
	EditsPerMinute   float64          `json:"edits_per_minute"`
	FreshnessSeconds *float64         `json:"freshness_seconds"`
	AsOf             *string          `json:"as_of"`
}
