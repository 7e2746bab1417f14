package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDoublingHasNoJitter(t *testing.T) {
	b := NewDoubling(100*time.Millisecond, time.Second)
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		w *= time.Millisecond
		if d := b.Next(); d != w {
			t.Fatalf("delay %d: %s, want %s", i, d, w)
		}
	}
	b.Reset()
	if d := b.Next(); d != 100*time.Millisecond {
		t.Fatalf("after reset: %s, want 100ms", d)
	}
}

func TestDoRetriesUntilSuccessAndReportsEachFailure(t *testing.T) {
	b := NewDoubling(time.Millisecond, 4*time.Millisecond)
	boom := errors.New("boom")
	calls := 0
	var waits []time.Duration
	err := Do(context.Background(), b, func() error {
		calls++
		if calls < 4 {
			return boom
		}
		return nil
	}, func(err error, wait time.Duration) {
		if !errors.Is(err, boom) {
			t.Errorf("onErr got %v, want boom", err)
		}
		waits = append(waits, wait)
	})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if calls != 4 {
		t.Fatalf("op called %d times, want 4", calls)
	}
	want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond}
	if len(waits) != len(want) {
		t.Fatalf("onErr called %d times (%v), want %v", len(waits), waits, want)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	if d := b.Next(); d != time.Millisecond {
		t.Fatalf("backoff not reset after success: next %s", d)
	}
}

func TestDoStopsOnFinalError(t *testing.T) {
	final := errors.New("final")
	calls, reported := 0, 0
	err := Do(context.Background(), NewDoubling(time.Millisecond, time.Millisecond), func() error {
		calls++
		if calls == 2 {
			return Stop(final)
		}
		return errors.New("transient")
	}, func(error, time.Duration) { reported++ })
	if err != final {
		t.Fatalf("Do returned %v, want the error given to Stop itself", err)
	}
	if calls != 2 || reported != 1 {
		t.Fatalf("calls %d, reported %d; want 2 and 1", calls, reported)
	}
	if Stop(nil) != nil {
		t.Fatal("Stop(nil) is not nil")
	}
}

func TestDoEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Do(ctx, NewDoubling(time.Hour, time.Hour), func() error {
		calls++
		return errors.New("down")
	}, func(error, time.Duration) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Do returned %v, want context.Canceled", err)
	}
	if calls != 1 {
		t.Fatalf("op called %d times after cancellation, want 1", calls)
	}
}
