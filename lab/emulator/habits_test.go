package emulator

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/sse"
)

// The habits of stream.wikimedia.org the emulator plays by default or on request:
// connections closed after a while, 429 past two concurrent streams, an error
// frame at the resume point, and a retention past which since starts at the end.

func TestDefaultsAreTheRealServicesHabits(t *testing.T) {
	d := DefaultConfig()
	if d.MaxConns != 2 || d.ConnLifetime != 15*time.Minute || d.RetryAfter != time.Second {
		t.Errorf("defaults: max-conns %d, conn-lifetime %v, retry-after %v; want 2, 15m, 1s", d.MaxConns, d.ConnLifetime, d.RetryAfter)
	}
}

func TestConnLifetimeClosesTheStream(t *testing.T) {
	for _, loop := range []bool{true, false} {
		t.Run("loop="+strconv.FormatBool(loop), func(t *testing.T) {
			cfg := testConfig()
			cfg.Loop, cfg.Speed = loop, 1
			cfg.ConnLifetime = 300 * time.Millisecond
			s, url := serve(t, cfg, small(3, 10*time.Millisecond))
			start := time.Now()
			r := stream(t, url, nil)
			events := 0
			var err error
			for err == nil {
				var ev sse.Event
				if ev, err = r.Next(); err == nil && ev.Type == "message" {
					events++
				}
			}
			elapsed := time.Since(start)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("stream ended with %v, want a clean end between frames", err)
			}
			if elapsed < 250*time.Millisecond || elapsed > 5*time.Second {
				t.Errorf("stream closed after %v, want about %v", elapsed, cfg.ConnLifetime)
			}
			if loop && events < 10 || !loop && events != 3 {
				t.Errorf("%d events before the close (loop %v)", events, loop)
			}
			wantStat(t, "Expired", &s.Stats().Expired, 1)
		})
	}
}

func TestTooManyConnectionsRetryAfter(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConns = 1
	cfg.RetryAfter = 2500 * time.Millisecond
	_, url := serve(t, cfg, small(3, 0))
	if first := open(t, url, nil); first.StatusCode != http.StatusOK {
		t.Fatalf("first: %s", first.Status)
	}
	second := open(t, url, nil)
	if second.StatusCode != http.StatusTooManyRequests || second.Header.Get("Retry-After") != "3" {
		t.Errorf("second: %s, Retry-After %q; want 429 and 3 (seconds, rounded up)", second.Status, second.Header.Get("Retry-After"))
	}
}

func TestErrorOnResume(t *testing.T) {
	cfg := testConfig()
	cfg.RepeatOnResume = 3
	cfg.ErrorOnResume = 2
	s, url := serve(t, cfg, small(20, 0))
	for round := 1; round <= 2; round++ {
		frames := next(t, stream(t, url, map[string]string{"Last-Event-ID": offsetID(9)}), 6)
		// Positions 7, 8, 9 repeat (the resume point is after 9); the second frame is
		// the error, and the stream goes on.
		want := []int64{7, -1, 8, 9, 10, 11}
		for i, f := range frames {
			switch {
			case want[i] < 0:
				if f.Type != "error" || f.ID != offsetID(7) {
					t.Errorf("round %d frame %d: %s id %s, want an error frame without its own id", round, i, f.Type, f.ID)
				}
			case f.Type != "message" || idOffset(t, f.ID) != want[i]:
				t.Errorf("round %d frame %d: %s at %s, want position %d", round, i, f.Type, f.ID, want[i])
			}
		}
		wantStat(t, "Errors", &s.Stats().Errors, int64(round))
	}
	// A fresh stream has none.
	for i, f := range next(t, stream(t, url, nil), 4) {
		if f.Type != "message" || idOffset(t, f.ID) != int64(i) {
			t.Errorf("fresh stream frame %d: %s %s", i, f.Type, f.ID)
		}
	}
	wantStat(t, "Errors", &s.Stats().Errors, 2)
}

func TestRetentionStartsAtTheEnd(t *testing.T) {
	cfg := testConfig()
	cfg.Loop, cfg.Rebase = true, true
	cfg.Retention = time.Hour
	s, url := serve(t, cfg, RecordingSource())
	first := func(since time.Time) (int64, time.Time) {
		ev := next(t, stream(t, url+"?since="+since.UTC().Format(time.RFC3339), nil), 1)[0]
		e, err := event.Parse(ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		return idOffset(t, ev.ID), e.Time
	}
	now := time.Now()
	if pos, _ := first(now.Add(-30 * time.Minute)); pos != 0 {
		t.Errorf("since within the retention started at %d, want 0 (the oldest event)", pos)
	}
	if s.Stats().SinceTooOld.Load() != 0 {
		t.Error("a since within the retention counted as too old")
	}
	pos, dt := first(now.Add(-2 * time.Hour))
	if d := dt.Sub(time.Now()); pos == 0 || d < -15*time.Second || d > 2*time.Second {
		t.Errorf("since older than the retention started at %d, dated %v from now; want the end (now)", pos, d)
	}
	wantStat(t, "SinceTooOld", &s.Stats().SinceTooOld, 1)

	// The recording's own times are years old: nothing is left to serve.
	cfg = testConfig()
	cfg.Retention = 7 * 24 * time.Hour
	cfg.ConnLifetime = 200 * time.Millisecond
	_, url = serve(t, cfg, RecordingSource())
	r := stream(t, url+"?since=2025-05-03T07:46:30Z", nil)
	if ev, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("since years back: got %s %.60s (err %v), want nothing until the close", ev.Type, ev.Data, err)
	}
}
