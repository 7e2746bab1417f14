package emulator

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/sse"
)

// sliceSource is a Source over literal events.
type sliceSource []struct {
	data string
	off  time.Duration
}

func (s sliceSource) Len() int                            { return len(s) }
func (s sliceSource) Event(i int) ([]byte, time.Duration) { return []byte(s[i].data), s[i].off }

// small returns n tiny events one second apart in event time and step apart in
// pacing, each with meta.id "id-<i>".
func small(n int, step time.Duration) sliceSource {
	src := make(sliceSource, n)
	base := time.Date(2026, 5, 5, 11, 17, 40, 0, time.UTC)
	for i := range src {
		dt := base.Add(time.Duration(i) * time.Second)
		src[i].data = `{"$schema":"/mediawiki/recentchange/1.0.0","meta":{"id":"id-` + string(rune('a'+i)) +
			`","dt":"` + dt.Format("2006-01-02T15:04:05.000Z") + `","domain":"en.wikipedia.org"},"timestamp":` +
			jsonInt(dt.Unix()) + `,"comment":"c` + string(rune('a'+i)) + `","wiki":"enwiki","type":"edit"}`
		src[i].off = time.Duration(i) * step
	}
	return src
}

func jsonInt(v int64) string { b, _ := json.Marshal(v); return string(b) }

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serve starts the emulator behind httptest and returns it with its stream URL.
func serve(t *testing.T, cfg Config, src Source) (*Server, string) {
	t.Helper()
	s, err := New(cfg, src, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	return s, ts.URL + cfg.Path
}

// testConfig is DefaultConfig served as fast as possible, with room for the
// streams a test leaves open until its cleanup.
func testConfig() Config {
	c := DefaultConfig()
	c.Speed = 0
	c.MaxConns = 16
	return c
}

// open requests url with the given headers; the body is closed at cleanup.
func open(t *testing.T, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "wikiflow-emulator-test (test@example.org)")
	for k, v := range hdr {
		req.Header[k] = []string{v}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// stream opens url, checks for 200 and returns a reader of its events.
func stream(t *testing.T, url string, hdr map[string]string) *sse.Reader {
	t.Helper()
	resp := open(t, url, hdr)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, body)
	}
	return sse.NewReader(resp.Body, 0)
}

// next reads n events.
func next(t *testing.T, r *sse.Reader, n int) []sse.Event {
	t.Helper()
	out := make([]sse.Event, 0, n)
	for range n {
		ev, err := r.Next()
		if err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		out = append(out, ev)
	}
	return out
}

// idOffset returns the eqiad offset of an SSE id.
func idOffset(t *testing.T, id string) int64 {
	t.Helper()
	var entries []idEntry
	if err := json.Unmarshal([]byte(id), &entries); err != nil || len(entries) != 2 || entries[0].Offset == nil {
		t.Fatalf("id %q: not a Wikimedia id with an offset (%v)", id, err)
	}
	return *entries[0].Offset
}

// offsetID is the Last-Event-ID of position n.
func offsetID(n int64) string {
	return `[{"topic":"eqiad.mediawiki.recentchange","partition":0,"offset":` + jsonInt(n) +
		`},{"topic":"codfw.mediawiki.recentchange","partition":0,"offset":-1}]`
}

// metaOf decodes meta.id, meta.dt and timestamp of an event.
func metaOf(t *testing.T, data []byte) (id, dt string, ts int64) {
	t.Helper()
	var v struct {
		Meta struct {
			ID string `json:"id"`
			DT string `json:"dt"`
		} `json:"meta"`
		Timestamp int64 `json:"timestamp"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("event %.80s: %v", data, err)
	}
	return v.Meta.ID, v.Meta.DT, v.Timestamp
}

// wantStat waits until a counter the server bumps after writing reaches want (the
// client may read a frame before the counter moves) and fails if it does not.
func wantStat(t *testing.T, name string, c *atomic.Int64, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Load() != want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := c.Load(); got != want {
		t.Errorf("Stats.%s = %d, want %d", name, got, want)
	}
}
