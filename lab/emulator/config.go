package emulator

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/wikiflow/wikiflow/internal/cli"
)

// Config configures the emulator. The zero value of every fault field turns that
// fault off; DefaultConfig returns the defaults documented on each field.
type Config struct {
	// Addr is the TCP address to listen on. Default "127.0.0.1:8090".
	Addr string
	// Path is the URL path of the stream. Default "/v2/stream/recentchange".
	Path string
	// Speed scales the recorded pacing: 1 serves at the recorded pace, 10 ten times
	// faster, 0 as fast as the client reads. Default 1.
	Speed float64
	// Loop starts again after the last event instead of going silent. Every later
	// pass rewrites meta.id to a UUID derived from (pass, index) and moves meta.dt and
	// timestamp forward, so each pass carries distinct events: without Rebase by
	// pass × the span of the source's times (each pass lies after the previous
	// one), with Rebase by the pacing length of the passes before it (times keep to
	// the clock). Default false.
	Loop bool
	// Rebase shifts event times so that the events are dated when New is called
	// plus their pacing offset at the recorded pace (Speed 1): the moment they are
	// served, never after it and at most about 10 s before it. The relative
	// spacing of meta.dt (and timestamp) and the precision style of meta.dt are
	// kept inside each block; a jump of more than an hour between neighbours (the
	// bundled recording joins blocks recorded years apart) starts a new block, as
	// does a block whose times advance faster than its pacing. At Speed 1 or slower
	// an event is also never served before its meta.dt. Default false.
	Rebase bool
	// MaxConns is the number of concurrent streams served; more are answered with
	// 429 Too Many Requests, a JSON body and Retry-After, like Wikimedia, which
	// allows 2 per client address. Default 2.
	MaxConns int
	// RetryAfter is the Retry-After of a 429, sent in whole seconds rounded up.
	// Default 1s.
	RetryAfter time.Duration
	// ConnLifetime closes each stream this long after it opened, cleanly between
	// two frames, as Wikimedia does after about 15 minutes. 0 = never.
	// Default 15m.
	ConnLifetime time.Duration
	// Retention is how far back since may reach: a since older than now minus
	// Retention starts at the end (the first event dated now or later) without
	// saying so, as Wikimedia does past the 7 to 31 days its Kafka keeps.
	// 0 = everything is kept. Default 0.
	Retention time.Duration
	// TimestampIDs makes SSE ids carry "timestamp" (meta.dt in Unix ms) instead of
	// "offset", the other form Wikimedia sends. Resuming from such an id repeats the
	// events that share the millisecond. Default false.
	TimestampIDs bool
	// RequireUserAgent answers 403 to requests without a User-Agent header, like
	// Wikimedia. Default false.
	RequireUserAgent bool

	// CutEvery aborts the connection in the middle of every N-th event frame of a
	// connection: half the frame is written, then the connection is dropped. 0 = off.
	CutEvery int
	// SilentAfter stops writing after N event frames on a connection, keeps the
	// connection open for SilentFor, then closes it. 0 = off.
	SilentAfter int
	// SilentFor is how long a SilentAfter connection stays open and silent.
	// Default 0; must be positive when SilentAfter is set.
	SilentFor time.Duration
	// ErrorEvery replaces every N-th event frame of a connection with an
	// "event: error" frame carrying a JSON body, then closes the connection; the
	// replaced event is served again on resume. 0 = off.
	ErrorEvery int
	// ErrorOnResume writes an "event: error" frame (without an id) before the
	// K-th event frame of every stream opened with Last-Event-ID, and the stream
	// goes on: with RepeatOnResume >= K the error comes at the same position,
	// before any new event, on every resume. 0 = off.
	ErrorOnResume int
	// RepeatOnResume re-sends, on a request with Last-Event-ID, the K events before
	// the resume point first (duplicates a consumer must remove). 0 = off.
	RepeatOnResume int
	// MalformedEvery follows every N-th event frame of a connection with an extra
	// frame whose data is invalid JSON (the event truncated in the middle). 0 = off.
	MalformedEvery int
	// HugeEvery follows every N-th event frame of a connection with an extra frame
	// holding a copy of that event with its own meta.id and a comment padded to
	// 2 MiB: valid JSON, but far beyond event.MaxSize. 0 = off.
	HugeEvery int
	// CanaryEvery follows every N-th event frame of a connection with an extra
	// canary event (meta.domain "canary"), as Wikimedia sends about hourly. 0 = off.
	CanaryEvery int
	// CRLF ends every line with "\r\n" instead of "\n". Default false.
	CRLF bool
}

// DefaultConfig returns the default configuration: the real endpoint's path on
// 127.0.0.1:8090, recorded pace, no loop, no rebase, and Wikimedia's habits: 2
// connections (429 with Retry-After 1 beyond), each closed after 15 minutes. No
// retention limit, no faults.
func DefaultConfig() Config {
	return Config{
		Addr:         "127.0.0.1:8090",
		Path:         "/v2/stream/recentchange",
		Speed:        1,
		MaxConns:     2,
		RetryAfter:   time.Second,
		ConnLifetime: 15 * time.Minute,
	}
}

