package brokers

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisLogEvery is how often one kind of go-redis log line is let through.
const redisLogEvery = 10 * time.Second

// RouteRedisLogs sends go-redis's own log lines (such as its "failed to dial"
// lines while Redis is down) to log as warnings with component=redis-client
// instead of the standard logger, at most one line of each kind every 10 s,
// counting the similar lines held back in between.
func RouteRedisLogs(log *slog.Logger) {
	redis.SetLogger(newRedisLogger(log))
}

// redisLogger is the go-redis logger of RouteRedisLogs.
type redisLogger struct {
	log  *slog.Logger
	now  func() time.Time
	mu   sync.Mutex
	last map[string]time.Time // format -> when a line of it was last let through
	held map[string]int       // format -> lines held back since
}

func newRedisLogger(log *slog.Logger) *redisLogger {
	return &redisLogger{log: log, now: time.Now, last: map[string]time.Time{}, held: map[string]int{}}
}

// Printf logs one go-redis line; lines of the same format are its kind.
func (l *redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.mu.Lock()
	now := l.now()
	if t, ok := l.last[format]; ok && now.Sub(t) < redisLogEvery {
		l.held[format]++
		l.mu.Unlock()
		return
	}
	n := l.held[format]
	l.last[format] = now
	delete(l.held, format)
	l.mu.Unlock()
	args := []any{"component", "redis-client"}
	if n > 0 {
		args = append(args, "similar_lines_held_back", n)
	}
	l.log.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)), args...)
}
