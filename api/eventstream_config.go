package api

import (
	"errors"
	"fmt"
	"time"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// EventsConfig configures GET /v2/stream/recentchange, the live events read from
// the JetStream log.
type EventsConfig struct {
	// NATS is how to reach the NATS server holding the stream (default
	// nats://127.0.0.1:4222). The API connects at the first request for events;
	// the other routes never need NATS.
	NATS brokers.NATS
	// Stream is the JetStream stream served (default wire.DefaultStream, WIKIMEDIA).
	Stream string
	// MaxClients bounds the clients connected at once (default 1000); more are
	// answered 503 with Retry-After.
	MaxClients int
	// Buffer is each client's send buffer in bytes (default 64 KiB, about 50 real
	// events); at most two are held per client.
	Buffer int
	// Stall is how long a client's send buffer may stay full before the client
	// is dropped with a last "error" event (default 10s).
	Stall time.Duration
	// Heartbeat is how long a stream stays silent before a comment line is sent
	// (default 15s), so that clients and proxies see the connection alive and the
	// server notices clients that are gone.
	Heartbeat time.Duration
}

// Bounds of EventsConfig.
const (
	minEventBuffer = 4 << 10
	maxEventBuffer = 64 << 20
	maxEventWait   = 10 * time.Minute
)

// DefaultEventsConfig returns the documented defaults.
func DefaultEventsConfig() EventsConfig {
	return EventsConfig{
		NATS:       brokers.NATS{URL: brokers.DefaultNATS},
		Stream:     wire.DefaultStream,
		MaxClients: 1000,
		Buffer:     64 << 10,
		Stall:      10 * time.Second,
		Heartbeat:  15 * time.Second,
	}
}

// eventsFlags registers the flags of EventsConfig.
func eventsFlags(f *cli.Flags, c *EventsConfig) {
	d := DefaultEventsConfig()
	const p = "WIKIFLOW_API_EVENTS_"
	brokers.NATSFlags(f, &c.NATS)
	f.String(&c.Stream, "stream", "WIKIFLOW_STREAM", d.Stream, "JetStream stream served on /v2/stream/recentchange")
	f.Int(&c.MaxClients, "events-max-clients", p+"MAX_CLIENTS", d.MaxClients, "most /v2/stream/recentchange clients at once (more get 503)")
	f.Int(&c.Buffer, "events-buffer", p+"BUFFER", d.Buffer, "send buffer of each /v2/stream/recentchange client, in bytes")
	f.Duration(&c.Stall, "events-stall", p+"STALL", d.Stall, "a client whose send buffer stays full this long is dropped")
	f.Duration(&c.Heartbeat, "events-heartbeat", p+"HEARTBEAT", d.Heartbeat, "comment line sent after this long without events")
}

// problems reports every problem of c.
func (c EventsConfig) problems() []error {
	var errs []error
	if c.NATS.URL == "" {
		errs = append(errs, errors.New("nats-url must not be empty"))
	}
	if err := wire.ValidStreamName(c.Stream); err != nil {
		errs = append(errs, fmt.Errorf("stream: %w", err))
	}
	if c.MaxClients < 1 {
		errs = append(errs, fmt.Errorf("events-max-clients %d: must be at least 1", c.MaxClients))
	}
	if c.Buffer < minEventBuffer || c.Buffer > maxEventBuffer {
		errs = append(errs, fmt.Errorf("events-buffer %d: must be from %d to %d bytes", c.Buffer, minEventBuffer, maxEventBuffer))
	}
	if c.Stall <= 0 || c.Stall > maxEventWait {
		errs = append(errs, fmt.Errorf("events-stall %v: must be positive and at most %v", c.Stall, maxEventWait))
	}
	if c.Heartbeat <= 0 || c.Heartbeat > maxEventWait {
		errs = append(errs, fmt.Errorf("events-heartbeat %v: must be positive and at most %v", c.Heartbeat, maxEventWait))
	}
	return errs
}