// Flags registers the emulator's flags, with WIKIFLOW_EMULATOR_* environment
// fallbacks, binding them to c. Defaults come from DefaultConfig.
func Flags(f *cli.Flags, c *Config) {
	d := DefaultConfig()
	const p = "WIKIFLOW_EMULATOR_"
	f.String(&c.Addr, "addr", p+"ADDR", d.Addr, "address to listen on")
	f.String(&c.Path, "path", p+"PATH", d.Path, "URL path of the stream")
	f.Float64(&c.Speed, "speed", p+"SPEED", d.Speed, "pace factor: 1 = recorded pace, 10 = ten times faster, 0 = as fast as possible")
	f.Bool(&c.Loop, "loop", p+"LOOP", d.Loop, "start again after the last event, with new meta.ids and later times")
	f.Bool(&c.Rebase, "rebase", p+"REBASE", d.Rebase, "shift event times so the first event is now")
	f.Int(&c.MaxConns, "max-conns", p+"MAX_CONNS", d.MaxConns, "concurrent streams; more get 429")
	f.Duration(&c.RetryAfter, "retry-after", p+"RETRY_AFTER", d.RetryAfter, "Retry-After of a 429 (whole seconds, rounded up)")
	f.Duration(&c.ConnLifetime, "conn-lifetime", p+"CONN_LIFETIME", d.ConnLifetime, "close each stream after this long, like Wikimedia (0 = never)")
	f.Duration(&c.Retention, "retention", p+"RETENTION", d.Retention, "a since older than this starts at the end, like Wikimedia past its retention (0 = keep all)")
	f.Bool(&c.TimestampIDs, "timestamp-ids", p+"TIMESTAMP_IDS", d.TimestampIDs, `SSE ids carry "timestamp" (ms) instead of "offset"`)
	f.Bool(&c.RequireUserAgent, "require-user-agent", p+"REQUIRE_USER_AGENT", d.RequireUserAgent, "answer 403 without a User-Agent header")
	f.Int(&c.CutEvery, "cut-every", p+"CUT_EVERY", d.CutEvery, "fault: drop the connection in the middle of every N-th event frame (0 = off)")
	f.Int(&c.SilentAfter, "silent-after", p+"SILENT_AFTER", d.SilentAfter, "fault: go silent after N event frames per connection (0 = off)")
	f.Duration(&c.SilentFor, "silent-for", p+"SILENT_FOR", d.SilentFor, "fault: how long a silent connection stays open before it is closed")
	f.Int(&c.ErrorEvery, "error-every", p+"ERROR_EVERY", d.ErrorEvery, "fault: every N-th event frame becomes an error frame, then close (0 = off)")
	f.Int(&c.ErrorOnResume, "error-on-resume", p+"ERROR_ON_RESUME", d.ErrorOnResume, "fault: an error frame before the K-th event of every resumed stream, which goes on (0 = off)")
	f.Int(&c.RepeatOnResume, "repeat-on-resume", p+"REPEAT_ON_RESUME", d.RepeatOnResume, "fault: on resume, first re-send the K events before the resume point (0 = off)")
	f.Int(&c.MalformedEvery, "malformed-every", p+"MALFORMED_EVERY", d.MalformedEvery, "fault: an extra invalid-JSON frame after every N-th event frame (0 = off)")
	f.Int(&c.HugeEvery, "huge-every", p+"HUGE_EVERY", d.HugeEvery, "fault: an extra 2 MiB event after every N-th event frame (0 = off)")
	f.Int(&c.CanaryEvery, "canary-every", p+"CANARY_EVERY", d.CanaryEvery, "fault: an extra canary event after every N-th event frame (0 = off)")
	f.Bool(&c.CRLF, "crlf", p+"CRLF", d.CRLF, `end lines with "\r\n"`)
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr %q: %v", c.Addr, err))
	}
	if !strings.HasPrefix(c.Path, "/") {
		errs = append(errs, fmt.Errorf("path %q: must start with /", c.Path))
	}
	if c.Speed < 0 || math.IsNaN(c.Speed) || math.IsInf(c.Speed, 0) {
		errs = append(errs, fmt.Errorf("speed %v: must be a finite number >= 0", c.Speed))
	}
	if c.MaxConns < 1 {
		errs = append(errs, fmt.Errorf("max-conns %d: must be at least 1", c.MaxConns))
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"cut-every", c.CutEvery}, {"silent-after", c.SilentAfter}, {"error-every", c.ErrorEvery}, {"error-on-resume", c.ErrorOnResume},
		{"repeat-on-resume", c.RepeatOnResume}, {"malformed-every", c.MalformedEvery},
		{"huge-every", c.HugeEvery}, {"canary-every", c.CanaryEvery},
	} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d: must be >= 0 (0 = off)", n.name, n.v))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"silent-for", c.SilentFor}, {"retry-after", c.RetryAfter}, {"conn-lifetime", c.ConnLifetime}, {"retention", c.Retention},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v: must be >= 0", d.name, d.v))
		}
	}
	if c.SilentAfter > 0 && c.SilentFor <= 0 {
		errs = append(errs, errors.New("silent-after is set: silent-for must be positive"))
	}
	return errors.Join(errs...)
}
