package chaos

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

func TestScheduleIsDeterministic(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Seed = 42
	a, b := Schedule(cfg), Schedule(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave two schedules")
	}
	cfg.Seed = 43
	if reflect.DeepEqual(a, Schedule(cfg)) {
		t.Fatal("seeds 42 and 43 gave the same schedule")
	}
}

func TestScheduleContents(t *testing.T) {
	for _, cfg := range []Config{DefaultConfig(), SmallConfig()} {
		cfg.Seed = 7
		p1, p2 := Phases(cfg)
		got := map[string]int{}
		for i, a := range Schedule(cfg) {
			if i > 0 && a.At < Schedule(cfg)[i-1].At {
				t.Fatalf("schedule not in time order at %d", i)
			}
			key := a.Kind + " " + a.Target
			if a.Hard {
				key += " hard"
			}
			if a.LoseAOF {
				key += " aof"
			}
			got[key]++
			if a.Kind == KindKill && a.Target == "ingest" && (a.At < p1/10 || a.At > p1*9/10) {
				t.Errorf("ingest kill at %s is outside the recording phase (%s)", a.At, p1)
			}
			if a.At > p1+p2 {
				t.Errorf("%s at %s is after the fault window %s", a, a.At, p1+p2)
			}
			if a.Kind == KindKill && (a.Delay < 100*time.Millisecond || a.Delay > cfg.MaxRestartDelay) {
				t.Errorf("restart delay %s out of range", a.Delay)
			}
		}
		want := map[string]int{
			"kill ingest": cfg.Kills, "kill bridge": cfg.Kills, "kill aggregate": cfg.Kills,
			"restart kafka": 1, "restart nats": 1, "restart redis": 1, "restart redis hard": 1, "restart redis hard aof": 1,
			"second bridge": 1, "second aggregate": 1, "crash nats+redis": 1,
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("schedule has %v, want %v", got, want)
		}
	}
}

func TestRecordingTruth(t *testing.T) {
	counts, ids, err := RecordingTruth()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for d, n := range counts {
		if d == "" || d == "canary" || n <= 0 {
			t.Errorf("domain %q counted %d", d, n)
		}
		total += n
	}
	if total != 2723 || len(ids) != 2723 {
		t.Errorf("recording: %d events, %d ids; want 2723 (data/SOURCES.md)", total, len(ids))
	}
	if counts["en.wikipedia.org"] == 0 {
		t.Error("no en.wikipedia.org events")
	}
}

func TestCompare(t *testing.T) {
	var r Report
	r.compare(
		map[string]int64{"a.org": 10, "b.org": 5, "c.org": 1},
		map[string]int64{"a.org": 10, "b.org": 7, "d.org": 2},
	)
	want := []DomainDiff{
		{Domain: "b.org", Expected: 5, Counted: 7, Difference: 2},
		{Domain: "c.org", Expected: 1, Counted: 0, Difference: -1},
		{Domain: "d.org", Expected: 0, Counted: 2, Difference: 2},
	}
	if !reflect.DeepEqual(r.Diffs, want) {
		t.Fatalf("diffs %+v, want %+v", r.Diffs, want)
	}
	if r.Expected != 16 || r.Counted != 19 || r.Lost != 1 || r.Twice != 4 || r.Domains != 3 || r.OK() {
		t.Fatalf("totals %+v", r)
	}
	md := r.Markdown()
	for _, s := range []string{"| b.org | 5 | 7 | +2 |", "| c.org | 1 | 0 | -1 |", "**FAIL**"} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q:\n%s", s, md)
		}
	}
	r.compare(map[string]int64{"a.org": 3}, map[string]int64{"a.org": 3})
	if !r.OK() || r.Lost != 0 || r.Twice != 0 || len(r.Diffs) != 0 {
		t.Fatalf("equal counts: %+v", r)
	}
	if !strings.Contains(r.Markdown(), "**PASS**") {
		t.Error("markdown of a passing run lacks PASS")
	}
}

