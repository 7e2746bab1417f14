package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/sse"
)

func TestFramingByteForByte(t *testing.T) {
	src := small(2, 0)
	for _, nl := range []string{"\n", "\r\n"} {
		t.Run(strconv.Quote(nl), func(t *testing.T) {
			cfg := testConfig()
			cfg.CRLF = nl == "\r\n"
			_, url := serve(t, cfg, src)
			resp := open(t, url, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %s", resp.Status)
			}
			if got := resp.Header.Get("Content-Type"); got != "text/event-stream; charset=utf-8" {
				t.Errorf("Content-Type = %q", got)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q", got)
			}
			want := ":ok" + nl + nl
			for i := range src {
				want += "event: message" + nl +
					"id: " + offsetID(int64(i)) + nl +
					"data: " + src[i].data + nl + nl
			}
			got := make([]byte, len(want))
			if _, err := io.ReadFull(resp.Body, got); err != nil {
				t.Fatalf("read: %v (got %q)", err, got)
			}
			if string(got) != want {
				t.Fatalf("body:\n%q\nwant:\n%q", got, want)
			}
			// Nothing follows the last event: no heartbeat, the stream stays open.
			done := make(chan error, 1)
			go func() {
				_, err := resp.Body.Read(make([]byte, 1))
				done <- err
			}()
			select {
			case err := <-done:
				t.Fatalf("read after the last event returned %v; want the stream to stay open and silent", err)
			case <-time.After(200 * time.Millisecond):
			}
		})
	}
}

func TestServesWholeRecordingInOrder(t *testing.T) {
	recs := recording.Events()
	s, url := serve(t, testConfig(), RecordingSource())
	r := stream(t, url, nil)
	evs := next(t, r, len(recs))
	seen := map[string]bool{}
	for i, ev := range evs {
		if ev.Type != "message" {
			t.Fatalf("event %d: type %q", i, ev.Type)
		}
		if got := idOffset(t, ev.ID); got != int64(i) {
			t.Fatalf("event %d: id offset %d", i, got)
		}
		if !bytes.Equal(ev.Data, recs[i].Data) {
			t.Fatalf("event %d: data differs from recording line %d", i, recs[i].Line)
		}
		id, _, err := event.MetaID(ev.Data)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if seen[id] {
			t.Fatalf("event %d: meta.id %s served twice", i, id)
		}
		seen[id] = true
	}
	if len(seen) != 2723 {
		t.Errorf("%d distinct meta.ids, want 2723", len(seen))
	}
	wantStat(t, "Events", &s.Stats().Events, 2723)
	if got := s.Stats().Connections.Load(); got != 1 {
		t.Errorf("Stats.Connections = %d", got)
	}
}

// recordedTimes returns meta.dt of every recorded event, parsed by internal/event.
func recordedTimes(t *testing.T) []time.Time {
	t.Helper()
	var out []time.Time
	for _, r := range recording.Events() {
		ev, err := event.Parse(r.Data)
		if err != nil {
			t.Fatalf("line %d: %v", r.Line, err)
		}
		out = append(out, ev.Time)
	}
	return out
}

// firstAtOrAfterMs is the expected start position for a time, computed directly.
func firstAtOrAfterMs(times []time.Time, ms int64) int {
	for i, tm := range times {
		if tm.UnixMilli() >= ms {
			return i
		}
	}
	return len(times)
}

