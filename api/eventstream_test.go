package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestEventStreamLayout checks the bytes on the wire: the ":ok" opening, frames
// laid out like Wikimedia's, a live start (no history without since or
// Last-Event-ID), heartbeat comments while idle, and HEAD without a body.
func TestEventStreamLayout(t *testing.T) {
	env := newEventEnv(t, func(c *EventsConfig) { c.Heartbeat = 200 * time.Millisecond })
	all := evRecorded()
	env.publish(t, all[:10]...)
	url := env.base + eventStreamRoute

	resp, err := http.Head(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("HEAD: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	resp, err = http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("GET: %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	sc := evLines(resp.Body)
	next := func() string {
		if !sc.Scan() {
			t.Fatalf("stream ended: %v", sc.Err())
		}
		return sc.Text()
	}
	if l1, l2 := next(), next(); l1 != ":ok" || l2 != "" {
		t.Fatalf("opening %q %q, want \":ok\" and a blank line", l1, l2)
	}
	evWait(t, 5*time.Second, "the client's consumer", func() bool { return env.srv.EventStats().Connections.Load() == 1 })
	live := env.publish(t, all[10:15]...)
	for _, e := range live {
		want := []string{"event: message", "id: " + evID(e.seq), "data: " + string(e.raw), ""}
		for _, w := range want {
			if got := next(); got != w {
				t.Fatalf("line %.120q, want %.120q (a frame of seq %d)", got, w, e.seq)
			}
		}
	}
	start := time.Now()
	for i := 0; i < 2; i++ {
		if got := next(); got != ": heartbeat" {
			t.Fatalf("after the events: %q, want a heartbeat comment", got)
		}
		if got := next(); got != "" {
			t.Fatalf("heartbeat followed by %q", got)
		}
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 2*time.Second {
		t.Errorf("two heartbeats took %s with a 200ms heartbeat", d)
	}
	if n := env.srv.EventStats().Events.Load(); n != int64(len(live)) {
		t.Errorf("events counted %d, want %d", n, len(live))
	}
}

// TestEventStreamBadRequests checks that bad parameters and positions are
// refused with the API's JSON error body naming them, before any consumer is made.
func TestEventStreamBadRequests(t *testing.T) {
	env := newEventEnv(t, nil)
	env.publish(t, evRecorded()[:3]...)
	cases := []struct {
		query, param string
	}{
		{"?wiki=", "wiki"},
		{"?wiki=en wiki", "wiki"},
		{"?wiki=enwiki,,dewiki", "wiki"},
		{"?wiki=" + strings.Repeat("a,", 50) + "b", "wiki"},
		{"?domain=a*b", "domain"},
		{"?type=edit,bogus", "type"},
		{"?bot=yes", "bot"},
		{"?namespace=zero", "namespace"},
		{"?namespace=99999999999", "namespace"},
		{"?user=", "user"},
		{"?user=a%0Ab", "user"},
		{"?since=yesterday", "since"},
		{"?since=-5", "since"},
		{"?since=1&since=2", "since"},
		{"?window=5m", "window"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(http.MethodGet, env.base+eventStreamRoute+tc.query, nil)
		status, e := evError(t, req)
		if status != 400 || e.Code != codeBadParameter || e.Parameter != tc.param || e.Message == "" {
			t.Errorf("%s: %d %+v, want 400 bad_parameter naming %s", tc.query, status, e, tc.param)
		}
	}
	// Positions the log does not have: 409, the id conflicts with the log.
	for id, code := range map[string]string{
		"not json": codeUnknownPosition,
		`[{"topic":"eqiad.mediawiki.recentchange","partition":0,"timestamp":1}]`:                          codeUnknownPosition,
		`[{"topic":"WIKIMEDIA","partition":0,"offset":-1}]`:                                               codeUnknownPosition,
		`[{"topic":"WIKIMEDIA","offset":1}]`:                                                              codeUnknownPosition,
		`[{"topic":"WIKIMEDIA","partition":0,"offset":1},{"topic":"WIKIMEDIA","partition":0,"offset":2}]`: codeUnknownPosition,
		evID(4): codePastEnd, // 3 events logged: the log was reset or lost its tail
	} {
		req, _ := http.NewRequest(http.MethodGet, env.base+eventStreamRoute, nil)
		req.Header.Set("Last-Event-ID", id)
		if status, e := evError(t, req); status != 409 || e.Code != code || e.Parameter != "Last-Event-ID" {
			t.Errorf("Last-Event-ID %s: %d %+v, want 409 %s", id, status, e, code)
		}
	}
	if n := env.srv.EventStats().Connections.Load(); n != 0 {
		t.Errorf("%d streams opened for bad requests", n)
	}
	if n := env.srv.EventStats().Clients.Load(); n != 0 {
		t.Errorf("%d connection slots held after bad requests", n)
	}
}

// TestEventStreamNATSDown checks the 503 answered at once when NATS cannot be reached.
func TestEventStreamNATSDown(t *testing.T) {
	env := newEventEnv(t, func(c *EventsConfig) { c.NATS.URL = "nats://127.0.0.1:1" })
	req, _ := http.NewRequest(http.MethodGet, env.base+eventStreamRoute, nil)
	start := time.Now()
	status, e := evError(t, req)
	if status != 503 || e.Code != codeUnavailable || !strings.Contains(e.Message, "NATS") {
		t.Fatalf("%d %+v, want 503 unavailable naming NATS", status, e)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the 503 took %s", d)
	}
	if env.srv.EventStats().Unavailable.Load() != 1 || env.srv.EventStats().Clients.Load() != 0 {
		t.Errorf("stats %d unavailable, %d clients", env.srv.EventStats().Unavailable.Load(), env.srv.EventStats().Clients.Load())
	}
}

// evErrorBody is the API's error shape, decoded with encoding/json.
type evErrorBody struct {
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Parameter string `json:"parameter"`
	Message   string `json:"message"`
}

// evError sends req and returns its status and error body, checked against
// the schema openapi.json documents for it.
func evError(t *testing.T, req *http.Request) (int, evErrorBody) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error evErrorBody `json:"error"`
	}
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: content type %q: %s", req.URL, ct, b)
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%s: error body %q: %v", req.URL, b, err)
	}
	if body.Error.Status != resp.StatusCode {
		t.Errorf("%s: body status %d, HTTP %d", req.URL, body.Error.Status, resp.StatusCode)
	}
	d := loadDoc(t)
	schema, err := d.responseSchema(eventStreamRoute, resp.StatusCode, "application/json")
	if err != nil {
		t.Fatalf("%s: %v", req.URL, err)
	}
	var v any
	_ = json.Unmarshal(b, &v)
	for _, e := range d.validate(schema, v, "$") {
		t.Errorf("%s: %d body does not match openapi.json: %s", req.URL, resp.StatusCode, e)
	}
	return resp.StatusCode, body.Error
}

// TestEventStreamConnectionLimit checks the 503 beyond the limit, its counter,
// and that a slot is freed when a client leaves.
func TestEventStreamConnectionLimit(t *testing.T) {
	env := newEventEnv(t, func(c *EventsConfig) { c.MaxClients = 2 })
	url := env.base + eventStreamRoute
	var open []*http.Response
	for i := 0; i < 2; i++ {
		resp, rd := openEvents(t, url)
		if resp.StatusCode != 200 {
			t.Fatalf("client %d: %d", i, resp.StatusCode)
		}
		_ = rd
		open = append(open, resp)
	}
	evWait(t, 5*time.Second, "two clients", func() bool { return env.srv.EventStats().Clients.Load() == 2 })
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	status, e := evError(t, req)
	if status != 503 || e.Code != codeTooManyClients {
		t.Fatalf("third client: %d %+v, want 503 too_many_clients", status, e)
	}
	if n := env.srv.EventStats().Rejected.Load(); n != 1 {
		t.Errorf("rejected %d, want 1", n)
	}
	if !strings.Contains(env.log.String(), "connection limit") {
		t.Errorf("no log line about the limit:\n%s", env.log.String())
	}
	// Freed when the client closes its connection, not at the next heartbeat (15 s).
	open[0].Body.Close()
	evWait(t, 3*time.Second, "the slot to be freed", func() bool { return env.srv.EventStats().Clients.Load() == 1 })
	resp, _ := openEvents(t, url)
	if resp.StatusCode != 200 {
		t.Fatalf("after a client left: %d", resp.StatusCode)
	}
	_, metrics := fetch(t, env.base+"/metrics")
	if !strings.Contains(string(metrics), "wikiflow_api_events_clients_refused_total") || !strings.Contains(string(metrics), "wikiflow_api_events_clients 2") {
		t.Errorf("/metrics lacks the event stream's gauges:\n%s", metrics)
	}
}

// TestEventStreamConsumerLimit checks the answer when nats-server refuses one
// more consumer on the stream (its own limit, 1000 per stream by default).
func TestEventStreamConsumerLimit(t *testing.T) {
	env := newEventEnvStream(t, func(sc *jetstream.StreamConfig) { sc.MaxConsumers = 1 }, nil)
	resp, _ := openEvents(t, env.base+eventStreamRoute)
	if resp.StatusCode != 200 {
		t.Fatalf("first client: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, env.base+eventStreamRoute, nil)
	status, e := evError(t, req)
	if status != 503 || e.Code != codeTooManyClients || !strings.Contains(e.Message, "nats-server") {
		t.Fatalf("second client: %d %+v, want 503 too_many_clients naming the nats-server limit", status, e)
	}
	if st := env.srv.EventStats(); st.Rejected.Load() != 1 || st.Clients.Load() != 1 {
		t.Errorf("rejected %d, clients %d; want 1 and 1", st.Rejected.Load(), st.Clients.Load())
	}
}