func TestWriteResults(t *testing.T) {
	dir := t.TempDir()
	r := Report{Seed: 9, Kills: map[string]int{"ingest": 1}}
	r.compare(map[string]int64{"a.org": 1}, map[string]int64{"a.org": 1})
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"results.md", "results.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Contains(b, []byte("9")) {
			t.Errorf("%s: %v %q", name, err, b)
		}
	}
}

// lineWriter sends each line to t.Log.
type lineWriter struct {
	t   *testing.T
	mu  sync.Mutex
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.t.Log(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// TestChaosSmall is the short version of the chaos run: the recording and 5,000
// generated events through its own brokers, 3 SIGKILLs of each process, each
// broker restarted, a second bridge and aggregate; nothing may be lost or counted
// twice.
func TestChaosSmall(t *testing.T) {
	cfg := SmallConfig()
	rep := runSmall(t, cfg, "ingest", "bridge", "aggregate")
	if len(rep.BrokerRestarts) != 6 || len(rep.Seconds) != 2 {
		t.Errorf("broker restarts %v, second instances %d; want 6 and 2", rep.BrokerRestarts, len(rep.Seconds))
	}
	crashed := false
	for _, b := range rep.BrokerRestarts {
		crashed = crashed || strings.HasPrefix(b, "crash: ")
	}
	if !crashed {
		t.Errorf("no crash among the broker faults %v", rep.BrokerRestarts)
	}
	for _, p := range rep.Repairs {
		if p.Resumed == "" || p.Rebuilt == "" {
			t.Errorf("the aggregate stopped counting and was not repaired: %s", p)
		}
	}
}

// runSmall runs a short chaos run of cfg and fails the test unless every event
// was counted exactly once and each named process was killed cfg.Kills times.
func runSmall(t *testing.T, cfg Config, procs ...string) Report {
	t.Helper()
	prepareRun(t, &cfg)
	cfg.Progress = &lineWriter{t: t}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	t.Log(rep.Summary())
	if err != nil {
		t.Fatalf("chaos run (seed %d): %v", cfg.Seed, err)
	}
	if rep.Lost != 0 || rep.Twice != 0 || len(rep.Diffs) != 0 {
		t.Fatalf("lost %d, counted twice %d, differences %+v", rep.Lost, rep.Twice, rep.Diffs)
	}
	if want := int64(2723 + cfg.GenCount); rep.Expected != want || rep.Counted != want {
		t.Fatalf("expected %d, counted %d; want %d both", rep.Expected, rep.Counted, want)
	}
	for _, name := range procs {
		if rep.Kills[name] < cfg.Kills {
			t.Errorf("%s killed %d times, want %d", name, rep.Kills[name], cfg.Kills)
		}
	}
	return rep
}

// prepareRun skips (fails under CI=true) a chaos run without its tools, builds
// the wikiflow binary and fills cfg's paths, seed 1 and the overrides of
// $WIKIFLOW_CHAOS_BASE_PORT and $WIKIFLOW_CHAOS_SEED.
func prepareRun(t *testing.T, cfg *Config) {
	t.Helper()
	var missing []string
	for _, tool := range []string{"java", "redis-server", "redis-cli", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		msg := "the chaos run needs " + strings.Join(missing, ", ") + " (Kafka runs on java; go tool task prereqs installs them)"
		if testenv.InCI() {
			t.Fatal("CI=true: " + msg)
		}
		t.Skip(msg)
	}
	if testing.Short() && !testenv.InCI() {
		t.Skip("the chaos run takes minutes; skipped with -short")
	}
	root, err := FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "wikiflow")
	build := exec.Command("go", "build", "-o", bin, "./cmd/wikiflow")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build wikiflow: %v\n%s", err, out)
	}
	cfg.Bin, cfg.Root, cfg.Home = bin, root, t.TempDir()
	cfg.Seed = 1
	if s := os.Getenv("WIKIFLOW_CHAOS_BASE_PORT"); s != "" {
		if cfg.BasePort, err = strconv.Atoi(s); err != nil {
			t.Fatalf("WIKIFLOW_CHAOS_BASE_PORT: %v", err)
		}
	}
	if s := os.Getenv("WIKIFLOW_CHAOS_SEED"); s != "" {
		if cfg.Seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("WIKIFLOW_CHAOS_SEED: %v", err)
		}
	}
}
