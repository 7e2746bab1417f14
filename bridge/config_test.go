package bridge

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/wire"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"topic", c.Kafka.Topic, wire.DefaultTopic},
		{"stream", c.Stream, wire.DefaultStream},
		{"max age", c.MaxAge, 168 * time.Hour},
		{"max bytes", c.MaxBytes, int64(10 << 30)},
		{"duplicate window", c.DuplicateWindow, 2 * time.Minute},
		{"replicas", c.Replicas, 1},
		{"max in flight", c.MaxInFlight, 1024},
		{"fetch max wait", c.FetchMaxWait, 250 * time.Millisecond},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // substrings of the error; nil means valid
	}{
		{"unlimited bytes", func(c *Config) { c.MaxBytes = -1 }, nil},
		{"forever", func(c *Config) { c.MaxAge = 0 }, nil},
		{"zero bytes", func(c *Config) { c.MaxBytes = 0 }, []string{"stream-max-bytes"}},
		{"bad stream name", func(c *Config) { c.Stream = "a.b" }, []string{"stream:"}},
		{"window above age", func(c *Config) { c.MaxAge = time.Minute; c.DuplicateWindow = time.Hour }, []string{"must not exceed"}},
		{"everything wrong at once", func(c *Config) {
			c.Kafka.Brokers = nil
			c.NATS.URL = ""
			c.Stream = ""
			c.DuplicateWindow = 0
			c.Replicas = 0
			c.MaxInFlight = 0
			c.FetchMaxWait = 0
			c.AckTimeout = -1
		}, []string{"kafka-brokers", "nats-url", "stream:", "stream-duplicate-window", "stream-replicas",
			"bridge-max-in-flight", "bridge-fetch-max-wait", "bridge-ack-timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, err := New(c, nil); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

func TestFlags(t *testing.T) {
	env := map[string]string{
		"WIKIFLOW_BRIDGE_MAX_IN_FLIGHT":    "32",
		"WIKIFLOW_STREAM_MAX_BYTES":        "-1",
		"WIKIFLOW_STREAM_DUPLICATE_WINDOW": "30s",
		"WIKIFLOW_KAFKA_TOPIC":             "other",
	}
	f := cli.New("bridge", "test", "", func(k string) string { return env[k] }, io.Discard)
	var c Config
	Flags(f, &c)
	if err := f.Parse([]string{"--stream-max-age=1h", "--bridge-max-in-flight=64"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	if c.MaxAge != time.Hour || c.MaxInFlight != 64 || c.MaxBytes != -1 || c.DuplicateWindow != 30*time.Second ||
		c.Kafka.Topic != "other" || c.Stream != wire.DefaultStream || c.FetchMaxWait != 250*time.Millisecond {
		t.Fatalf("flags gave %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
