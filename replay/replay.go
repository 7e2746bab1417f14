// Package replay reads wikiflow's history back from the JetStream log: selected by
// time, stream sequence, wiki, type and bot flag, written as NDJSON (one event
// per line, pipeable into jq), a readable table, or SSE frames laid out like
// Wikimedia's so that any EventStreams client can consume a replay. NDJSON lines
// and SSE data are the logged bytes, compacted onto one line when the feed had
// split an event over several. With Follow it goes on with live events after the
// history.
//
// Times (--since, --until) select by the time an event entered the log, which for
// a live feed is within seconds of its meta.dt.
package replay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/sse"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// Output formats.
const (
	FormatNDJSON = "ndjson"
	FormatTable  = "table"
	FormatSSE    = "sse"
)

// Config selects what to replay and how to write it.
type Config struct {
	// NATS is how to reach NATS (default nats://127.0.0.1:4222).
	NATS brokers.NATS
	// Stream is the JetStream stream (default wire.DefaultStream).
	Stream string
	// Since starts at events stored at or after this time: a duration back from now
	// ("15m") or a timestamp (RFC 3339 or Unix ms). Default: the start of the log.
	Since string
	// Until stops after events stored before this time (same forms as Since).
	Until string
	// StartSeq and EndSeq select by stream sequence (0 = unbounded).
	StartSeq, EndSeq uint64
	// Wikis and Types filter by subject tokens (empty = all).
	Wikis, Types []string
	// Bot keeps only bot ("true") or human ("false") events; empty keeps both.
	Bot string
	// Format is ndjson (default), table or sse.
	Format string
	// Follow goes on with live events after the history.
	Follow bool
	// Limit stops after this many events (0 = no limit).
	Limit int
	// Progress writes progress lines to the progress writer (default: when the
	// output is not a terminal).
	Progress bool
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{NATS: brokers.NATS{URL: brokers.DefaultNATS}, Stream: wire.DefaultStream, Format: FormatNDJSON}
}

// Flags registers the replay flags.
func Flags(f *cli.Flags, c *Config) {
	brokers.NATSFlags(f, &c.NATS)
	f.String(&c.Stream, "stream", "WIKIFLOW_STREAM", wire.DefaultStream, "JetStream stream to read")
	f.String(&c.Since, "since", "", "", "start at events logged since this time: a duration back from now (15m, 2h) or a timestamp (RFC 3339 or Unix ms)")
	f.String(&c.Until, "until", "", "", "stop at events logged after this time (same forms as --since)")
	f.Uint64(&c.StartSeq, "start-seq", "", 0, "first stream sequence to read (0 = from the start, or --since)")
	f.Uint64(&c.EndSeq, "end-seq", "", 0, "last stream sequence to read (0 = up to the end)")
	f.List(&c.Wikis, "wiki", "", "", "only these wikis, e.g. enwiki,dewiki")
	f.List(&c.Types, "type", "", "", "only these types: edit, new, log, categorize")
	f.String(&c.Bot, "bot", "", "", "only bot (true) or human (false) events")
	f.String(&c.Format, "format", "WIKIFLOW_REPLAY_FORMAT", FormatNDJSON, "output: ndjson (one event per line, as logged, compacted when it spans lines), table, or sse (Wikimedia EventStreams frames)")
	f.Bool(&c.Follow, "follow", "", false, "after the history, go on with live events until interrupted")
	f.Int(&c.Limit, "limit", "", 0, "stop after this many events (0 = no limit)")
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	switch c.Format {
	case FormatNDJSON, FormatTable, FormatSSE:
	default:
		errs = append(errs, fmt.Errorf("format: %q is not one of ndjson, table, sse", c.Format))
	}
	switch c.Bot {
	case "", "true", "false":
	default:
		errs = append(errs, fmt.Errorf("bot: %q is not true or false", c.Bot))
	}
	now := time.Now()
	since, err1 := ParseTime(c.Since, now)
	if err1 != nil {
		errs = append(errs, fmt.Errorf("since: %w", err1))
	}
	until, err2 := ParseTime(c.Until, now)
	if err2 != nil {
		errs = append(errs, fmt.Errorf("until: %w", err2))
	}
	if err1 == nil && err2 == nil && !since.IsZero() && !until.IsZero() && !until.After(since) {
		errs = append(errs, fmt.Errorf("until (%s) must be after since (%s)", until.Format(time.RFC3339), since.Format(time.RFC3339)))
	}
	if c.StartSeq > 0 && c.Since != "" {
		errs = append(errs, errors.New("start-seq and since both set: choose one start"))
	}
	if c.EndSeq > 0 && c.StartSeq > c.EndSeq {
		errs = append(errs, fmt.Errorf("end-seq %d is before start-seq %d", c.EndSeq, c.StartSeq))
	}
	if c.Follow && (c.Until != "" || c.EndSeq > 0) {
		errs = append(errs, errors.New("follow cannot be combined with until or end-seq"))
	}
	if c.Limit < 0 {
		errs = append(errs, errors.New("limit must not be negative"))
	}
	if err := wire.ValidStreamName(c.Stream); err != nil {
		errs = append(errs, fmt.Errorf("stream: %w", err))
	}
	return errors.Join(errs...)
}

