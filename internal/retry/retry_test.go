package retry

import (
	"context"
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	b := NewBackoff(time.Second, 60*time.Second)
	wantCeilings := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i, wc := range wantCeilings {
		wc *= time.Second
		if c := b.Ceiling(); c != wc {
			t.Fatalf("failure %d: ceiling %s, want %s", i, c, wc)
		}
		for range 200 {
			probe := *b
			d := probe.Next()
			if d < time.Second || d > wc {
				t.Fatalf("failure %d: delay %s outside [1s, %s]", i, d, wc)
			}
		}
		b.Next()
	}
	// Jitter: at the cap, draws are spread, not all equal.
	seen := map[time.Duration]bool{}
	for range 50 {
		probe := *b
		seen[probe.Next()] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct delays at the cap: no jitter", len(seen))
	}
	b.Reset()
	if d := b.Next(); d != time.Second {
		t.Fatalf("after reset: %s, want 1s", d)
	}
	if d := NewBackoff(time.Second, time.Millisecond).Next(); d != time.Second {
		t.Fatalf("max below min: %s, want 1s", d)
	}
}

func TestSleepStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep waited through a cancelled context")
	}
	if !Sleep(context.Background(), time.Millisecond) || !Sleep(context.Background(), 0) {
		t.Fatal("Sleep did not report a full wait")
	}
}
