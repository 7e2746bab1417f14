package gen

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/event"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	ok := DefaultConfig()
	ok.Out, ok.Kafka.Brokers, ok.Start = OutNDJSON, nil, "2026-01-02T03:04:05Z"
	if err := ok.Validate(); err != nil {
		t.Errorf("ndjson without Kafka brokers: %v", err)
	}
	tests := []struct {
		name  string
		edit  func(*Config)
		wants []string
	}{
		{"everything wrong", func(c *Config) { c.Count, c.Rate, c.Out, c.Start = 0, -1, "file", "yesterday" },
			[]string{"count", "rate", "out", "start"}},
		{"kafka without brokers", func(c *Config) { c.Kafka.Brokers = nil }, []string{"kafka-brokers"}},
		{"sse needs no Kafka", func(c *Config) { c.Out, c.Kafka.Topic = OutSSE, "" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if len(tt.wants) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}

func TestFlagsAndEnvironment(t *testing.T) {
	env := map[string]string{"WIKIFLOW_GEN_SEED": "9", "WIKIFLOW_GEN_RATE": "12.5", "WIKIFLOW_GEN_COUNT": "7"}
	f := cli.New("gen", "generate events", "", func(k string) string { return env[k] }, io.Discard)
	var c Config
	Flags(f, &c)
	if err := f.Parse([]string{"--count", "5", "--out", "ndjson", "--kafka-topic", "t1"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	if c.Count != 5 || c.Seed != 9 || c.Rate != 12.5 || c.Out != OutNDJSON || c.TruthFile != "gen-truth.json" || c.Kafka.Topic != "t1" {
		t.Errorf("config = %+v", c)
	}
}

// checkRunFiles reads the events and the truth a run with cfg wrote, and checks
// the truth against the events of the file.
func checkRunFiles(t *testing.T, cfg Config) ([]byte, *Truth) {
	t.Helper()
	data, err := os.ReadFile(cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	truth, err := ReadTruth(cfg.TruthFile)
	if err != nil {
		t.Fatal(err)
	}
	want := countLines(t, data)
	want.Seed = cfg.Seed
	compareTruth(t, truth, want)
	return data, truth
}

func TestRunNDJSON(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Out, cfg.Count, cfg.Seed = OutNDJSON, 3000, 4
	cfg.File, cfg.TruthFile = dir+"/events.ndjson", dir+"/truth.json"
	cfg.Start = "2030-06-01T00:00:00Z"
	if err := Run(t.Context(), cfg, io.Discard, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	data, _ := checkRunFiles(t, cfg)
	first, err := event.Parse(data[:bytes.IndexByte(data, '\n')])
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	if first.Time.After(start) || start.Sub(first.Time) > maxJitter {
		t.Errorf("first event dated %v, start %v", first.Time, start)
	}

	// The same run to stdout gives the same bytes.
	var out bytes.Buffer
	cfg.File, cfg.TruthFile = "-", ""
	if err := Run(t.Context(), cfg, &out, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Error("stdout output differs from the file output of the same configuration")
	}
}

func TestRunStopsOnCancelAndKeepsTheTruth(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Out, cfg.Count, cfg.Rate = OutNDJSON, 1_000_000, 2000
	cfg.File, cfg.TruthFile = dir+"/events.ndjson", dir+"/truth.json"
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := Run(ctx, cfg, io.Discard, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("Run after cancellation: %v, want nil", err)
	}
	_, truth := checkRunFiles(t, cfg)
	if truth.Events == 0 || truth.Events >= int64(cfg.Count) {
		t.Errorf("a cancelled run wrote %d of %d events", truth.Events, cfg.Count)
	}
}

func TestRunRejectsSSE(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Out = OutSSE
	if err := Run(t.Context(), cfg, io.Discard, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "emulator") {
		t.Errorf("Run with out=sse: %v, want an error pointing at the emulator", err)
	}
}
