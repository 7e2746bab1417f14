package ingest

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/wire"
)

func TestUserAgent(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "1.2.3"
	got := UserAgent(" ops@example.org ")
	want := "wikiflow/1.2.3 (ops@example.org) Go-http-client/1.1"
	if got != want {
		t.Fatalf("UserAgent = %q, want %q", got, want)
	}
	Version = "dev"
	if got := UserAgent(DefaultContact); got != "wikiflow/dev (https://github.com/wikiflow/wikiflow/issues) Go-http-client/1.1" {
		t.Fatalf("default UserAgent = %q", got)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "", want: ""},
		{in: "10m", want: ms(now.Add(-10 * time.Minute))},
		{in: "1h30m", want: ms(now.Add(-90 * time.Minute))},
		{in: "1714564800000", want: "1714564800000"},
		{in: "2024-05-01T11:00:00Z", want: ms(now.Add(-time.Hour))},
		{in: "2024-05-01T13:00:00+02:00", want: ms(now.Add(-time.Hour))},
		{in: "2024-04-30", want: ms(time.Date(2024, 4, 30, 0, 0, 0, 0, time.UTC))},
		{in: "-5m", bad: true},
		{in: "yesterday", bad: true},
	}
	for _, tc := range tests {
		got, err := parseSince(tc.in, now)
		if tc.bad {
			if err == nil {
				t.Errorf("parseSince(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseSince(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	c := DefaultConfig()
	c.URL = "ftp://example.org"
	c.Contact = " "
	c.Since = "never"
	c.IdleTimeout = 0
	c.BackoffMax = time.Millisecond
	c.DeadLetterTopic = c.Kafka.Topic
	c.BatchSize = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 7 {
		t.Fatalf("want 7 problems reported at once, got: %v", err)
	}
	for _, word := range []string{"url", "contact", "since", "idle-timeout", "backoff-max", "dead-letter-topic", "batch-size"} {
		if !strings.Contains(err.Error(), word) {
			t.Errorf("error does not mention %s: %v", word, err)
		}
	}
}

func TestFlags(t *testing.T) {
	env := map[string]string{
		"WIKIFLOW_SOURCE_URL":   "http://127.0.0.1:8080/v2/stream/recentchange",
		"WIKIFLOW_SINCE":        "10m",
		"WIKIFLOW_IDLE_TIMEOUT": "5s",
	}
	f := cli.New("ingest", "test", "", func(k string) string { return env[k] }, io.Discard)
	var c Config
	Flags(f, &c)
	if err := f.Parse([]string{"--batch-size", "7"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	if c.URL != env["WIKIFLOW_SOURCE_URL"] || c.Since != "10m" || c.IdleTimeout != 5*time.Second || c.BatchSize != 7 {
		t.Fatalf("flags/env not applied: %+v", c)
	}
	d := DefaultConfig()
	if c.Contact != d.Contact || c.Kafka.Topic != wire.DefaultTopic || c.DeadLetterTopic != wire.DefaultDeadLetterTopic ||
		c.Partitions != 3 || c.ReplicationFactor != 1 || c.BatchTimeout != 10*time.Millisecond ||
		c.MaxEventSize != 1<<20 || c.BackoffMin != time.Second || c.BackoffMax != time.Minute {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"junk":                          0,
		"-4":                            0,
		"99999":                         maxRetryAfter,
		"Wed, 01 May 2024 12:00:30 GMT": 30 * time.Second,
	}
	for in, want := range tests {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRecentIDs(t *testing.T) {
	r := newRecentIDs(3)
	for _, id := range []string{"a", "b", "c"} {
		if !r.add(id) {
			t.Fatalf("%s reported as seen", id)
		}
	}
	if r.add("a") {
		t.Fatal("a not reported as seen")
	}
	r.add("d") // forgets a
	if !r.add("a") {
		t.Fatal("a still remembered beyond the window")
	}
	if r.len() != 3 {
		t.Fatalf("len %d, want 3", r.len())
	}
	off := newRecentIDs(0)
	if !off.add("x") || !off.add("x") {
		t.Fatal("a zero window must remember nothing")
	}
}

// BenchmarkRecentIDs adds distinct meta.ids (UUIDs, as Wikimedia's) to a set of
// the default window, so that each add also forgets the oldest id.
func BenchmarkRecentIDs(b *testing.B) {
	ids := make([]string, 100_000)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", i*2654435761%1<<32, i%65536, i%4096, (i/7)%4096, i*40503)
	}
	r := newRecentIDs(DefaultConfig().DedupeWindow)
	i := 0
	for b.Loop() {
		if !r.add(ids[i%len(ids)]) && i < len(ids) {
			b.Fatalf("id %d reported as seen", i)
		}
		i++
	}
}
