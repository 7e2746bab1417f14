package stack

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// freePorts gives every port of c a distinct port nothing listens on.
func freePorts(t *testing.T, c *Config) {
	t.Helper()
	var open []net.Listener
	defer func() {
		for _, l := range open {
			l.Close()
		}
	}()
	for _, v := range c.Ports.vars() {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, l)
		*v.port = l.Addr().(*net.TCPAddr).Port
	}
}

// testStack returns a stack in a fresh folder on free ports whose wikiflow is
// the shell script body.
func testStack(t *testing.T, body string) (*Stack, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	c, err := New(dir, filepath.Join(dir, "home"))
	if err != nil {
		t.Fatal(err)
	}
	freePorts(t, &c)
	c.Wikiflow, c.WikiflowGiven = filepath.Join(dir, "wikiflow"), true
	c.Timeout, c.StopGrace = 5*time.Second, 5*time.Second
	if err := os.WriteFile(c.Wikiflow, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(c.RunDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	return &Stack{Config: c, Out: &out, Err: &errs}, &out, &errs
}

// TestStartServiceDetaches starts the api with a stand-in binary and checks
// that it runs in its own session with its output in its log, is told the
// stack's own ports, is found again by its pid file, and that down stops it.
func TestStartServiceDetaches(t *testing.T) {
	s, out, _ := testStack(t, `printf '%s\n' "$@" > "$0.args.tmp" && mv "$0.args.tmp" "$0.args"
trap 'exit 0' TERM
echo serving
while :; do sleep 0.1; done
`)
	if err := s.StartService("api"); err != nil {
		t.Fatal(err)
	}
	pid, ok := s.RunningPid("api")
	if !ok {
		t.Fatalf("no running api after start; output %s", out)
	}
	var raw []byte
	for i := 0; i < 100 && len(raw) == 0; i++ {
		raw, _ = os.ReadFile(s.Wikiflow + ".args")
		time.Sleep(50 * time.Millisecond)
	}
	want, _ := s.ServiceArgs("api")
	if got := strings.Fields(string(raw)); strings.Join(got, " ") != strings.Join(want[1:], " ") {
		t.Errorf("the api got %q, want %q", got, want[1:])
	}
	if !strings.Contains(string(raw), fmt.Sprintf("127.0.0.1:%d/metrics", s.Ports.AggregateHealth)) {
		t.Errorf("the api is not told the stack's aggregate metrics port: %q", raw)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil {
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
		if sid, _ := strconv.Atoi(f[3]); sid != pid {
			t.Errorf("the api's session is %d, not its own (%d)", sid, pid)
		}
		if link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/1", pid)); link != s.LogFile("api") {
			t.Errorf("the api's stdout is %s, not its log", link)
		}
	}
	if err := s.StartService("api"); err != nil || !strings.Contains(out.String(), fmt.Sprintf("api: already running (pid %d)", pid)) {
		t.Errorf("a second start: %v; output %s", err, out)
	}
	if err := s.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := processArgs(pid); ok {
		t.Errorf("the api (pid %d) still runs after down", pid)
	}
	if _, err := os.Stat(s.PidFile("api")); err == nil {
		t.Error("down left the pid file")
	}
}

func TestStartRefusesABusyPort(t *testing.T) {
	s, _, _ := testStack(t, "sleep 5\n")
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", s.Ports.API))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = s.StartService("api")
	if want := fmt.Sprintf("api: port %d is already in use by another process", s.Ports.API); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
	var status bytes.Buffer
	if err := s.Status(context.Background(), &status); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("port %d in use by another process", s.Ports.API); !strings.Contains(status.String(), want) {
		t.Errorf("status lacks %q:\n%s", want, status.String())
	}
}

func TestAComponentThatExitsShowsItsLog(t *testing.T) {
	s, _, errs := testStack(t, "echo 'bridge: cannot reach Kafka at the moon' >&2\nexit 3\n")
	if err := s.StartService("bridge"); err != nil {
		t.Fatal(err)
	}
	err := s.waitHealthy(context.Background(), "bridge")
	if err == nil || err.Error() != "bridge did not start" {
		t.Errorf("error %v", err)
	}
	if !strings.Contains(errs.String(), "cannot reach Kafka at the moon") || !strings.Contains(errs.String(), "bridge exited while starting") {
		t.Errorf("the end of the log is not shown:\n%s", errs)
	}
}

func TestAnUnhealthyComponentTimesOutWithItsLog(t *testing.T) {
	s, _, errs := testStack(t, "trap 'exit 0' TERM\necho 'still thinking'\nwhile :; do sleep 0.1; done\n")
	s.Timeout = time.Second
	if err := s.StartService("aggregate"); err != nil {
		t.Fatal(err)
	}
	defer s.Down(context.Background())
	err := s.waitHealthy(context.Background(), "aggregate")
	if err == nil || !strings.Contains(err.Error(), "timed out waiting for: aggregate (raise STACK_TIMEOUT to wait longer)") {
		t.Errorf("error %v", err)
	}
	if !strings.Contains(errs.String(), "still thinking") {
		t.Errorf("the end of the log is not shown:\n%s", errs)
	}
}

func TestStalePidFileIsRemoved(t *testing.T) {
	s, _, _ := testStack(t, "")
	// pid 1 runs, but it is not this stack's ingest.
	if err := os.WriteFile(s.PidFile("ingest"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.RunningPid("ingest"); ok {
		t.Error("pid 1 taken for ingest")
	}
	if _, err := os.Stat(s.PidFile("ingest")); err == nil {
		t.Error("the stale pid file stays")
	}
}

func TestHeadline(t *testing.T) {
	s := &Stack{Config: Config{FeedWait: 15 * time.Second}}
	cases := map[string]string{
		"":                                     "wikiflow is up in 2.0s (source: U).",
		"feed unreachable: dial tcp: no route": "but the feed is unreachable: offline? SOURCE=sample (go tool task up SOURCE=sample)\n  ingest: feed unreachable: dial tcp: no route",
		"silent":                               "The feed has sent no event yet after 15s",
		"no progress at position 3":            "ingest is degraded: no progress at position 3",
	}
	for feed, want := range cases {
		if got := s.headline(feed, "U", 2*time.Second); !strings.Contains(got, want) {
			t.Errorf("feed %q: %q lacks %q", feed, got, want)
		}
	}
}

// TestLeftoversAreThisStacksOnly checks that processes of another stack that
// shares the binaries (another run folder, other ports) are not this stack's.
func TestLeftoversAreThisStacksOnly(t *testing.T) {
	c, err := New("/repo", "/repo/.wikiflow")
	if err != nil {
		t.Fatal(err)
	}
	c.NATSServer, c.Wikiflow = "/bin/nats-server", "/bin/wikiflow"
	ours := []string{
		"java -cp x kafka.Kafka /repo/.wikiflow/run/kafka.properties",
		"/bin/nats-server -n wikiflow -a 127.0.0.1 -p 4222 -m 8222 -c /repo/.wikiflow/run/nats.conf",
		"/bin/wikiflow ingest --url u --kafka-brokers 127.0.0.1:9092 --health-addr 127.0.0.1:8081",
		"/bin/wikiflow api --addr 127.0.0.1:8080",
	}
	theirs := []string{
		"java -cp x kafka.Kafka /other/run/kafka.properties",
		"/bin/nats-server -n wikiflow -a 127.0.0.1 -p 14222 -m 18222 -c /other/run/nats.conf",
		"/bin/wikiflow ingest --kafka-brokers 127.0.0.1:19092 --health-addr 127.0.0.1:18081",
		"/bin/wikiflow tui",
	}
	for _, a := range ours {
		if !c.ours(a) {
			t.Errorf("%q is not taken for this stack's", a)
		}
	}
	for _, a := range theirs {
		if c.ours(a) {
			t.Errorf("%q is taken for this stack's", a)
		}
	}
}
