package brokers

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRedisLogsAreRoutedAndThrottled(t *testing.T) {
	var buf bytes.Buffer
	l := newRedisLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	ctx := context.Background()
	for i := range 5 {
		l.Printf(ctx, "redis: failed to dial %s: attempt %d\n", "127.0.0.1:6379", i)
	}
	l.Printf(ctx, "redis: pool is closing")
	now = now.Add(redisLogEvery)
	l.Printf(ctx, "redis: failed to dial %s: attempt %d\n", "127.0.0.1:6379", 5)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 (first dial failure, the other kind, the next dial failure after the interval):\n%s", len(lines), buf.String())
	}
	for _, want := range []string{
		`level=WARN msg="redis: failed to dial 127.0.0.1:6379: attempt 0" component=redis-client`,
		`msg="redis: pool is closing" component=redis-client`,
		`msg="redis: failed to dial 127.0.0.1:6379: attempt 5" component=redis-client similar_lines_held_back=4`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("no line with %q in:\n%s", want, buf.String())
		}
	}
}
