package api

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/sse"
)

func TestAppendMessage(t *testing.T) {
	cases := []struct {
		name, data, want string
		rewritten        bool
	}{
		{"one line", `{"a":1}`, "event: message\nid: " + evID(7) + "\ndata: {\"a\":1}\n\n", false},
		{"JSON over lines", "{\r\n \"a\": [1,\n 2]\n}\n", "event: message\nid: " + evID(7) + "\ndata: {\"a\":[1,2]}\n\n", true},
		{"not JSON", "x\r\ny\rz\nw", "event: message\nid: " + evID(7) + "\ndata: x\ndata: y\ndata: z\ndata: w\n\n", true},
	}
	for _, tc := range cases {
		got, rw := appendMessage(nil, "WIKIMEDIA", 7, []byte(tc.data))
		if string(got) != tc.want || rw != tc.rewritten {
			t.Errorf("%s: %q (rewritten %v), want %q (%v)", tc.name, got, rw, tc.want, tc.rewritten)
		}
		ev, err := sse.NewReader(strings.NewReader(string(got)), 0).Next()
		if err != nil || ev.Type != "message" || ev.ID != evID(7) {
			t.Errorf("%s: read back %+v, %v", tc.name, ev, err)
		}
	}
}

func TestSendQueue(t *testing.T) {
	q := newSendQueue(10)
	done := make(chan struct{})
	if err := q.push([]byte("0123456789abc"), time.Second, done); err != nil {
		t.Fatalf("a frame larger than the buffer into an empty one: %v", err)
	}
	start := time.Now()
	if err := q.push([]byte("x"), 50*time.Millisecond, done); !errors.Is(err, errSlowClient) {
		t.Fatalf("push into a full buffer: %v, want errSlowClient", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("gave up after %s, before the stall time", d)
	}
	// A push waiting for room goes on once the writer takes the frames.
	pushed := make(chan error, 1)
	go func() { pushed <- q.push([]byte("y"), 5*time.Second, done) }()
	time.Sleep(20 * time.Millisecond)
	frames, n, failed := q.take(nil)
	if string(frames) != "0123456789abc" || n != 1 || failed != nil {
		t.Fatalf("take: %q %d %v", frames, n, failed)
	}
	if err := <-pushed; err != nil {
		t.Fatalf("push after take: %v", err)
	}
	q.fail(&apiError{Code: codeSlowClient})
	frames, n, failed = q.take(frames)
	if len(frames) != 0 || n != 0 || failed == nil || failed.Code != codeSlowClient {
		t.Fatalf("after fail: %q %d %v (the frames not taken are dropped)", frames, n, failed)
	}
	if err := q.push([]byte("z"), time.Second, done); !errors.Is(err, errQueueClosed) {
		t.Fatalf("push after fail: %v", err)
	}
	close(done)
	q2 := newSendQueue(1)
	_ = q2.push([]byte("ab"), time.Second, nil)
	if err := q2.push([]byte("c"), time.Minute, done); !errors.Is(err, errQueueClosed) {
		t.Fatalf("push with done closed: %v", err)
	}
}

func TestParseEventID(t *testing.T) {
	good := map[string]uint64{
		`[{"topic":"WIKIMEDIA","partition":0,"offset":42}]`:    42,
		`[{"topic":"WIKIMEDIA","partition":0,"offset":0}]`:     0,
		`[ {"offset":7, "partition":0, "topic":"WIKIMEDIA"} ]`: 7,
	}
	for id, want := range good {
		if got, err := parseEventID(id, "WIKIMEDIA"); err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", id, got, err, want)
		}
	}
	for _, id := range []string{`42`, `[]`, `[{"topic":"WIKIMEDIA","partition":1,"offset":4}]`, `[{"topic":"WIKIMEDIA","partition":0,"timestamp":4}]`, `{"topic":"WIKIMEDIA"}`,
		`[{"topic":"WIKIMEDIA","offset":9}]`, `[{"topic":"other","partition":0,"offset":1},{"topic":"WIKIMEDIA","partition":0,"offset":0}]`} {
		if _, err := parseEventID(id, "WIKIMEDIA"); err == nil {
			t.Errorf("%s: accepted", id)
		}
	}
}

func TestParseSince(t *testing.T) {
	want := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	for _, s := range []string{"1767366245000", "2026-01-02T15:04:05Z", "2026-01-02T16:04:05+01:00", "2026-01-02T15:04:05"} {
		if got, err := parseSince(s); err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	if got, err := parseSince("2026-01-02"); err != nil || !got.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("date: %v %v", got, err)
	}
	for _, s := range []string{"", "-1", "999999999999999999", "2026-13-01", "2026-02-30", "now", "2026-01-02T15:04Z"} {
		if _, err := parseSince(s); err == nil {
			t.Errorf("%q: accepted", s)
		}
	}
}

func TestEventsConfig(t *testing.T) {
	if errs := DefaultEventsConfig().problems(); len(errs) != 0 {
		t.Fatalf("defaults: %v", errs)
	}
	bad := EventsConfig{MaxClients: 0, Buffer: 10, Stall: 0, Heartbeat: time.Hour}
	errs := bad.problems()
	text := errors.Join(errs...).Error()
	for _, want := range []string{"nats-url", "stream", "events-max-clients", "events-buffer", "events-stall", "events-heartbeat"} {
		if !strings.Contains(text, want) {
			t.Errorf("no problem reported for %s: %s", want, text)
		}
	}
}
