package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/sse"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// evLogged is one event of the test stream: its sequence and raw bytes.
type evLogged struct {
	seq uint64
	raw []byte
}

// eventEnv is an embedded nats-server with the stream, and an API serving it.
type eventEnv struct {
	js     jetstream.JetStream
	srv    *Server
	base   string // http://host:port
	log    *syncBuffer
	events []evLogged
}

// newEventEnv starts NATS with the WIKIMEDIA stream (as the bridge creates it)
// and a running API whose events configuration mod may change.
func newEventEnv(t *testing.T, mod func(*EventsConfig)) *eventEnv {
	t.Helper()
	return newEventEnvStream(t, nil, mod)
}

// newEventEnvStream is newEventEnv with a change to the stream's configuration.
func newEventEnvStream(t *testing.T, smod func(*jetstream.StreamConfig), mod func(*EventsConfig)) *eventEnv {
	t.Helper()
	url, _ := testenv.NATS(t)
	js, err := jetstream.New(testenv.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc := jetstream.StreamConfig{
		Name: wire.DefaultStream, Subjects: []string{wire.SubjectAll}, Storage: jetstream.FileStorage,
		DenyDelete: true, DenyPurge: true, Duplicates: time.Hour,
	}
	if smod != nil {
		smod(&sc)
	}
	if _, err := js.CreateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	env := &eventEnv{js: js, log: &syncBuffer{}}
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.StageMetrics = nil
	cfg.Events.NATS.URL = url
	if mod != nil {
		mod(&cfg.Events)
	}
	env.srv, err = New(cfg, slog.New(slog.NewTextHandler(env.log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	env.base = startServer(t, env.srv)
	return env
}

// publish logs raw events the way the bridge does (subject per wiki and type,
// Nats-Msg-Id = meta.id) and remembers their sequences.
func (env *eventEnv) publish(t *testing.T, raws ...[]byte) []evLogged {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []evLogged
	for _, raw := range raws {
		subject := wire.SubjectPrefix + ".unknown.unknown"
		var opts []jetstream.PublishOpt
		if ev, err := event.Parse(raw); err == nil {
			subject = ev.Subject(wire.SubjectPrefix)
			opts = append(opts, jetstream.WithMsgID(ev.ID))
		}
		ack, err := env.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: raw}, opts...)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		out = append(out, evLogged{seq: ack.Sequence, raw: raw})
	}
	env.events = append(env.events, out...)
	return out
}

// evRecorded returns the bundled recording's raw events.
func evRecorded() [][]byte {
	var out [][]byte
	for _, r := range recording.Events() {
		out = append(out, r.Data)
	}
	return out
}

// evFields is an event decoded independently of internal/event, with encoding/json.
type evFields struct {
	Meta struct {
		ID     string `json:"id"`
		Domain string `json:"domain"`
	} `json:"meta"`
	Wiki      string `json:"wiki"`
	Type      string `json:"type"`
	Bot       bool   `json:"bot"`
	Namespace int    `json:"namespace"`
	User      string `json:"user"`
}

func evDecode(t *testing.T, raw []byte) evFields {
	t.Helper()
	var f evFields
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("decode %.80s: %v", raw, err)
	}
	if f.Wiki == "" {
		f.Wiki = f.Meta.Domain // the documented meaning of the wiki filter
	}
	return f
}

// evMatching returns the events of evs that keep passes, in order.
func evMatching(t *testing.T, evs []evLogged, keep func(evFields) bool) []evLogged {
	t.Helper()
	var out []evLogged
	for _, e := range evs {
		if keep(evDecode(t, e.raw)) {
			out = append(out, e)
		}
	}
	return out
}

// evPyEvent is one line printed by testdata/eventstream_client.py.
type evPyEvent struct {
	Job    int    `json:"job"`
	Event  string `json:"event"`
	ID     string `json:"id"`
	Data   string `json:"data"`
	MetaID string `json:"meta_id"`
	End    string `json:"end"`
}

// evPyJob is one stream the Python client reads.
type evPyJob struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Max     int               `json:"max,omitempty"`
	Idle    float64           `json:"idle"`
}

// evPyResult is what the Python client read on one job.
type evPyResult struct {
	events []evPyEvent
	end    string
}

// evPython reads the jobs with sseclient-py (fails under CI=true when it is
// missing, skips otherwise).
func evPython(t *testing.T, jobs []evPyJob) []evPyResult {
	t.Helper()
	if out, err := exec.Command("python3", "-c", "import sseclient, urllib3").CombinedOutput(); err != nil {
		msg := fmt.Sprintf("python3 with sseclient-py is needed (pip install -r tools/python/requirements.txt): %v %s", err, out)
		if testenv.InCI() {
			t.Fatal("CI=true: " + msg)
		}
		t.Skip(msg)
	}
	spec, _ := json.Marshal(jobs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", "testdata/eventstream_client.py", string(spec))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python client: %v\n%s", err, stderr.String())
	}
	res := make([]evPyResult, len(jobs))
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var e evPyEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("python client printed %q: %v", line, err)
		}
		if e.End != "" {
			res[e.Job].end = e.End
			continue
		}
		res[e.Job].events = append(res[e.Job].events, e)
	}
	return res
}

// evFrame is one SSE event read by the Go reader.
type evFrame struct {
	typ, id string
	data    []byte
}

// openEvents GETs the event stream and returns the response (status 200 checked
// by the caller) and an SSE reader of its body.
func openEvents(t *testing.T, url string, hdr ...string) (*http.Response, *sse.Reader) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, sse.NewReader(resp.Body, 0)
}

// readEvents reads n events (or until the stream ends) within 30 s.
func readEvents(t *testing.T, rd *sse.Reader, n int) []evFrame {
	t.Helper()
	type result struct {
		fs  []evFrame
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		for len(r.fs) < n {
			ev, err := rd.Next()
			if err != nil {
				r.err = err
				break
			}
			r.fs = append(r.fs, evFrame{typ: ev.Type, id: ev.ID, data: ev.Data})
		}
		done <- r
	}()
	select {
	case r := <-done:
		if r.err != nil && r.err != io.EOF && len(r.fs) < n {
			t.Logf("stream ended after %d events: %v", len(r.fs), r.err)
		}
		return r.fs
	case <-time.After(30 * time.Second):
		t.Fatalf("fewer than %d events within 30 s", n)
		return nil
	}
}

// evID is the SSE id the endpoint gives the event at seq, written out here
// independently of appendEventID.
func evID(seq uint64) string {
	return fmt.Sprintf(`[{"topic":"WIKIMEDIA","partition":0,"offset":%d}]`, seq)
}

// compact is raw on one line, as the endpoint must send it.
func evCompact(t *testing.T, raw []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// evWait polls cond for up to d.
func evWait(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lines reads the body line by line (for the exact layout and comments).
func evLines(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	return sc
}