func TestResume(t *testing.T) {
	times := recordedTimes(t)
	// An event of block D sharing its millisecond with the one before.
	shared := -1
	for i := 300; i < len(times); i++ {
		if times[i].Equal(times[i-1]) && firstAtOrAfterMs(times, times[i].UnixMilli()) < i {
			shared = i
			break
		}
	}
	if shared < 0 {
		t.Fatal("no event shares its meta.dt with its predecessor")
	}
	tsID := func(ms int64) string {
		return `[{"topic":"eqiad.mediawiki.recentchange","partition":0,"timestamp":` + jsonInt(ms) +
			`},{"topic":"codfw.mediawiki.recentchange","partition":0,"offset":-1}]`
	}
	tests := []struct {
		name      string
		lastID    string
		wantStart int
	}{
		{"offset", offsetID(99), 100},
		{"offset zero", offsetID(0), 1},
		{"timestamp", tsID(times[500].UnixMilli()), firstAtOrAfterMs(times, times[500].UnixMilli())},
		{"timestamp shared ms repeats", tsID(times[shared].UnixMilli()), firstAtOrAfterMs(times, times[shared].UnixMilli())},
		{"since ignored", offsetID(9), 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, url := serve(t, testConfig(), RecordingSource())
			if tt.name == "since ignored" {
				url += "?since=2030-01-01T00:00:00Z"
			}
			evs := next(t, stream(t, url, map[string]string{"Last-Event-ID": tt.lastID}), 3)
			want := recording.Events()[tt.wantStart : tt.wantStart+3]
			for i, ev := range evs {
				if got := idOffset(t, ev.ID); got != int64(tt.wantStart+i) {
					t.Errorf("event %d: offset %d, want %d", i, got, tt.wantStart+i)
				}
				if !bytes.Equal(ev.Data, want[i].Data) {
					t.Errorf("event %d: data is not recording line %d", i, want[i].Line)
				}
			}
			if s.Stats().Resumes.Load() != 1 {
				t.Errorf("Stats.Resumes = %d", s.Stats().Resumes.Load())
			}
		})
	}
}

