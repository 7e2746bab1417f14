package replay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
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

type stored struct {
	seq uint64
	ev  event.Event
	raw []byte
}

// fill publishes the recording into a fresh stream and returns what was stored.
func fill(t *testing.T) (*nats.Conn, []stored) {
	t.Helper()
	var raws [][]byte
	for _, rec := range recording.Events() {
		raws = append(raws, rec.Data)
	}
	return fillWith(t, raws)
}

// fillWith publishes raws, as the log would hold them, into a fresh stream and
// returns what was stored.
func fillWith(t *testing.T, raws [][]byte) (*nats.Conn, []stored) {
	t.Helper()
	url, _ := testenv.NATS(t)
	nc := testenv.Connect(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: wire.DefaultStream, Subjects: []string{wire.SubjectAll}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	var out []stored
	for _, raw := range raws {
		ev, err := event.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(ev.Subject(wire.SubjectPrefix))
		m.Data = raw
		m.Header.Set(nats.MsgIdHdr, ev.ID)
		ack, err := js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, stored{seq: ack.Sequence, ev: ev, raw: raw})
	}
	return nc, out
}

func run(t *testing.T, nc *nats.Conn, cfg Config) (string, Summary, error) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sum, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil).RunConn(ctx, nc, &out)
	if js, jerr := jetstream.New(nc); jerr == nil {
		if names := testenv.ConsumerNames(t, js, wire.DefaultStream); len(names) > 0 {
			t.Errorf("the replay left consumers behind: %v", names)
		}
	}
	return out.String(), sum, err
}

func TestReplayFiltersSelectExactlyTheRightEvents(t *testing.T) {
	nc, all := fill(t)
	tests := []struct {
		name string
		mod  func(*Config)
		keep func(s stored) bool
	}{
		{"everything", func(*Config) {}, func(stored) bool { return true }},
		{"one wiki", func(c *Config) { c.Wikis = []string{"enwiki"} }, func(s stored) bool { return s.ev.Wiki == "enwiki" }},
		{"two types", func(c *Config) { c.Types = []string{"new", "log"} }, func(s stored) bool { return s.ev.Type == "new" || s.ev.Type == "log" }},
		{"wiki and type", func(c *Config) { c.Wikis = []string{"commonswiki"}; c.Types = []string{"categorize"} },
			func(s stored) bool { return s.ev.Wiki == "commonswiki" && s.ev.Type == "categorize" }},
		{"bots", func(c *Config) { c.Bot = "true" }, func(s stored) bool { return s.ev.Bot }},
		{"humans on wikidata", func(c *Config) { c.Bot = "false"; c.Wikis = []string{"wikidatawiki"} }, func(s stored) bool { return !s.ev.Bot && s.ev.Wiki == "wikidatawiki" }},
		{"sequence range", func(c *Config) { c.StartSeq = 100; c.EndSeq = 250 }, func(s stored) bool { return s.seq >= 100 && s.seq <= 250 }},
		{"limit", func(c *Config) { c.Limit = 10 }, func(s stored) bool { return s.seq <= 10 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mod(&cfg)
			out, sum, err := run(t, nc, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, s := range all {
				if tc.keep(s) {
					want = append(want, string(s.raw))
				}
			}
			got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(want) == 0 {
				t.Fatal("test selects nothing")
			}
			if len(got) != len(want) || sum.Events != len(want) {
				t.Fatalf("got %d lines (summary %d), want %d", len(got), sum.Events, len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("line %d differs:\n got %.120s\nwant %.120s", i, got[i], want[i])
				}
			}
		})
	}
}

func TestReplaySSEIsReadableByAnEventStreamsClient(t *testing.T) {
	nc, all := fill(t)
	cfg := DefaultConfig()
	cfg.Format = FormatSSE
	cfg.EndSeq = 50
	out, _, err := run(t, nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, ":ok\n\nevent: message\nid: [{") {
		t.Fatalf("not Wikimedia's framing: %.80q", out)
	}
	r := sse.NewReader(strings.NewReader(out), 0)
	n := 0
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type != "message" || string(ev.Data) != string(all[n].raw) {
			t.Fatalf("frame %d: type %q data %.60q", n, ev.Type, ev.Data)
		}
		if ev.ID != SSEID(wire.DefaultStream, all[n].seq) {
			t.Fatalf("frame %d id %q", n, ev.ID)
		}
		n++
	}
	if n != 50 {
		t.Fatalf("read %d frames, want 50", n)
	}
}

func TestReplayTable(t *testing.T) {
	nc, _ := fill(t)
	cfg := DefaultConfig()
	cfg.Format = FormatTable
	cfg.Limit = 5
	out, _, err := run(t, nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "EVENT TIME") || !strings.Contains(lines[1], "commonswiki") {
		t.Fatalf("table:\n%s", out)
	}
}

func TestReplayOutsideRetentionIsAClearError(t *testing.T) {
	nc, _ := fill(t)
	for _, tc := range []struct{ name, since, until string }{
		{"until before the log", "", "2001-01-01T00:00:00Z"},
		{"since after the log", "2999-01-01T00:00:00Z", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Since, cfg.Until = tc.since, tc.until
			_, _, err := run(t, nc, cfg)
			if !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), "the log holds seq 1..2723") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestReplaySinceSelectsByLogTime(t *testing.T) {
	nc, all := fill(t)
	time.Sleep(1100 * time.Millisecond)
	mark := time.Now()
	js, _ := jetstream.New(nc)
	ev := all[0].ev
	m := nats.NewMsg(ev.Subject(wire.SubjectPrefix))
	m.Data = all[0].raw
	m.Header.Set(nats.MsgIdHdr, "later-one")
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Since = mark.UTC().Format(time.RFC3339Nano)
	out, sum, err := run(t, nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Events != 1 || sum.FirstSeq != uint64(len(all)+1) || strings.Count(out, "\n") != 1 {
		t.Fatalf("since: %d events from seq %d", sum.Events, sum.FirstSeq)
	}
}

func TestConfigValidation(t *testing.T) {
	bad := DefaultConfig()
	bad.Format, bad.Bot, bad.Since, bad.Limit = "xml", "maybe", "yesterday", -1
	bad.Stream = "a.b"
	err := bad.Validate()
	for _, want := range []string{"format", "bot", "since", "limit", "stream:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validation error lacks %q: %v", want, err)
		}
	}
	if _, err := ParseTime("15m", time.Now()); err != nil {
		t.Error(err)
	}
	if got, _ := ParseTime("1700000000000", time.Now()); got.UnixMilli() != 1700000000000 {
		t.Errorf("ms: %v", got)
	}
}

// TestReplayLeavesNoConsumerBehind checks that the stream lists no consumer the
// moment a replay returns, over replays of several fetches each. Each Fetch of the
// ordered consumer replaces its server-side consumer and deletes the former one in
// the background, so the one of the fetch before the last could still be listed,
// and kept until the inactivity timeout when the command exited first.
func TestReplayLeavesNoConsumerBehind(t *testing.T) {
	nc, _ := fill(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		cfg := DefaultConfig()
		cfg.StartSeq, cfg.EndSeq = uint64(1+i*50), uint64(1001+i*50)
		sum, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil).RunConn(context.Background(), nc, io.Discard)
		if err != nil || sum.Events != 1001 {
			t.Fatalf("replay %d: %d events, %v", i, sum.Events, err)
		}
		if names := testenv.ConsumerNames(t, js, wire.DefaultStream); len(names) > 0 {
			t.Fatalf("replay %d left consumers behind: %v", i, names)
		}
	}
}
