package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// Pinned versions of the independent clients (tools/python/requirements.txt).
const (
	schemathesisVersion = "4.32.5"
	installPython       = "pip install -r tools/python/requirements.txt"
)

// external returns the path of a program that checks the API from outside.
// Under CI a missing program fails the test (CI installs it); elsewhere the test
// is skipped with how to install it.
func external(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if testenv.InCI() {
		t.Fatalf("%s is not installed, and CI must run this test (install: %s)", name, install)
	}
	t.Skipf("%s is not installed (install: %s)", name, install)
	return ""
}

// pythonWith returns python3 after checking that it imports module.
func pythonWith(t *testing.T, module string) string {
	t.Helper()
	py := external(t, "python3", "apt-get install python3")
	if out, err := exec.Command(py, "-c", "import "+module).CombinedOutput(); err != nil {
		if testenv.InCI() {
			t.Fatalf("python3 cannot import %s (install: %s): %s", module, installPython, out)
		}
		t.Skipf("python3 cannot import %s (install: %s)", module, installPython)
	}
	return py
}

// runTool runs a program with a deadline and returns its combined output.
func runTool(t *testing.T, timeout time.Duration, stdin []byte, name string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %s:\n%s", name, timeout, out)
	}
	return out, err
}

// schemathesisConfig reads one event of each event stream (the first comes at
// once) instead of waiting for 20, and waits 1 s for a response: a filtered event
// stream that matches nothing sends only its opening comment and heartbeats, so
// each such case would otherwise hold a worker for the whole timeout.
const schemathesisConfig = `max-stream-events = 1
request-timeout = 1
`

