package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
)

// checkTimeout bounds one health check.
const checkTimeout = 3 * time.Second

var httpClient = &http.Client{Timeout: checkTimeout}

// Check returns nil when the component answers its health check: Kafka its
// metadata with a controller, nats-server and the stages GET /healthz with 200
// (the emulator any answer below 500), Redis PING.
func (c Config) Check(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	kind, i := node(name)
	switch kind {
	case "kafka":
		return CheckKafka(ctx, fmt.Sprintf("127.0.0.1:%d", c.KafkaNode(i).Port))
	case "nats":
		return checkHTTP(ctx, c.NATSNode(i).MonitorPort, 200, 200)
	case "redis":
		return CheckRedis(ctx, fmt.Sprintf("127.0.0.1:%d", c.RedisNode(i).Port))
	case "emulator":
		return checkHTTP(ctx, c.Ports.Emulator, 100, 499)
	}
	ports := c.PortsOf(name)
	if len(ports) == 0 {
		return fmt.Errorf("unknown component %q", name)
	}
	return checkHTTP(ctx, ports[0], 200, 200)
}

// CheckKafka returns nil when the broker at addr answers a metadata request
// naming a controller.
func CheckKafka(ctx context.Context, addr string) error {
	conn, err := (&kafka.Dialer{Timeout: checkTimeout}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(checkTimeout)); err != nil {
		return err
	}
	if _, err := conn.Brokers(); err != nil {
		return err
	}
	_, err = conn.Controller()
	return err
}

// CheckRedis returns nil when the server at addr answers PING.
func CheckRedis(ctx context.Context, addr string) error {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: checkTimeout})
	defer cl.Close()
	return cl.Ping(ctx).Err()
}

func get(ctx context.Context, port int, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
	if err != nil {
		return nil, err
	}
	return httpClient.Do(req)
}

// checkHTTP returns nil when GET /healthz answers with a status in [lo, hi].
func checkHTTP(ctx context.Context, port, lo, hi int) error {
	resp, err := get(ctx, port, "/healthz")
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode < lo || resp.StatusCode > hi {
		return fmt.Errorf("GET /healthz: %s", resp.Status)
	}
	return nil
}

// DegradedReason returns the reason a stage's /healthz gives with status
// "degraded" (ingest: "feed unreachable: …", "no progress at position …"), and
// "" while it answers "ok".
func DegradedReason(ctx context.Context, port int) string {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	resp, err := get(ctx, port, "/healthz")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var h struct{ Status, Reason string }
	if json.NewDecoder(resp.Body).Decode(&h) != nil || h.Status != "degraded" {
		return ""
	}
	return h.Reason
}

// published matches ingest's counter of published events once it is above zero.
var published = regexp.MustCompile(`(?m)^wikiflow_ingest_(events_)?published(_total)? [1-9]`)

// FeedState waits up to FeedWait for ingest's first published event. It returns
// ingest's degraded reason if it reports one first, "silent" if neither came,
// and "" once events flow.
func (c Config) FeedState(ctx context.Context) string {
	deadline := time.Now().Add(c.FeedWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if r := DegradedReason(ctx, c.Ports.IngestHealth); r != "" {
			return r
		}
		if resp, err := get(ctx, c.Ports.IngestHealth, "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if published.Match(b) {
				return ""
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return "silent"
}

// Tail returns the last n lines of a file (or why there are none).
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