// ParseTime reads a duration back from now ("15m"), an RFC 3339 timestamp or Unix
// milliseconds. The empty string gives the zero time.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			d = -d
		}
		return now.Add(-d), nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (15m), an RFC 3339 time nor Unix milliseconds", s)
}

// Subjects returns the filter subjects for the wiki and type selections.
func Subjects(wikis, types []string) []string {
	if len(wikis) == 0 {
		wikis = []string{"*"}
	}
	if len(types) == 0 {
		types = []string{"*"}
	}
	if len(wikis) == 1 && wikis[0] == "*" && len(types) == 1 && types[0] == "*" {
		return []string{wire.SubjectAll}
	}
	var out []string
	for _, w := range wikis {
		if w != "*" {
			w = event.Token(w)
		}
		for _, t := range types {
			if t != "*" {
				t = event.Token(t)
			}
			out = append(out, wire.SubjectPrefix+"."+w+"."+t)
		}
	}
	return out
}

// Summary describes a finished replay.
type Summary struct {
	// Events is how many events were written; Skipped how many the bot filter or
	// invalid payloads left out.
	Events, Skipped int
	// FirstSeq and LastSeq are the stream sequences of the first and last event written.
	FirstSeq, LastSeq uint64
	// FirstTime and LastTime are the smallest and largest event times (meta.dt) written.
	FirstTime, LastTime time.Time
	// Elapsed is the wall time the replay took.
	Elapsed time.Duration
}

// String renders the summary for people.
func (s Summary) String() string {
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.Events) / s.Elapsed.Seconds()
	}
	span := "no events"
	if s.Events > 0 {
		span = fmt.Sprintf("event time %s .. %s (%s), stream seq %d..%d",
			s.FirstTime.Format(time.RFC3339), s.LastTime.Format(time.RFC3339),
			s.LastTime.Sub(s.FirstTime).Round(time.Second), s.FirstSeq, s.LastSeq)
	}
	return fmt.Sprintf("replayed %d events (%d skipped) in %s, %.0f events/s; %s",
		s.Events, s.Skipped, s.Elapsed.Round(time.Millisecond), rate, span)
}

// ErrOutOfRange is returned (wrapped) when the selection lies wholly outside the
// retained log.
var ErrOutOfRange = errors.New("selection outside the retained log")

// Replayer reads a selection of the log.
type Replayer struct {
	cfg      Config
	log      *slog.Logger
	progress io.Writer
}

// New returns a Replayer. progress receives progress lines (nil for none).
func New(cfg Config, log *slog.Logger, progress io.Writer) *Replayer {
	return &Replayer{cfg: cfg, log: log.With("component", "replay"), progress: progress}
}

