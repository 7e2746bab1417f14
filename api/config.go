package api

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// Config configures the API server.
type Config struct {
	// Addr is the TCP address to listen on (default "127.0.0.1:8080": loopback only;
	// use ":8080" or "0.0.0.0:8080" to serve other hosts).
	Addr string
	// Redis is how to reach the Redis server holding the projection (default
	// redis://127.0.0.1:6379/0).
	Redis brokers.Redis
	// Base is the projection's base name, the legacy hash's name (default
	// "wikimedia_stats").
	Base string
	// CORSOrigins lists the origins allowed to read the API from a browser, such as
	// "https://dashboard.example.org", or "*" for any (default empty: CORS off, no
	// CORS headers are sent).
	CORSOrigins []string
	// RequestTimeout bounds the work done for one request (default 5s). It does not
	// apply to /stats/stream, which lasts as long as its client stays.
	RequestTimeout time.Duration
	// MaxStaleness is how long the projection may go without an update before
	// /readyz reports not ready (default 5m; 0 = do not check).
	MaxStaleness time.Duration
	// RedisTimeout is the deadline of the Redis work of one request (default 1s),
	// so that an unreachable Redis yields a quick 503.
	RedisTimeout time.Duration
	// CacheTTL is how long the encoded body of the parameterless /stats is reused
	// (default 250ms; 0 = no cache). The projection's freshness is itself updated at
	// most about once per second.
	CacheTTL time.Duration
	// StageMetrics lists the metrics pages of the other stages, whose
	// wikiflow_ families GET /metrics repeats with a wikiflow_stage_up gauge each
	// (default: ingest, bridge and aggregate of the native stack,
	// http://127.0.0.1:8081/metrics to :8083; empty = none). Credentials in a URL
	// are sent to the stage and shown as xxxxx in the gauge's label.
	StageMetrics []string
	// StreamMaxClients bounds the /stats/stream clients connected at once
	// (default 1000); more are answered 503 too_many_clients with Retry-After.
	StreamMaxClients int
	// Events configures GET /v2/stream/recentchange, the live events from the
	// JetStream log (see EventsConfig).
	Events EventsConfig
}

// defaultStageMetrics are the metrics pages of the native stack's stages.
const defaultStageMetrics = "http://127.0.0.1:8081/metrics,http://127.0.0.1:8082/metrics,http://127.0.0.1:8083/metrics"

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Addr:             "127.0.0.1:8080",
		Redis:            brokers.Redis{URL: brokers.DefaultRedis},
		Base:             wire.DefaultHash,
		RequestTimeout:   5 * time.Second,
		MaxStaleness:     5 * time.Minute,
		RedisTimeout:     time.Second,
		CacheTTL:         250 * time.Millisecond,
		StageMetrics:     strings.Split(defaultStageMetrics, ","),
		StreamMaxClients: 1000,
		Events:           DefaultEventsConfig(),
	}
}

// Flags registers the API's flags, with WIKIFLOW_API_* (and WIKIFLOW_REDIS_*)
// environment fallbacks, binding them to c. Defaults come from DefaultConfig.
func Flags(f *cli.Flags, c *Config) {
	d := DefaultConfig()
	const p = "WIKIFLOW_API_"
	f.String(&c.Addr, "addr", p+"ADDR", d.Addr, "address to listen on (loopback by default)")
	brokers.RedisFlags(f, &c.Redis)
	f.String(&c.Base, "hash", "WIKIFLOW_HASH", d.Base, "base name of the Redis projection (the legacy hash's name)")
	f.List(&c.CORSOrigins, "cors-origins", p+"CORS_ORIGINS", "", `origins allowed by CORS, e.g. "https://a.example,https://b.example" or "*" (empty = CORS off)`)
	f.Duration(&c.RequestTimeout, "request-timeout", p+"REQUEST_TIMEOUT", d.RequestTimeout, "time limit of one request")
	f.Duration(&c.MaxStaleness, "max-staleness", p+"MAX_STALENESS", d.MaxStaleness, "readiness fails when the projection was not updated for this long (0 = do not check)")
	f.Duration(&c.RedisTimeout, "redis-timeout", p+"REDIS_TIMEOUT", d.RedisTimeout, "deadline of the Redis work of one request")
	f.Duration(&c.CacheTTL, "cache-ttl", p+"CACHE_TTL", d.CacheTTL, "how long the parameterless /stats body is reused (0 = no cache)")
	f.Int(&c.StreamMaxClients, "stream-max-clients", p+"STREAM_MAX_CLIENTS", d.StreamMaxClients, "most /stats/stream clients at once (more get 503)")
	f.List(&c.StageMetrics, "stage-metrics", "WIKIFLOW_STAGE_METRICS", defaultStageMetrics, "metrics pages of the other stages, whose wikiflow_ metrics GET /metrics repeats (empty = none)")
	eventsFlags(f, &c.Events)
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if host, port, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr %q: want host:port: %v", c.Addr, err))
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		errs = append(errs, fmt.Errorf("addr %q: port must be a number 0..65535", c.Addr))
	} else if strings.ContainsAny(host, " /") {
		errs = append(errs, fmt.Errorf("addr %q: bad host", c.Addr))
	}
	if _, err := c.Redis.Options(); err != nil {
		errs = append(errs, err)
	}
	if c.Base == "" {
		errs = append(errs, errors.New("hash: the projection's base name must not be empty"))
	} else if strings.ContainsAny(c.Base, "{}") {
		errs = append(errs, fmt.Errorf("hash %q: must not contain '{' or '}' (the base becomes a hash tag)", c.Base))
	}
	for _, o := range c.CORSOrigins {
		if err := checkOrigin(o); err != nil {
			errs = append(errs, err)
		}
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("request-timeout %v: must be positive", c.RequestTimeout))
	}
	if c.MaxStaleness < 0 {
		errs = append(errs, fmt.Errorf("max-staleness %v: must be 0 (off) or positive", c.MaxStaleness))
	}
	if c.RedisTimeout <= 0 {
		errs = append(errs, fmt.Errorf("redis-timeout %v: must be positive", c.RedisTimeout))
	} else if c.RequestTimeout > 0 && c.RedisTimeout > c.RequestTimeout {
		errs = append(errs, fmt.Errorf("redis-timeout %v: must not exceed request-timeout %v", c.RedisTimeout, c.RequestTimeout))
	}
	for _, u := range c.StageMetrics {
		if err := checkStageURL(u); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, c.Events.problems()...)
	if c.StreamMaxClients < 1 {
		errs = append(errs, fmt.Errorf("stream-max-clients %d: must be at least 1", c.StreamMaxClients))
	}
	if c.CacheTTL < 0 || c.CacheTTL > time.Second {
		errs = append(errs, fmt.Errorf("cache-ttl %v: must be between 0 and 1s", c.CacheTTL))
	}
	return errors.Join(errs...)
}

// checkOrigin accepts "*" or an origin scheme://host[:port], where the host may
// start with "*." to allow its subdomains.
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	v := strings.Replace(o, "://*.", "://", 1)
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		strings.Contains(u.Host, "*") || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("cors-origins: %q is not an origin such as https://example.org or *", o)
	}
	return nil
}
