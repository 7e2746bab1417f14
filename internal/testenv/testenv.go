// Package testenv gives integration tests the real brokers: NATS embedded in the
// test process (a fresh JetStream server per test), and Kafka and Redis started by
// the project's tasks (go tool task infra) at addresses taken from the environment.
// Without Kafka or Redis a test skips with a message saying how to start them; under
// CI=true it fails instead, so integration tests never silently skip in CI.
package testenv

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

// Environment variables read by this package.
const (
	// EnvKafka holds the Kafka bootstrap address (default 127.0.0.1:9092).
	EnvKafka = "WIKIFLOW_TEST_KAFKA"
	// EnvRedis holds the Redis URL (default redis://127.0.0.1:6379/0).
	EnvRedis = "WIKIFLOW_TEST_REDIS"
)

const startHint = "start the test brokers with `go tool task infra` (or run `go tool task test`, which does it)"

// InCI reports whether the tests run under CI (CI=true), where missing brokers fail.
func InCI() bool { return os.Getenv("CI") == "true" || os.Getenv("CI") == "1" }

func unavailable(t testing.TB, what string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s is not reachable (%v): %s", what, err, startHint)
	if InCI() {
		t.Fatalf("CI=true: %s", msg)
	}
	t.Skip(msg)
}

// KafkaAddr returns the address of the real Kafka broker, or skips (fails in CI).
func KafkaAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(EnvKafka)
	if addr == "" {
		addr = "127.0.0.1:9092"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := (&kafka.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, "tcp", addr)
	if err == nil {
		_, err = conn.ApiVersions()
		conn.Close()
	}
	if err != nil {
		unavailable(t, "Kafka at "+addr, err)
	}
	return addr
}

// Topic creates a fresh Kafka topic with the given partitions and returns its name;
// it is deleted when the test ends.
func Topic(t testing.TB, addr string, partitions int) string {
	t.Helper()
	return TopicWith(t, &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}, partitions)
}

// TopicWith is Topic through a given client (for instance one with SASL or TLS).
func TopicWith(t testing.TB, cl *kafka.Client, partitions int) string {
	t.Helper()
	name := fmt.Sprintf("test-%s-%d", sanitize(t.Name()), time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: name, NumPartitions: partitions, ReplicationFactor: 1,
	}}})
	if err == nil {
		err = resp.Errors[name]
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{name}})
	})
	return name
}

func sanitize(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	if len(b) > 60 {
		b = b[:60]
	}
	return string(b)
}

// RedisURL returns the URL of the real Redis server, or skips (fails in CI).
func RedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvRedis)
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("%s: %v", EnvRedis, err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		unavailable(t, "Redis at "+u, err)
	}
	return u
}

// Redis returns a client of the real Redis server, closed when the test ends.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	opt, _ := redis.ParseURL(RedisURL(t))
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// Prefix returns a unique name for the test's Redis keys (used as the projection's
// base hash name), and deletes every key under it when the test ends.
func Prefix(t testing.TB, c *redis.Client) string {
	t.Helper()
	p := fmt.Sprintf("test_%s_%d", sanitize(t.Name()), time.Now().UnixNano())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, pat := range []string{p, "{" + p + "}*", "{" + p + ":s*", p + "*"} {
			iter := c.Scan(ctx, 0, pat, 1000).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
		}
	})
	return p
}

// NATS starts an in-process nats-server with JetStream on a random port and a
// t.TempDir() store, and returns its URL. The server stops when the test ends.
func NATS(t testing.TB) (url string, srv *natsserver.Server) {
	t.Helper()
	return NATSAt(t, -1, t.TempDir())
}

// NATSAt is NATS on a given port (-1 for random) and store directory, so a test can
// stop a server and start another on the same port and data.
func NATSAt(t testing.TB, port int, dir string) (string, *natsserver.Server) {
	t.Helper()
	opts := &natsserver.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	}
	srv := NATSWith(t, opts)
	return srv.ClientURL(), srv
}

// NATSWith starts an in-process nats-server with the given options (users,
// accounts, limits) and waits until it accepts connections; it stops when the
// test ends.
func NATSWith(t testing.TB, opts *natsserver.Options) *natsserver.Server {
	t.Helper()
	return NATSLogged(t, opts, nil)
}

// NATSLogged is NATSWith with the server's log, debug and trace lines included,
// going to log from before the server starts (nil: the options decide).
func NATSLogged(t testing.TB, opts *natsserver.Options, log natsserver.Logger) *natsserver.Server {
	t.Helper()
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	if log != nil {
		srv.SetLoggerV2(log, true, true, false)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start in 10s")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// Connect connects to the NATS server at url, closed when the test ends.
func Connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// ConsumerNames lists the consumers of the stream, sorted.
func ConsumerNames(t testing.TB, js jetstream.JetStream, stream string) []string {
	t.Helper()
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	l := st.ConsumerNames(context.Background())
	var out []string
	for n := range l.Name() {
		out = append(out, n)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// Run runs fn in a goroutine with a context that the returned stop cancels. stop
// then waits up to wait for fn to return and returns its error, or an error of
// its own when fn does not return in time; it may be called more than once (it
// returns the first result) and is called when the test ends.
func Run(t testing.TB, wait time.Duration, fn func(context.Context) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(wait):
				err = fmt.Errorf("did not return within %s of its cancellation", wait)
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// Who classifies an editor as the who counters do, computed apart from
// internal/event so that tests check it: "bot", else "anonymous" (no user or an IP
// address), "temporary" (a name starting with "~") or "registered".
func Who(bot bool, user string) string {
	_, ipErr := netip.ParseAddr(user)
	switch {
	case bot:
		return "bot"
	case user == "" || ipErr == nil:
		return "anonymous"
	case strings.HasPrefix(user, "~"):
		return "temporary"
	}
	return "registered"
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitConsumed waits up to a minute until stream holds last messages and each
// of the named durable consumers has none pending and none unacknowledged, and
// fails the test otherwise.
func WaitConsumed(t testing.TB, js jetstream.JetStream, stream string, last uint64, consumers ...string) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		st, err := js.Stream(ctx, stream)
		if err != nil || st.CachedInfo().State.LastSeq < last {
			continue
		}
		done := 0
		for _, name := range consumers {
			c, err := st.Consumer(ctx, name)
			if err == nil && c.CachedInfo().NumPending == 0 && c.CachedInfo().NumAckPending == 0 {
				done++
			}
		}
		if done == len(consumers) {
			return
		}
	}
	t.Fatalf("%s: the consumers %v did not consume its %d messages in a minute", stream, consumers, last)
}