// TestSchemathesis runs schemathesis (every operation of /openapi.json, every
// check, examples, coverage and fuzzing phases, a bounded number of cases) against
// a real server on the real Redis holding the fixture and an embedded NATS holding
// events, and wants 0 failures.
func TestSchemathesis(t *testing.T) {
	st := external(t, "schemathesis", installPython)
	if out, err := exec.Command(st, "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), schemathesisVersion) {
		t.Fatalf("schemathesis %s wanted, found %q (%v)", schemathesisVersion, out, err)
	}
	f := newFixture(t)
	// An embedded NATS with the stream holding part of the recording, for
	// /v2/stream/recentchange (the test's own, never the stack's on 4222).
	events := newEventEnv(t, nil)
	recorded := evRecorded()
	events.publish(t, recorded[:300]...)
	// The rest arrives while schemathesis runs, so that a live stream's first
	// event comes within a tenth of a second instead of at the request timeout.
	stop := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		for _, raw := range recorded[300:] {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := events.js.Publish(context.Background(), liveSubject(raw), raw); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
		}
	}()
	defer func() { close(stop); <-published }()
	s := newServer(t, f.base, func(c *Config) {
		c.Addr = "127.0.0.1:0"
		c.Events.NATS.URL = events.srv.cfg.Events.NATS.URL
	})
	base := startServer(t, s)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "schemathesis.toml")
	if err := os.WriteFile(cfg, []byte(schemathesisConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	// The document as the server serves it, read from a file: loaded from its URL,
	// schemathesis leaves the operation GET /openapi.json out.
	status, doc := fetch(t, base+"/openapi.json")
	if status != 200 {
		t.Fatalf("GET /openapi.json: %d", status)
	}
	docFile := filepath.Join(dir, "openapi.json")
	if err := os.WriteFile(docFile, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := runTool(t, 3*time.Minute, nil, st, "--config-file", cfg, "--no-color", "run", docFile,
		"--url", base,
		"--checks", "all",
		"--phases", "examples,coverage,fuzzing",
		"--max-examples", "100",
		"--workers", "2",
		"--suppress-health-check", "too_slow",
		"--report", "junit", "--report-dir", dir)
	t.Logf("schemathesis took %s", time.Since(start).Round(time.Second))
	text := string(out)
	if err != nil {
		t.Fatalf("schemathesis reports problems (%v):\n%s", err, text)
	}
	if !strings.Contains(text, "No issues found") {
		t.Errorf("schemathesis output does not say it found no issues:\n%s", text)
	}
	checkEveryOperationTested(t, dir, doc)
	t.Logf("%s", lastLines(text, 25))
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkEveryOperationTested reads schemathesis's JUnit report in dir and checks
// that it holds a passed test case for every operation of the document.
func checkEveryOperationTested(t *testing.T, dir string, doc []byte) {
	t.Helper()
	var spec struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(doc, &spec); err != nil {
		t.Fatal(err)
	}
	reports, _ := filepath.Glob(filepath.Join(dir, "junit*.xml"))
	if len(reports) != 1 {
		t.Fatalf("want one JUnit report in %s, found %v", dir, reports)
	}
	raw, err := os.ReadFile(reports[0])
	if err != nil {
		t.Fatal(err)
	}
	var junit struct {
		Suites []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(raw, &junit); err != nil {
		t.Fatalf("JUnit report: %v", err)
	}
	passed := map[string]bool{}
	for _, s := range junit.Suites {
		for _, c := range s.Cases {
			passed[c.Name] = c.Failure == nil && c.Error == nil && c.Skipped == nil
		}
	}
	n := 0
	for path, item := range spec.Paths {
		for method := range item {
			n++
			if op := strings.ToUpper(method) + " " + path; !passed[op] {
				t.Errorf("schemathesis did not test %s and pass (report: %v)", op, passed)
			}
		}
	}
	t.Logf("schemathesis tested and passed all %d operations", n)
}

// sseReader prints each event of the stream at argv[1] as one JSON line
// {"event","id","data"} (data parsed by Python's json), argv[2] events in all,
// read with sseclient-py over urllib3, the way sseclient-py's documentation does.
const sseReader = `
import json, sys
import sseclient, urllib3
url, n = sys.argv[1], int(sys.argv[2])
resp = urllib3.PoolManager().request("GET", url, preload_content=False, headers={"Accept": "text/event-stream"}, timeout=urllib3.Timeout(connect=5, read=30))
if resp.status != 200:
    sys.exit("status %d" % resp.status)
for i, ev in enumerate(sseclient.SSEClient(resp).events()):
    print(json.dumps({"event": ev.event, "id": ev.id, "data": json.loads(ev.data)}), flush=True)
    if i + 1 == n:
        break
resp.release_conn()
`

// pyEvent is one line printed by sseReader.
type pyEvent struct {
	Event string         `json:"event"`
	ID    string         `json:"id"`
	Data  map[string]any `json:"data"`
}

// TestStreamWithSSEClientPy reads /stats/stream with sseclient-py, a client
// wikiflow did not write: its events' data parse as JSON with Python's json and
// equal /stats with the same parameters, before and after the figures change,
// with heartbeat comments between the events.
func TestStreamWithSSEClientPy(t *testing.T) {
	py := pythonWith(t, "sseclient")
	f := newFixture(t)
	s := newServer(t, f.base, func(c *Config) { c.Addr = "127.0.0.1:0"; c.CacheTTL = 0 })
	s.keepAlive = 100 * time.Millisecond
	base := startServer(t, s)
	for _, params := range []string{"", "window=5m&by=wiki&bot=false"} {
		t.Run("params="+params, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, py, "-c", sseReader, base+"/stats/stream?interval=1&"+params, "2")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(stdout)
			lines.Buffer(nil, 1<<20)
			next := func() pyEvent {
				t.Helper()
				if !lines.Scan() {
					t.Fatalf("sseclient-py printed no event: %v\n%s", lines.Err(), stderr.String())
				}
				var ev pyEvent
				if err := json.Unmarshal(lines.Bytes(), &ev); err != nil {
					t.Fatalf("line %q: %v", lines.Text(), err)
				}
				return ev
			}
			compareWithStats(t, base, params, next(), f)
			// Three more human edits in as_of's minute, in the counters each stream reads.
			k := projection.New(f.base, testNS)
			field := projection.CubeField("added.example.org", "addedwiki", "edit", false)
			pipe := f.rdb.TxPipeline()
			pipe.HIncrBy(context.Background(), k.MinuteN(projection.KindCube, f.asOfMin), field, 3)
			pipe.HIncrBy(context.Background(), k.All(projection.KindCube), field, 3)
			pipe.HIncrBy(context.Background(), k.Legacy(), "added.example.org", 3)
			if _, err := pipe.Exec(context.Background()); err != nil {
				t.Fatal(err)
			}
			compareWithStats(t, base, params, next(), f)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("sseclient-py: %v\n%s", err, stderr.String())
			}
		})
	}
}

// compareWithStats checks an event read by sseclient-py against GET /stats with
// the same parameters (freshness_seconds aside, which moves with the clock).
func compareWithStats(t *testing.T, base, params string, ev pyEvent, f *fixture) {
	t.Helper()
	if ev.Event != "stats" || ev.ID != strconv.FormatInt(f.asOf.UnixMilli(), 10) {
		t.Errorf("event %q id %q", ev.Event, ev.ID)
	}
	status, body := fetch(t, base+"/stats?"+params)
	var want map[string]any
	if err := json.Unmarshal(body, &want); status != 200 || err != nil {
		t.Fatalf("/stats?%s: %d %v", params, status, err)
	}
	for _, m := range []map[string]any{want, ev.Data} {
		if _, ok := m["freshness_seconds"].(float64); !ok {
			t.Errorf("freshness_seconds missing: %v", m)
		}
		delete(m, "freshness_seconds")
	}
	if !reflect.DeepEqual(ev.Data, want) {
		t.Errorf("event data differs from /stats?%s:\n got %v\nwant %v", params, ev.Data, want)
	}
}

// TestMetricsPromtool pipes the API's /metrics, after requests of every kind and
// with two stages' pages appended, into promtool check metrics (Prometheus's own
// parser and linter), which must report nothing.
func TestMetricsPromtool(t *testing.T) {
	promtool := external(t, "promtool", "apt-get install prometheus (promtool)")
	f := newFixture(t)
	ingest := stageServer(t, "ingest", "")
	bridge := stageServer(t, "bridge", "")
	s := newServer(t, f.base, func(c *Config) {
		c.Addr = "127.0.0.1:0"
		c.StageMetrics = []string{ingest.URL + "/metrics", bridge.URL + "/metrics", "http://127.0.0.1:1/metrics"}
	})
	base := startServer(t, s)
	for _, p := range []string{"/stats", "/stats?window=5m&by=wiki", "/stats?window=9m", "/nope", "/stats/timeseries", "/stats/top/pages", "/healthz", "/readyz", "/openapi.json"} {
		fetch(t, base+p)
	}
	c := openStream(t, base+"/stats/stream")
	if _, err := c.next(); err != nil {
		t.Fatal(err)
	}
	defer c.close()
	do(t, s, "QUERY", "/stats")
	status, page := fetch(t, base+"/metrics")
	if status != 200 {
		t.Fatalf("/metrics: %d", status)
	}
	out, err := runTool(t, time.Minute, page, promtool, "check", "metrics")
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s\n--- the page:\n%s", err, out, page)
	}
	for _, want := range []string{"wikiflow_api_stats_stream_clients 1", `wikiflow_stage_up{url="http://127.0.0.1:1/metrics"} 0`, "wikiflow_ingest_events_published_total 42"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// liveSubject is the subject the bridge files raw under.
func liveSubject(raw []byte) string {
	if ev, err := event.Parse(raw); err == nil {
		return ev.Subject(wire.SubjectPrefix)
	}
	return wire.SubjectPrefix + ".unknown.unknown"
}
