package emulator

import (
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/event"
)

// TestLoopRebaseNeverAheadOfTheClock checks every event of many passes of the
// recording: with Loop and Rebase, an event is never dated after the moment the
// recorded pace serves it (New + its pacing offset), in any pass, and never lags it
// by much more than the rebase tolerance either. Before, each pass moved event
// times by the span of the recording's times rounded up to a second (52 s) while
// the pacing moved by the period (50.7 s), so the feed ran 1.3 s further ahead of
// the clock per pass, on top of up to 10 s ahead inside a pass.
func TestLoopRebaseNeverAheadOfTheClock(t *testing.T) {
	cfg := testConfig()
	cfg.Rebase, cfg.Loop = true, true
	s, err := New(cfg, RecordingSource(), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	n := int64(s.n)
	for _, pass := range []int64{0, 1, 2, 6, 20, 100, 1000} {
		for i := range n {
			pos := pass*n + i
			data, ms := s.eventAt(pos)
			e, err := event.Parse(data)
			if err != nil {
				t.Fatalf("position %d: %v", pos, err)
			}
			if e.Time.UnixMilli() != ms {
				t.Fatalf("position %d: meta.dt %v, indexed as %d", pos, e.Time, ms)
			}
			served := after.Add(s.offset(pos))
			if ahead := e.Time.Sub(served); ahead > 0 {
				t.Fatalf("pass %d, event %d is dated %v after it is served", pass, i, ahead)
			}
			if lag := served.Sub(e.Time); lag > rebaseDrift+2*time.Second {
				t.Fatalf("pass %d, event %d is dated %v before it is served", pass, i, lag)
			}
		}
	}
}

// TestLoopRebaseServedAfterItsTime reads a short looping feed at its real pace over
// HTTP for a second (about 30 passes of three events paced 10 ms apart but dated a
// second apart): every event arrives at or after its meta.dt, and every pass still
// carries new meta.ids.
func TestLoopRebaseServedAfterItsTime(t *testing.T) {
	cfg := testConfig()
	cfg.Rebase, cfg.Loop, cfg.Speed = true, true, 1
	_, url := serve(t, cfg, small(3, 10*time.Millisecond))
	r := stream(t, url, nil)
	ids := map[string]bool{}
	end := time.Now().Add(time.Second)
	for time.Now().Before(end) {
		ev := next(t, r, 1)[0]
		got := time.Now()
		e, err := event.Parse(ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		if e.Time.After(got) {
			t.Fatalf("position %d dated %v, received %v earlier", idOffset(t, ev.ID), e.Time, e.Time.Sub(got))
		}
		if ids[e.ID] {
			t.Fatalf("position %d: meta.id %s repeats", idOffset(t, ev.ID), e.ID)
		}
		ids[e.ID] = true
	}
	if len(ids) < 30 {
		t.Errorf("%d events in a second, want about 100", len(ids))
	}
}
