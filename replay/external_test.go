package replay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wikiflow/wikiflow/ingest"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/sse"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// splitRecording returns the recording as the log holds it after a feed that
// splits some events' data over several SSE lines (legal SSE: a reader joins the
// lines with "\n", and ingest logs the joined bytes untouched). Every fifth event
// is split once between two tokens, every fifth of those twice and with CRLF line
// ends; the frames are read back by wikiflow's SSE reader. split counts them.
func splitRecording(t *testing.T) (raws [][]byte, split int) {
	t.Helper()
	var frames bytes.Buffer
	for i, rec := range recording.Events() {
		data, eol := rec.Data, "\n"
		switch {
		case i%25 == 3:
			data, eol = splitBefore(t, splitBefore(t, data, `"meta":`), `"type":`), "\r\n"
			split++
		case i%5 == 3:
			data = splitBefore(t, data, `"meta":`)
			split++
		}
		frames.WriteString("event: message" + eol + "id: " + fmt.Sprint(i) + eol)
		for line := range strings.SplitSeq(string(data), "\n") {
			frames.WriteString("data: " + line + eol)
		}
		frames.WriteString(eol)
	}
	r := sse.NewReader(&frames, 0)
	for range recording.Events() {
		ev, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, ev.Data)
	}
	return raws, split
}

// splitBefore puts a line break into data before the member named by key (the
// last one when key repeats in nested objects is not wanted: the first is taken).
func splitBefore(t *testing.T, data []byte, key string) []byte {
	t.Helper()
	i := bytes.Index(data, []byte(key))
	if i <= 0 {
		t.Fatalf("no %s in %.80s", key, data)
	}
	return append(append(append([]byte(nil), data[:i]...), '\n'), data[i:]...)
}

// fillSplit fills a fresh stream with splitRecording's events and returns them
// with a function that replays the whole log with a given configuration.
func fillSplit(t *testing.T) (all []stored, replay func(Config) string) {
	t.Helper()
	raws, split := splitRecording(t)
	nc, all := fillWith(t, raws)
	n := 0
	for _, s := range all {
		if bytes.ContainsRune(s.raw, '\n') {
			n++
		}
	}
	if n != split || n < 500 {
		t.Fatalf("the log holds %d events with a line break, want %d", n, split)
	}
	return all, func(cfg Config) string {
		out, sum, err := run(t, nc, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Events != len(all) || sum.Skipped != 0 {
			t.Fatalf("replayed %d events (%d skipped), want %d", sum.Events, sum.Skipped, len(all))
		}
		return out
	}
}

// tool returns the path of a program the tests check replay's output with: under
// CI a missing program fails the test (CI installs it), elsewhere it skips.
func tool(t *testing.T, name, install string, check ...string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil && len(check) > 0 {
		var out []byte
		out, err = exec.Command(p, check...).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%s %s: %v: %s", name, strings.Join(check, " "), err, out)
		}
	}
	if err == nil {
		return p
	}
	if testenv.InCI() {
		t.Fatalf("CI=true: %v (install: %s)", err, install)
	}
	t.Skipf("%v (install: %s)", err, install)
	return ""
}

// python returns python3 after checking that it imports sseclient (sseclient-py).
func python(t *testing.T) string {
	return tool(t, "python3", "pip install -r tools/python/requirements.txt", "-c", "import json, sseclient")
}

// runTool runs name with stdin and returns its standard output, failing t when
// it fails or complains on its standard error (jq 1.6 reports a bad input there
// and goes on, with exit status 0 when the last input was good).
func runTool(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("%s: %v\n%s", filepath.Base(name), err, stderr.Bytes())
	}
	return string(out)
}

// sameJSON fails t unless a and b decode (encoding/json) to equal values.
func sameJSON(t *testing.T, what string, a, b []byte) {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v: %.100q", what, err, a)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v: %.100q", what, err, b)
	}
	if !reflect.DeepEqual(va, vb) {
		t.Fatalf("%s: %.100s is not %.100s", what, a, b)
	}
}