func TestSince(t *testing.T) {
	times := recordedTimes(t)
	pick := times[1000]
	tests := []struct {
		name, since string
		want        int
	}{
		{"iso", pick.UTC().Format(time.RFC3339Nano), firstAtOrAfterMs(times, pick.UnixMilli())},
		{"iso seconds", "2025-05-03T07:46:30Z", firstAtOrAfterMs(times, time.Date(2025, 5, 3, 7, 46, 30, 0, time.UTC).UnixMilli())},
		{"iso offset", "2023-07-29T09:52:00+02:00", firstAtOrAfterMs(times, time.Date(2023, 7, 29, 7, 52, 0, 0, time.UTC).UnixMilli())},
		{"ms", jsonInt(pick.UnixMilli() + 1), firstAtOrAfterMs(times, pick.UnixMilli()+1)},
		{"before everything", "0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want <= 0 && tt.name != "before everything" || tt.want >= len(times)-2 {
				t.Fatalf("bad test case: start %d", tt.want)
			}
			_, url := serve(t, testConfig(), RecordingSource())
			evs := next(t, stream(t, url+"?since="+neturl.QueryEscape(tt.since), nil), 2)
			for i, ev := range evs {
				if got := idOffset(t, ev.ID); got != int64(tt.want+i) {
					t.Errorf("event %d: offset %d, want %d", i, got, tt.want+i)
				}
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	cfg := testConfig()
	cfg.Loop = true
	s, url := serve(t, cfg, small(3, 0))
	tests := []struct {
		name, query, lastID, wantDetail string
	}{
		{"since words", "?since=yesterday", "", "since"},
		{"since garbage date", "?since=2026-13-45", "", "since"},
		{"since ignored with bad id", "?since=yesterday", "nope", "Last-Event-ID"},
		{"id not json", "", "nope", "Last-Event-ID"},
		{"id empty array", "", "[]", "no entry"},
		{"id no position", "", `[{"topic":"codfw.mediawiki.recentchange","partition":0,"offset":-1}]`, "no entry"},
		{"id offset too far", "", offsetID(1 << 41), "out of range"},
		{"since too far", "?since=9000-01-01", "", "beyond"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.lastID != "" {
				hdr["Last-Event-ID"] = tt.lastID
			}
			resp := open(t, url+tt.query, hdr)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %s, want 400", resp.Status)
			}
			var body struct {
				Status int    `json:"status"`
				Detail string `json:"detail"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if body.Status != 400 || !strings.Contains(body.Detail, tt.wantDetail) {
				t.Errorf("body %+v, want detail mentioning %q", body, tt.wantDetail)
			}
			if got := s.Stats().BadRequests.Load(); got != int64(i+1) {
				t.Errorf("Stats.BadRequests = %d, want %d", got, i+1)
			}
		})
	}
}

func TestTooManyConnections(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConns = 2
	s, url := serve(t, cfg, small(3, 0))
	first := open(t, url, nil)
	second := open(t, url, nil)
	for _, r := range []*http.Response{first, second} {
		if r.StatusCode != http.StatusOK {
			t.Fatalf("status %s", r.Status)
		}
	}
	third := open(t, url, nil)
	if third.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third connection: %s, want 429", third.Status)
	}
	if third.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	var body struct {
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}
	if err := json.NewDecoder(third.Body).Decode(&body); err != nil || body.Status != 429 || body.Detail == "" {
		t.Errorf("429 body %+v (%v)", body, err)
	}
	if got := s.Stats().Rejected.Load(); got != 1 {
		t.Errorf("Stats.Rejected = %d", got)
	}
	// Once a stream ends, its slot is free again.
	first.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Active.Load() > 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if again := open(t, url, nil); again.StatusCode != http.StatusOK {
		t.Fatalf("after a stream ended: %s, want 200", again.Status)
	}
}

func TestLoopServesDistinctEvents(t *testing.T) {
	src := small(3, 10*time.Millisecond)
	cfg := testConfig()
	cfg.Loop = true
	_, url := serve(t, cfg, src)
	evs := next(t, stream(t, url, nil), 9)
	ids := map[string]bool{}
	firstDT, _ := time.Parse(time.RFC3339, "2026-05-05T11:17:40Z")
	span := 3 * time.Second // event times cover 2 s; one pass moves them 3 s
	for n, ev := range evs {
		pass, i := n/3, n%3
		if got := idOffset(t, ev.ID); got != int64(n) {
			t.Errorf("frame %d: offset %d", n, got)
		}
		id, dt, ts := metaOf(t, ev.Data)
		if ids[id] {
			t.Fatalf("frame %d: meta.id %s repeats", n, id)
		}
		ids[id] = true
		if pass == 0 && id != "id-"+string(rune('a'+i)) {
			t.Errorf("first pass rewrote meta.id to %s", id)
		}
		wantDT := firstDT.Add(time.Duration(i)*time.Second + time.Duration(pass)*span)
		if want := wantDT.Format("2006-01-02T15:04:05.000Z"); dt != want {
			t.Errorf("frame %d: meta.dt %s, want %s", n, dt, want)
		}
		if ts != wantDT.Unix() {
			t.Errorf("frame %d: timestamp %d, want %d", n, ts, wantDT.Unix())
		}
		if !strings.Contains(string(ev.Data), `"comment":"c`+string(rune('a'+i))+`"`) {
			t.Errorf("frame %d: other fields changed: %s", n, ev.Data)
		}
	}
	// A resume into a later pass serves the same bytes again.
	again := next(t, stream(t, url, map[string]string{"Last-Event-ID": offsetID(6)}), 1)
	if !bytes.Equal(again[0].Data, evs[7].Data) {
		t.Errorf("resume at position 7 served %s, want %s", again[0].Data, evs[7].Data)
	}
	// since in the third pass finds it too.
	_, dt, _ := metaOf(t, evs[7].Data)
	bySince := next(t, stream(t, url+"?since="+dt, nil), 1)
	if idOffset(t, bySince[0].ID) != 7 {
		t.Errorf("since %s started at %s, want position 7", dt, bySince[0].ID)
	}
}

func TestRebaseShiftsTimes(t *testing.T) {
	times := recordedTimes(t)
	recs := recording.Events()
	cfg := testConfig()
	cfg.Rebase = true
	before := time.Now()
	_, url := serve(t, cfg, RecordingSource())
	evs := next(t, stream(t, url, nil), len(recs))
	rebased := make([]time.Time, len(evs))
	for i, ev := range evs {
		e, err := event.Parse(ev.Data)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		rebased[i] = e.Time
		_, dt, ts := metaOf(t, ev.Data)
		_, origDT, origTS := metaOf(t, recs[i].Data)
		if strings.Contains(origDT, ".") != strings.Contains(dt, ".") || len(origDT) != len(dt) {
			t.Fatalf("event %d: meta.dt %q does not keep the style of %q", i, dt, origDT)
		}
		if shift := e.Time.Sub(times[i]); time.Duration(ts-origTS)*time.Second != shift {
			t.Fatalf("event %d: timestamp moved %ds, meta.dt moved %v", i, ts-origTS, shift)
		}
	}
	if d := rebased[0].Sub(before); d < -time.Second || d > 5*time.Second {
		t.Errorf("first event at %v, want about now (%v)", rebased[0], before)
	}
	// Relative spacing holds inside block D (lines 248..2723).
	for _, i := range []int{248, 1000, 2000, 2722} {
		if got, want := rebased[i].Sub(rebased[247]), times[i].Sub(times[247]); got != want {
			t.Errorf("event %d: %v after event 247, want %v", i, got, want)
		}
	}
	// Block D begins near its arrival offset, not years later.
	if d := rebased[247].Sub(before); d < 0 || d > recs[247].Offset+time.Minute {
		t.Errorf("block D starts %v after now, want about %v", d, recs[247].Offset)
	}
	// No event runs far ahead of the moment it is served at the recorded pace,
	// even in the older blocks, whose event times advance faster than their pacing.
	for i, rec := range recs {
		if d := rebased[i].Sub(before.Add(rec.Offset)); d > rebaseDrift+2*time.Second {
			t.Fatalf("event %d is dated %v after it is served", i, d)
		}
	}
}

func TestPacing(t *testing.T) {
	recs := recording.Events()
	tests := []struct {
		name   string
		src    Source
		speed  float64
		lastID string // resume point: pacing counts from the first served event
		n      int
		want   time.Duration
	}{
		// The first 100 events of block D, the one with recorded arrival times.
		{"recorded speed 50", RecordingSource(), 50, offsetID(246), 100, (recs[346].Offset - recs[247].Offset) / 50},
		{"synthetic speed 1", small(6, 80*time.Millisecond), 1, "", 6, 400 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Speed = tt.speed
			_, url := serve(t, cfg, tt.src)
			hdr := map[string]string{}
			if tt.lastID != "" {
				hdr["Last-Event-ID"] = tt.lastID
			}
			start := time.Now()
			next(t, stream(t, url, hdr), tt.n)
			if elapsed := time.Since(start); elapsed < tt.want*9/10 {
				t.Errorf("%d events took %v, want at least %v", tt.n, elapsed, tt.want)
			}
		})
	}
}

func TestFaultCut(t *testing.T) {
	cfg := testConfig()
	cfg.CutEvery = 3
	s, url := serve(t, cfg, small(10, 0))
	r := stream(t, url, nil)
	evs := next(t, r, 2)
	if _, err := r.Next(); !errors.Is(err, sse.ErrTruncated) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("third frame: err %v, want a truncated stream", err)
	}
	wantStat(t, "Cuts", &s.Stats().Cuts, 1)
	// Resuming from the last complete frame serves the cut event.
	again := next(t, stream(t, url, map[string]string{"Last-Event-ID": evs[1].ID}), 1)
	if idOffset(t, again[0].ID) != 2 {
		t.Errorf("resume served %s, want position 2", again[0].ID)
	}
}

func TestFaultSilence(t *testing.T) {
	cfg := testConfig()
	cfg.SilentAfter = 2
	cfg.SilentFor = 300 * time.Millisecond
	s, url := serve(t, cfg, small(10, 0))
	r := stream(t, url, nil)
	next(t, r, 2)
	start := time.Now()
	_, err := r.Next()
	if !errors.Is(err, io.EOF) {
		t.Fatalf("after the silence: %v, want the stream to end", err)
	}
	if elapsed := time.Since(start); elapsed < 250*time.Millisecond {
		t.Errorf("stream ended after %v of silence, want at least %v", elapsed, cfg.SilentFor)
	}
	if got := s.Stats().Silences.Load(); got != 1 {
		t.Errorf("Stats.Silences = %d", got)
	}
}

func TestFaultError(t *testing.T) {
	cfg := testConfig()
	cfg.ErrorEvery = 3
	s, url := serve(t, cfg, small(10, 0))
	r := stream(t, url, nil)
	evs := next(t, r, 3)
	for i, ev := range evs[:2] {
		if ev.Type != "message" || idOffset(t, ev.ID) != int64(i) {
			t.Errorf("frame %d: %s %s", i, ev.Type, ev.ID)
		}
	}
	if evs[2].Type != "error" || !json.Valid(evs[2].Data) {
		t.Errorf("third frame: type %q data %s, want an error frame with JSON", evs[2].Type, evs[2].Data)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the error frame: %v, want the stream to end", err)
	}
	wantStat(t, "Errors", &s.Stats().Errors, 1)
}

func TestFaultRepeatOnResume(t *testing.T) {
	cfg := testConfig()
	cfg.RepeatOnResume = 2
	s, url := serve(t, cfg, small(20, 0))
	evs := next(t, stream(t, url, map[string]string{"Last-Event-ID": offsetID(9)}), 3)
	for i, want := range []int64{8, 9, 10} {
		if got := idOffset(t, evs[i].ID); got != want {
			t.Errorf("frame %d: position %d, want %d", i, got, want)
		}
	}
	wantStat(t, "Repeats", &s.Stats().Repeats, 2)
	// A fresh (not resumed) stream repeats nothing.
	fresh := next(t, stream(t, url, nil), 1)
	if idOffset(t, fresh[0].ID) != 0 {
		t.Errorf("fresh stream starts at %s", fresh[0].ID)
	}
}

func TestFaultInjectedFrames(t *testing.T) {
	src := small(4, 0)
	tests := []struct {
		name  string
		set   func(*Config)
		stat  func(*Stats) *atomic.Int64
		check func(t *testing.T, injected, after []byte)
	}{
		{"malformed", func(c *Config) { c.MalformedEvery = 2 }, func(s *Stats) *atomic.Int64 { return &s.Malformed },
			func(t *testing.T, injected, after []byte) {
				if json.Valid(injected) || !bytes.HasPrefix(after, injected) {
					t.Errorf("malformed frame %q is not a truncation of %q", injected, after)
				}
			}},
		{"huge", func(c *Config) { c.HugeEvery = 2 }, func(s *Stats) *atomic.Int64 { return &s.Huge },
			func(t *testing.T, injected, after []byte) {
				if len(injected) != hugeSize || !json.Valid(injected) {
					t.Fatalf("huge frame: %d bytes, valid JSON %v", len(injected), json.Valid(injected))
				}
				if _, err := event.Parse(injected); !errors.Is(err, event.ErrTooLarge) {
					t.Errorf("event.Parse(huge) = %v, want ErrTooLarge", err)
				}
				e, err := event.ParseLimit(injected, 4<<20)
				if err != nil {
					t.Fatal(err)
				}
				orig, _ := event.Parse(after)
				if e.ID == orig.ID || e.Domain != orig.Domain || e.Time != orig.Time {
					t.Errorf("huge copy: id %s domain %s time %v; original %s %s %v", e.ID, e.Domain, e.Time, orig.ID, orig.Domain, orig.Time)
				}
			}},
		{"canary", func(c *Config) { c.CanaryEvery = 2 }, func(s *Stats) *atomic.Int64 { return &s.Canaries },
			func(t *testing.T, injected, after []byte) {
				if _, err := event.Parse(injected); !errors.Is(err, event.ErrCanary) {
					t.Errorf("event.Parse(canary) = %v, want ErrCanary", err)
				}
				_, dt, _ := metaOf(t, injected)
				_, origDT, _ := metaOf(t, after)
				if dt != origDT {
					t.Errorf("canary meta.dt %s, want the event's %s", dt, origDT)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.set(&cfg)
			s, url := serve(t, cfg, src)
			frames := next(t, stream(t, url, nil), 6)
			// Frames: event 0, event 1, injected, event 2, event 3, injected.
			real := []int{0, 1, 3, 4}
			for pos, f := range real {
				if got := idOffset(t, frames[f].ID); got != int64(pos) || string(frames[f].Data) != src[pos].data {
					t.Errorf("frame %d: position %d, want event %d unchanged", f, got, pos)
				}
			}
			for _, f := range []int{2, 5} {
				if frames[f].ID != frames[f-1].ID {
					t.Errorf("injected frame %d: id %s, want the preceding event's %s", f, frames[f].ID, frames[f-1].ID)
				}
				tt.check(t, frames[f].Data, frames[f-1].Data)
			}
			wantStat(t, tt.name, tt.stat(s.Stats()), 2)
			wantStat(t, "Frames", &s.Stats().Frames, 6)
		})
	}
}

func TestTimestampIDs(t *testing.T) {
	cfg := testConfig()
	cfg.TimestampIDs = true
	src := small(3, 0)
	_, url := serve(t, cfg, src)
	evs := next(t, stream(t, url, nil), 3)
	var entries []idEntry
	if err := json.Unmarshal([]byte(evs[1].ID), &entries); err != nil || entries[0].Timestamp == nil {
		t.Fatalf("id %s: want a timestamp entry (%v)", evs[1].ID, err)
	}
	want := time.Date(2026, 5, 5, 11, 17, 41, 0, time.UTC).UnixMilli()
	if *entries[0].Timestamp != want {
		t.Errorf("timestamp %d, want %d", *entries[0].Timestamp, want)
	}
	// Resuming with it restarts at the event with that time.
	again := next(t, stream(t, url, map[string]string{"Last-Event-ID": evs[1].ID}), 1)
	if string(again[0].Data) != src[1].data {
		t.Errorf("resume served %s", again[0].Data)
	}
}

func TestRequestChecks(t *testing.T) {
	cfg := testConfig()
	cfg.RequireUserAgent = true
	s, url := serve(t, cfg, small(2, 0))
	if r := open(t, url, map[string]string{"User-Agent": ""}); r.StatusCode != http.StatusForbidden {
		t.Errorf("without User-Agent: %s, want 403", r.Status)
	}
	if s.Stats().Forbidden.Load() != 1 {
		t.Errorf("Stats.Forbidden = %d", s.Stats().Forbidden.Load())
	}
	if r := open(t, strings.TrimSuffix(url, cfg.Path)+"/v2/stream/other", nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("other path: %s, want 404", r.Status)
	}
	req, _ := http.NewRequest(http.MethodPost, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %s, want 405", resp.Status)
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	cfg := testConfig()
	s, err := New(cfg, small(2, 0), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	r := stream(t, "http://"+ln.Addr().String()+cfg.Path, nil)
	next(t, r, 2)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := r.Next(); err == nil {
		t.Error("the open stream still delivered an event after shutdown")
	}
	if s.Addr() != ln.Addr().String() {
		t.Errorf("Addr() = %q, want %q", s.Addr(), ln.Addr())
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(testConfig(), sliceSource{}, quietLog()); err == nil {
		t.Error("empty source accepted")
	}
	bad := sliceSource{{data: "{\"meta\":{}}\n{}"}}
	if _, err := New(testConfig(), bad, quietLog()); err == nil {
		t.Error("event with a line break accepted")
	}
	cfg := testConfig()
	cfg.MaxConns = 0
	if _, err := New(cfg, small(1, 0), quietLog()); err == nil {
		t.Error("invalid config accepted")
	}
}

// TestRebaseResumeInALaterPassIsDatedNow restarts the emulator under a client that
// resumes deep in the loop (as ingest does after `task down` / `task up`): the
// resumed events are dated about now, not passes ahead of the clock, and a second
// connection sees the same times.
func TestRebaseResumeInALaterPassIsDatedNow(t *testing.T) {
	cfg := testConfig()
	cfg.Rebase, cfg.Loop = true, true
	n := int64(len(recording.Events()))
	before := time.Now()
	_, url := serve(t, cfg, RecordingSource())
	resume := func() []byte {
		h := map[string]string{"Last-Event-ID": `[{"topic":"eqiad.mediawiki.recentchange","partition":0,"offset":` + strconv.FormatInt(5*n+299, 10) + `}]`}
		return next(t, stream(t, url, h), 1)[0].Data
	}
	first := resume()
	e, err := event.Parse(first)
	if err != nil {
		t.Fatal(err)
	}
	if d := e.Time.Sub(before); d < -15*time.Second || d > 15*time.Second {
		t.Fatalf("an event resumed in pass 5 is dated %v from now", d)
	}
	if again := resume(); string(again) != string(first) {
		t.Fatal("a second connection sees the resumed event differently")
	}
}