// Run writes the selected events to out and returns the summary.
func (r *Replayer) Run(ctx context.Context, out io.Writer) (Summary, error) {
	nc, err := r.cfg.NATS.Connect("replay")
	if err != nil {
		return Summary{}, err
	}
	defer nc.Close()
	return r.RunConn(ctx, nc, out)
}

// RunConn is Run over an existing NATS connection.
func (r *Replayer) RunConn(ctx context.Context, nc *nats.Conn, out io.Writer) (Summary, error) {
	start := time.Now()
	st, state, err := brokers.OpenStream(ctx, nc, r.cfg.Stream)
	if err != nil {
		return Summary{}, err
	}
	sel, err := r.selection(state)
	if err != nil {
		return Summary{}, err
	}
	cons, err := st.OrderedConsumer(ctx, r.consumerConfig(sel))
	if err != nil {
		return Summary{}, fmt.Errorf("replay consumer: %w", err)
	}
	defer removeConsumer(st, cons)
	p := &pass{Replayer: r, sel: sel, w: newWriter(out, r.cfg.Format, r.cfg.Stream), start: start}
	defer p.w.flush()
	if err := p.w.begin(); err != nil {
		return p.sum, err
	}
	if state.Msgs == 0 && !r.cfg.Follow {
		p.sum.Elapsed = time.Since(start)
		return p.sum, nil
	}
	if err := p.run(ctx, cons, &fetchSweeper{st: st, cons: cons}); err != nil {
		return p.sum, err
	}
	p.sum.Elapsed = time.Since(start)
	return p.sum, p.w.flush()
}

// selection is the part of the log a replay reads, resolved against the stream.
type selection struct {
	since, until time.Time
	// endSeq is the last sequence to read (0: no end); without --follow, the
	// log's last message as it was at start.
	endSeq uint64
}

// selection resolves the configured range against state, or says why it lies
// outside the retained log.
func (r *Replayer) selection(state jetstream.StreamState) (selection, error) {
	now := time.Now()
	since, _ := ParseTime(r.cfg.Since, now)
	until, _ := ParseTime(r.cfg.Until, now)
	if err := checkRange(state, since, until, r.cfg.StartSeq, r.cfg.EndSeq, r.cfg.Follow); err != nil {
		return selection{}, err
	}
	if !since.IsZero() && since.Before(state.FirstTime) && r.log != nil {
		r.log.Warn("the log starts later than --since; replaying from its start",
			"since", since.Format(time.RFC3339), "log_starts", state.FirstTime.Format(time.RFC3339))
	}
	sel := selection{since: since, until: until, endSeq: r.cfg.EndSeq}
	if !r.cfg.Follow && (sel.endSeq == 0 || sel.endSeq > state.LastSeq) {
		sel.endSeq = state.LastSeq
	}
	return sel, nil
}

// consumerConfig is the ordered consumer that delivers sel from its start.
func (r *Replayer) consumerConfig(sel selection) jetstream.OrderedConsumerConfig {
	occ := jetstream.OrderedConsumerConfig{FilterSubjects: Subjects(r.cfg.Wikis, r.cfg.Types)}
	switch {
	case r.cfg.StartSeq > 0:
		occ.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		occ.OptStartSeq = r.cfg.StartSeq
	case !sel.since.IsZero():
		occ.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		occ.OptStartTime = &sel.since
	}
	return occ
}

// pass is one replay's progress: what it writes to and what it has written.
type pass struct {
	*Replayer
	sel   selection
	w     *writer
	sum   Summary
	start time.Time
}