// lines splits out at "\n", failing t unless it ends with one.
func lines(t *testing.T, out string) []string {
	t.Helper()
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("output does not end with a line break: %.80q", out[max(0, len(out)-80):])
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

const pyNDJSON = `import json, sys
for n, line in enumerate(sys.stdin, 1):
    try:
        ev = json.loads(line)
    except ValueError as e:
        sys.exit("line %d is not a JSON text: %s: %r" % (n, e, line[:80]))
    print(ev["meta"]["id"])
`

// TestReplayNDJSONIsReadLineByLineByPythonAndJq replays a log whose events were
// split over SSE lines and has the NDJSON read one line at a time by Python's
// json module (text mode, so "\r" would end a line too) and by jq -R 'fromjson':
// one line per event, each the event's JSON text, in log order.
func TestReplayNDJSONIsReadLineByLineByPythonAndJq(t *testing.T) {
	py := python(t)
	jq := tool(t, "jq", "apt-get install jq", "--version")
	all, replay := fillSplit(t)
	out := replay(DefaultConfig())
	ids := lines(t, runTool(t, out, py, "-c", pyNDJSON))
	if len(ids) != len(all) {
		t.Fatalf("python read %d events, want %d", len(ids), len(all))
	}
	for i, s := range all {
		if ids[i] != s.ev.ID {
			t.Fatalf("python line %d: meta.id %q, want %q", i+1, ids[i], s.ev.ID)
		}
	}
	texts := lines(t, runTool(t, out, jq, "-R", "-c", "fromjson"))
	if len(texts) != len(all) {
		t.Fatalf("jq read %d events, want %d", len(texts), len(all))
	}
	for i, s := range all {
		sameJSON(t, fmt.Sprintf("jq line %d", i+1), []byte(texts[i]), s.raw)
	}
	if got := strings.Count(out, "\n"); got != len(all) {
		t.Fatalf("%d lines for %d events", got, len(all))
	}
}

// pyEvent is one event as sseclient-py dispatched it, its data decoded by json.
type pyEvent struct {
	Event string          `json:"event"`
	ID    string          `json:"id"`
	Data  json.RawMessage `json:"data"`
}

// serveOnce serves body as an SSE response to the first request, then keeps that
// and any later connection open, sending nothing, until the test ends.
func serveOnce(t *testing.T, body string) string {
	t.Helper()
	done := make(chan struct{})
	first := make(chan struct{}, 1)
	first <- struct{}{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		select {
		case <-first:
			_, _ = w.Write([]byte(body))
		default:
		}
		w.(http.Flusher).Flush()
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return srv.URL + "/v2/stream/recentchange"
}

// TestReplaySSEIsReadBySSEClientPy has sseclient-py read `replay --format sse`
// of a log whose events were split over SSE lines: every event must arrive as a
// message with the replay's id and the event's JSON text as its data.
func TestReplaySSEIsReadBySSEClientPy(t *testing.T) {
	py := python(t)
	all, replay := fillSplit(t)
	cfg := DefaultConfig()
	cfg.Format = FormatSSE
	url := serveOnce(t, replay(cfg))
	out := runTool(t, "", py, "../tools/python/sseclient_read.py", "--json-data", url, fmt.Sprint(len(all)))
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 16<<20)
	n := 0
	for ; sc.Scan(); n++ {
		var ev pyEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d of the script's output: %v", n+1, err)
		}
		if n >= len(all) {
			t.Fatalf("more events than the %d replayed", len(all))
		}
		if ev.Event != "message" || ev.ID != SSEID(wire.DefaultStream, all[n].seq) {
			t.Fatalf("event %d: type %q id %q", n, ev.Event, ev.ID)
		}
		sameJSON(t, fmt.Sprintf("event %d", n), ev.Data, all[n].raw)
	}
	if n != len(all) {
		t.Fatalf("sseclient-py read %d events, want %d", n, len(all))
	}
}

// TestReplaySSEFeedsASecondIngest points a second wikiflow ingest at `replay
// --format sse` of a log whose events were split over SSE lines, served over
// HTTP, with fresh Kafka topics. Read back with franz-go, the topic must hold
// every replayed event once (equal counts, equal meta.id sets), each record one
// line of the event's JSON, and nothing may be dead-lettered.
func TestReplaySSEFeedsASecondIngest(t *testing.T) {
	addr := testenv.KafkaAddr(t)
	all, replay := fillSplit(t)
	cfg := DefaultConfig()
	cfg.Format = FormatSSE
	url := serveOnce(t, replay(cfg))

	icfg := ingest.DefaultConfig()
	icfg.URL = url
	icfg.Kafka.Brokers = []string{addr}
	icfg.Kafka.Topic = testenv.Topic(t, addr, 3)
	icfg.DeadLetterTopic = testenv.Topic(t, addr, 1)
	in, err := ingest.New(icfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	stop := testenv.Run(t, time.Minute, in.Run)
	st := in.Stats()
	deadline := time.Now().Add(time.Minute)
	for st.Frames.Load() < int64(len(all)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatalf("ingest: %v", err)
	}
	if st.Frames.Load() != int64(len(all)) || st.Published.Load() != int64(len(all)) || st.DeadLettered.Load() != 0 {
		t.Fatalf("ingest read %d frames, published %d, dead-lettered %d; want %d published",
			st.Frames.Load(), st.Published.Load(), st.DeadLettered.Load(), len(all))
	}
	want := map[string][]byte{}
	for _, s := range all {
		want[s.ev.ID] = s.raw
	}
	got := readTopic(t, addr, icfg.Kafka.Topic, len(all))
	if len(got) != len(all) {
		t.Fatalf("the topic holds %d records, want %d", len(got), len(all))
	}
	seen := map[string]bool{}
	for _, v := range got {
		var ev struct{ Meta struct{ ID string } }
		if err := json.Unmarshal(v, &ev); err != nil || seen[ev.Meta.ID] || want[ev.Meta.ID] == nil || bytes.ContainsAny(v, "\r\n") {
			t.Fatalf("record %.100q: %v (meta.id seen before %v, replayed %v)", v, err, seen[ev.Meta.ID], want[ev.Meta.ID] != nil)
		}
		seen[ev.Meta.ID] = true
		sameJSON(t, "record "+ev.Meta.ID, v, want[ev.Meta.ID])
	}
}

// readTopic reads topic from the start with franz-go (a Kafka client other than
// the kafka-go ingest writes with) until n records are in, then on until a poll
// of 2 s brings nothing more, and returns the record values.
func readTopic(t *testing.T, addr, topic string, n int) [][]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out [][]byte
	deadline := time.Now().Add(time.Minute)
	for quiet := false; !quiet && time.Now().Before(deadline); {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				t.Fatalf("franz-go fetch %s/%d: %v", fe.Topic, fe.Partition, fe.Err)
			}
		}
		quiet = len(out) >= n && fs.NumRecords() == 0
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r.Value) })
	}
	return out
}
