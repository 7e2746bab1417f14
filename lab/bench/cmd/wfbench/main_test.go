package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFmtN(t *testing.T) {
	for in, want := range map[int]string{1000000: "1M", 200000: "200k", 1500: "1500", 50000: "50k", 7: "7"} {
		if got := fmtN(in); got != want {
			t.Errorf("fmtN(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestProgressRate(t *testing.T) {
	t0 := time.Unix(100, 0)
	p := progress{first: t0, firstV: 1000, end: t0.Add(2 * time.Second), endV: 201000}
	if got := p.rate(); got != 100000 {
		t.Errorf("rate = %v, want 100000", got)
	}
	if got := (progress{first: t0, end: t0}).rate(); got != 0 {
		t.Errorf("rate of an empty interval = %v", got)
	}
	if got := appendOK(nil, progress{}); len(got) != 0 {
		t.Errorf("appendOK kept an incomplete measurement")
	}
}

func TestWatch(t *testing.T) {
	var v int64
	pr, err := watch(context.Background(), time.Millisecond, time.Second, 5, func() (int64, error) {
		v++
		return v, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pr.firstV != 1 || pr.endV != 5 || pr.end.Before(pr.first) {
		t.Errorf("watch = %+v, want first value 1 and end value 5", pr)
	}
	_, err = watch(context.Background(), time.Millisecond, 20*time.Millisecond, 5, func() (int64, error) { return 2, nil })
	if !errors.Is(err, errStalled) {
		t.Errorf("a counter stuck at 2: err = %v, want errStalled", err)
	}
}