// run fetches and writes batches until the selection is done or ctx is
// cancelled (nil).
func (p *pass) run(ctx context.Context, cons jetstream.Consumer, sweep *fetchSweeper) error {
	nextProgress := time.Now().Add(time.Second)
	for ctx.Err() == nil {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fetch: %w", err)
		}
		sweep.fetched()
		got, done, err := p.batch(batch)
		if err != nil {
			return err
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			return fmt.Errorf("fetch: %w", err)
		}
		if p.progress != nil && time.Now().After(nextProgress) {
			el := time.Since(p.start).Seconds()
			fmt.Fprintf(p.progress, "replay: %d events, %.0f/s, at seq %d of %d\n", p.sum.Events, float64(p.sum.Events)/el, p.sum.LastSeq, p.sel.endSeq)
			nextProgress = time.Now().Add(time.Second)
		}
		p.w.flush()
		if done || (got == 0 && !p.cfg.Follow) {
			// Done, or nothing more matches the filter up to the end of the log.
			return nil
		}
	}
	return nil
}

// batch writes the messages of batch that the selection takes, and returns how
// many messages it got and whether the selection is done.
func (p *pass) batch(batch jetstream.MessageBatch) (got int, done bool, err error) {
	for msg := range batch.Messages() {
		got++
		md, err := msg.Metadata()
		if err != nil {
			continue
		}
		seq := md.Sequence.Stream
		if (p.sel.endSeq > 0 && seq > p.sel.endSeq) || (!p.sel.until.IsZero() && md.Timestamp.After(p.sel.until)) {
			return got, true, nil
		}
		if done, err := p.message(seq, msg.Data()); done || err != nil {
			return got, done, err
		}
		if !p.cfg.Follow && (seq >= p.sel.endSeq || md.NumPending == 0) {
			return got, true, nil
		}
	}
	return got, false, nil
}

// message writes the message at seq, or counts it as skipped, and reports
// whether the limit is reached.
func (p *pass) message(seq uint64, data []byte) (done bool, err error) {
	ev, perr := event.Parse(data)
	if perr != nil || (p.cfg.Bot != "" && strconv.FormatBool(ev.Bot) != p.cfg.Bot) {
		p.sum.Skipped++
		return false, nil
	}
	if err := p.w.write(seq, data, &ev); errors.Is(err, errNotJSON) {
		p.sum.Skipped++
		p.log.Warn("skipping a logged event that is not valid JSON on one line", "seq", seq, "id", ev.ID, "err", err)
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("write output: %w", err)
	}
	s := &p.sum
	if s.Events == 0 {
		s.FirstSeq, s.FirstTime, s.LastTime = seq, ev.Time, ev.Time
	}
	s.Events++
	s.LastSeq = seq
	if ev.Time.Before(s.FirstTime) {
		s.FirstTime = ev.Time
	}
	if ev.Time.After(s.LastTime) {
		s.LastTime = ev.Time
	}
	return p.cfg.Limit > 0 && s.Events >= p.cfg.Limit, nil
}

func checkRange(st jetstream.StreamState, since, until time.Time, startSeq, endSeq uint64, follow bool) error {
	if st.Msgs == 0 {
		if follow {
			return nil
		}
		return fmt.Errorf("%w: the log is empty", ErrOutOfRange)
	}
	span := fmt.Sprintf("the log holds seq %d..%d, logged %s .. %s", st.FirstSeq, st.LastSeq,
		st.FirstTime.UTC().Format(time.RFC3339), st.LastTime.UTC().Format(time.RFC3339))
	switch {
	case !until.IsZero() && until.Before(st.FirstTime):
		return fmt.Errorf("%w: --until %s is before the oldest retained event; %s", ErrOutOfRange, until.Format(time.RFC3339), span)
	case !since.IsZero() && since.After(st.LastTime) && !follow:
		return fmt.Errorf("%w: --since %s is after the newest event; %s", ErrOutOfRange, since.Format(time.RFC3339), span)
	case endSeq > 0 && endSeq < st.FirstSeq:
		return fmt.Errorf("%w: --end-seq %d was already dropped by retention; %s", ErrOutOfRange, endSeq, span)
	case startSeq > st.LastSeq && !follow:
		return fmt.Errorf("%w: --start-seq %d is past the end; %s", ErrOutOfRange, startSeq, span)
	}
	return nil
}

type writer struct {
	bw     *bufio.Writer
	format string
	stream string
	frame  []byte // scratch for an SSE frame
	line   []byte // scratch for the events compactLine rewrites
}

func newWriter(out io.Writer, format, stream string) *writer {
	return &writer{bw: bufio.NewWriterSize(out, 256<<10), format: format, stream: stream}
}

func (w *writer) begin() error {
	switch w.format {
	case FormatSSE:
		_, err := w.bw.WriteString(":ok\n\n")
		return err
	case FormatTable:
		_, err := fmt.Fprintf(w.bw, "%-20s  %-16s  %-10s  %-5s  %7s  %-24s  %s\n", "EVENT TIME", "WIKI", "TYPE", "BOT", "BYTES", "USER", "TITLE")
		return err
	}
	return nil
}

// SSEID is the SSE id a replayed event carries: Wikimedia's JSON array form, with
// the stream sequence as the offset.
func SSEID(stream string, seq uint64) string {
	return `[{"topic":"wikiflow.` + stream + `","partition":0,"offset":` + strconv.FormatUint(seq, 10) + `}]`
}

// write writes one event. NDJSON lines and SSE data hold the event as one
// JSON text without line breaks: the logged bytes as they are, or compacted
// (compactLine) when they hold a control character. An event that cannot be
// put on one line is not written and the error wraps errNotJSON.
func (w *writer) write(seq uint64, raw []byte, ev *event.Event) error {
	if w.format != FormatTable && hasControl(raw) {
		line, err := compactLine(w.line[:0], raw)
		if err != nil {
			return err
		}
		w.line, raw = line, line
	}
	switch w.format {
	case FormatSSE:
		w.frame = sse.AppendFrame(w.frame[:0], "message", SSEID(w.stream, seq), raw, "\n")
		_, err := w.bw.Write(w.frame)
		return err
	case FormatTable:
		bot := ""
		if ev.Bot {
			bot = "bot"
		}
		delta := ""
		if ev.HasLength {
			delta = fmt.Sprintf("%+d", ev.Delta())
		}
		_, err := fmt.Fprintf(w.bw, "%-20s  %-16s  %-10s  %-5s  %7s  %-24s  %s\n",
			ev.Time.Format("2006-01-02 15:04:05"), clip(ev.Wiki, 16), clip(ev.Type, 10), bot, delta, clip(ev.User, 24), clip(ev.Title, 80))
		return err
	default:
		if _, err := w.bw.Write(raw); err != nil {
			return err
		}
		return w.bw.WriteByte('\n')
	}
}

func (w *writer) flush() error { return w.bw.Flush() }

// clip shortens s to at most n runes, marking the cut with an ellipsis, and
// replaces control characters so one event stays on one table line.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	rs := []rune(s)
	return string(rs[:n-1]) + "…"
}

// removeConsumer deletes an ordered consumer the replay is done with, so that it
// does not linger in the stream's consumer list until the server's inactivity
// timeout; a failure only leaves it to that timeout.
func removeConsumer(st jetstream.Stream, c jetstream.Consumer) {
	if info := c.CachedInfo(); info != nil {
		deleteConsumer(st, info.Name)
	}
}

func deleteConsumer(st jetstream.Stream, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = st.DeleteConsumer(ctx, name)
}

// fetchSweeper deletes, after each Fetch of an ordered consumer, the server-side
// consumer the Fetch before used. Each Fetch creates a new one and deletes the
// old one in the background, which a replay that ends (and a command that exits)
// right after may never finish, leaving it to the inactivity timeout.
type fetchSweeper struct {
	st   jetstream.Stream
	cons jetstream.Consumer
	last string
}

func (s *fetchSweeper) fetched() {
	info := s.cons.CachedInfo()
	if info == nil || info.Name == s.last {
		return
	}
	if s.last != "" {
		deleteConsumer(s.st, s.last)
	}
	s.last = info.Name
}
