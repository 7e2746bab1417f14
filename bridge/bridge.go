// Package bridge replays the Kafka topic of raw Wikimedia events into a NATS
// JetStream stream, one message per event, on the subject
// wikimedia.recentchange.<wiki>.<type>, with the raw bytes untouched.
//
// The bridge keeps no state of its own and uses no Kafka consumer group: every
// message it stores carries the Kafka topic, partition and offset it came from, and
// on start the bridge reads the stream's last messages to learn where each partition
// stopped. It resumes a short overlap before that point and skips, without
// publishing, the events the stream already holds, so a restart adds no duplicates
// however long it took, and a record whose publish was never acknowledged is read
// again.
//
// Writes are fenced: each publish expects the stream's last sequence to be the one
// the publish before it leaves (Nats-Expected-Last-Sequence), and the last
// Nats-Msg-Id to be that of the record before it (Nats-Expected-Last-Msg-Id), so
// that once one publish fails no later one can land after a message someone else
// wrote. Up to Config.MaxInFlight publishes are in flight at once, each carrying what
// it expects; the bridge refills the window in bursts once half of it is acked, so
// that the client and the server handle many messages per write and wake-up. Only
// every Config.AckEvery-th publish and the last of a burst ask for an ack: the chain
// makes a stored publish the proof that every one before it was stored, so the
// server builds and the client decodes one ack per 64 messages, not one each. When
// the chain breaks (a duplicate that did not advance the stream, an ambiguous
// timeout, a reconnect) the bridge waits for the publishes in flight, reads the
// stream's new messages, keeps those it wrote itself (HeaderBridge carries the
// writer's instance id) and republishes the rest. A message written by anyone else
// means a second bridge is at work, and Run stops with ErrFenced. Each duplicate
// record in Kafka costs one such resynchronisation.
//
// Of an event the bridge decodes only meta.id, meta.domain, meta.dt, wiki and type
// (event.ParseHead, the same code event.Parse starts with, so an event is filed
// under the wiki and domain it is counted for), and it adds only the headers a later
// hop reads: Nats-Msg-Id, the Kafka position, its instance id and the ingest time.
// BenchmarkBridge measures a backlog of 1.3 KB events; see its comment for the
// figures.
package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/kafka-go"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/retry"
)

// HeaderBridge names the header carrying the id of the bridge instance that wrote a
// message; it tells the bridge's own writes from a second bridge's.
const HeaderBridge = "Wikiflow-Bridge"

// ErrFenced is returned (wrapped in a *FencedError) by Run when another writer has
// appended to the stream: two bridges must never write at once.
var ErrFenced = errors.New("another bridge is writing to the stream")

// FencedError describes the message that fenced the bridge.
type FencedError struct {
	// Stream is the stream name.
	Stream string
	// Expected is the last sequence the bridge expected the stream to have.
	Expected uint64
	// Found is the sequence of the first message the bridge did not write.
	Found uint64
	// Partition and Offset are that message's Kafka headers ("" when absent).
	Partition, Offset string
	// Writer is that message's bridge instance header ("" when absent).
	Writer string
}

// Error implements error.
func (e *FencedError) Error() string {
	from := fmt.Sprintf("from partition %s offset %s", orDash(e.Partition), orDash(e.Offset))
	return fmt.Sprintf("another bridge is writing to stream %s (expected last sequence %d, found %d %s); refusing to continue",
		e.Stream, e.Expected, e.Found, from)
}

// Unwrap makes errors.Is(err, ErrFenced) true.
func (e *FencedError) Unwrap() error { return ErrFenced }

func orDash(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// Stats are the bridge's counters, safe to read at any time.
type Stats struct {
	// Read counts Kafka records read (records read again after a restart count again).
	Read atomic.Int64
	// Published counts messages stored in the stream by this bridge.
	Published atomic.Int64
	// Duplicates counts publishes the stream acknowledged as duplicates
	// (PubAck.Duplicate): the same meta.id was already stored within its window.
	Duplicates atomic.Int64
	// AlreadyBridged counts records skipped without publishing because the stream's
	// recovered tail already holds their meta.id (the resume overlap, or a duplicate
	// record in Kafka).
	AlreadyBridged atomic.Int64
	// Canaries counts skipped canary events.
	Canaries atomic.Int64
	// Invalid counts skipped records that are not valid events.
	Invalid atomic.Int64
	// Resyncs counts the times the chain of publishes broke and the bridge
	// resynchronised with the stream.
	Resyncs atomic.Int64
	// Restarts counts pipeline restarts after an error.
	Restarts atomic.Int64
	// KafkaLag is the number of records in Kafka not yet bridged, summed over the
	// partitions (high watermark minus next offset), or LagUnknown while the
	// pipeline is not running (starting, or restarting after an error): then
	// nothing says how far behind the bridge is, and 0 would read as caught up.
	KafkaLag atomic.Int64
}

// Bridge copies the Kafka topic into the JetStream stream.
type Bridge struct {
	cfg      Config
	log      *slog.Logger
	instance string
	stats    Stats
	// badSubjects counts records whose subject header was malformed.
	badSubjects atomic.Int64

	mu    sync.Mutex
	parts map[int]*partState

	// The clients of the running Run, for Ready.
	nc atomic.Pointer[nats.Conn]
	kc atomic.Pointer[kafka.Client]
}

// LagUnknown is Stats.KafkaLag while the bridge does not know its lag.
const LagUnknown = -1

// partState tracks one partition for the lag and LastOffsets.
type partState struct {
	hwm  atomic.Int64 // high watermark (offset of the next record Kafka will write)
	next atomic.Int64 // offset after the last record settled (stored or skipped)
}

// New validates cfg and returns a Bridge; nothing is connected until Run.
func New(cfg Config, log *slog.Logger) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bridge config: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	b := &Bridge{
		cfg:      cfg,
		log:      log.With("component", "bridge"),
		instance: instanceID(),
	}
	b.stats.KafkaLag.Store(LagUnknown)
	return b, nil
}

func instanceID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "bridge"
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Stats returns the bridge's live counters.
func (b *Bridge) Stats() *Stats { return &b.stats }

// Instance returns the id this bridge writes in the HeaderBridge header.
func (b *Bridge) Instance() string { return b.instance }

// LastOffsets returns, per partition, the offset after the last record the bridge
// has settled (stored, found in the stream, or skipped).
func (b *Bridge) LastOffsets() map[int]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[int]int64, len(b.parts))
	for p, s := range b.parts {
		out[p] = s.next.Load()
	}
	return out
}

func (b *Bridge) setParts(m map[int]*partState) {
	b.mu.Lock()
	b.parts = m
	b.mu.Unlock()
	b.updateLag()
}

func (b *Bridge) updateLag() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.parts == nil {
		b.stats.KafkaLag.Store(LagUnknown)
		return
	}
	var lag int64
	for _, s := range b.parts {
		if d := s.hwm.Load() - s.next.Load(); d > 0 {
			lag += d
		}
	}
	b.stats.KafkaLag.Store(lag)
}

// Run bridges until ctx is cancelled, then waits for the publishes in flight and
// returns nil. Transient failures (brokers restarting) restart the pipeline from the
// position recorded in the stream; Run returns an error only for ErrFenced.
func (b *Bridge) Run(ctx context.Context) error {
	b.log.Info("starting", "kafka", b.cfg.Kafka.Brokers, "topic", b.cfg.Kafka.Topic,
		"stream", b.cfg.Stream, "instance", b.instance, "max_in_flight", b.cfg.MaxInFlight, "ack_every", b.cfg.AckEvery)
	nc := b.connect(ctx)
	if nc == nil {
		return nil
	}
	defer nc.Close()
	b.nc.Store(nc)
	defer b.nc.Store(nil)
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(b.cfg.MaxInFlight),
		jetstream.WithPublishAsyncTimeout(b.cfg.AckTimeout))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	kc, err := b.cfg.Kafka.Client()
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	b.kc.Store(kc)
	defer b.kc.Store(nil)
	dialer, err := b.cfg.Kafka.Dialer()
	if err != nil {
		return fmt.Errorf("kafka dialer: %w", err)
	}

	progressDone := make(chan struct{})
	pctx, stopProgress := context.WithCancel(ctx)
	go func() {
		defer close(progressDone)
		b.progress(pctx)
	}()
	defer func() {
		stopProgress()
		<-progressDone
	}()

	backoff := retry.NewDoubling(time.Second, 30*time.Second)
	for {
		started := time.Now()
		err := b.runPipeline(ctx, js, kc, dialer)
		if ctx.Err() != nil {
			b.log.Info("stopped", "published", b.stats.Published.Load(), "lag", b.stats.KafkaLag.Load())
			return nil
		}
		if errors.Is(err, ErrFenced) {
			return err
		}
		if time.Since(started) > time.Minute {
			backoff.Reset()
		}
		b.setParts(nil)
		b.stats.Restarts.Add(1)
		wait := backoff.Next()
		b.log.Warn("pipeline stopped; restarting from the position recorded in the stream", "err", err, "retry_in", wait)
		if !retry.Sleep(ctx, wait) {
			return nil
		}
	}
}

// Ready reports whether the bridge can copy: nil when NATS is connected and the
// Kafka topic's metadata can be read, otherwise an error that starts with the
// dependency at fault ("nats: …", "kafka: …"). The health server serves it as
// /readyz.
func (b *Bridge) Ready(ctx context.Context) error {
	nc := b.nc.Load()
	if nc == nil {
		return fmt.Errorf("nats: not connected to %s yet", brokers.Redact(b.cfg.NATS.URL))
	}
	if !nc.IsConnected() {
		return fmt.Errorf("nats: %s (%s)", strings.ToLower(nc.Status().String()), brokers.Redact(b.cfg.NATS.URL))
	}
	kc := b.kc.Load()
	if kc == nil {
		return fmt.Errorf("kafka: no client for %s yet", strings.Join(b.cfg.Kafka.Brokers, ","))
	}
	return b.cfg.Kafka.TopicReady(ctx, kc)
}

// connect connects to NATS, retrying until it succeeds or ctx ends (nil).
func (b *Bridge) connect(ctx context.Context) *nats.Conn {
	var nc *nats.Conn
	logged := false
	err := retry.Do(ctx, retry.NewDoubling(2*time.Second, 2*time.Second), func() error {
		var err error
		nc, err = b.cfg.NATS.Connect("bridge",
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil { // nil: the bridge closed the connection itself
					b.log.Warn("disconnected from NATS", "err", err)
				}
			}),
			nats.ReconnectHandler(func(c *nats.Conn) {
				b.log.Info("reconnected to NATS", "url", c.ConnectedUrlRedacted())
			}))
		return err
	}, func(err error, _ time.Duration) {
		if !logged {
			b.log.Warn("NATS not reachable yet; retrying", "err", err)
			logged = true
		}
	})
	if err != nil {
		return nil
	}
	return nc
}

func (b *Bridge) progress(ctx context.Context) {
	t := time.NewTicker(b.cfg.ProgressInterval)
	defer t.Stop()
	var lastPub int64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			b.updateLag()
			pub := b.stats.Published.Load()
			rate := float64(pub-lastPub) / now.Sub(last).Seconds()
			lastPub, last = pub, now
			b.log.Info("progress",
				"read", b.stats.Read.Load(),
				"published", pub,
				"per_second", fmt.Sprintf("%.1f", rate),
				"duplicates", b.stats.Duplicates.Load(),
				"already_bridged", b.stats.AlreadyBridged.Load(),
				"canaries", b.stats.Canaries.Load(),
				"invalid", b.stats.Invalid.Load(),
				"resyncs", b.stats.Resyncs.Load(),
				"lag", b.stats.KafkaLag.Load())
		}
	}
}

// runPipeline runs one life of the pipeline: ensure the stream, recover the
// position from it, read every partition and publish until an error or ctx ends.
func (b *Bridge) runPipeline(ctx context.Context, js jetstream.JetStream, kc *kafka.Client, dialer *kafka.Dialer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	stream, err := b.ensureStream(ctx, js)
	if err != nil {
		return err
	}
	parts, err := b.partitions(ctx, kc)
	if err != nil {
		return err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s info: %w", b.cfg.Stream, err)
	}
	last := info.State.LastSeq
	rec, err := b.recoverPositions(ctx, js, info.State.FirstSeq, last, ids(parts), int64(b.cfg.MaxInFlight))
	if err != nil {
		return err
	}
	states, starts := b.resume(parts, rec)
	b.setParts(states)
	b.log.Info("position recovered from the stream", "stream", b.cfg.Stream, "last_sequence", last,
		"scanned", rec.scanned, "known_ids", len(rec.ids), "partitions", len(parts))

	records := make(chan *record, b.cfg.MaxInFlight)
	errc := make(chan error, len(parts)+1)
	var wg sync.WaitGroup
	stop := func() {
		cancel()
		wg.Wait()
	}
	if err := b.startReaders(ctx, &wg, dialer, parts, states, starts, records, errc); err != nil {
		stop()
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.watchPartitions(ctx, kc, len(parts), errc)
	}()

	pub := &publisher{b: b, js: js, nc: js.Conn(), stream: stream, last: last, known: rec.ids, parts: states}
	if pub.lastID, err = b.lastMsgID(ctx, stream, last); err != nil {
		stop()
		return err
	}
	err = pub.run(ctx, records, errc)
	stop()
	b.updateLag()
	return err
}

// resume returns, for each partition, its state (the offset of its next new
// record) and the offset to read from: the resume overlap, up to MaxInFlight
// records before the next new one, whose meta.ids rec knows so that they are
// skipped.
func (b *Bridge) resume(parts []partition, rec recovered) (map[int]*partState, map[int]int64) {
	overlap := int64(b.cfg.MaxInFlight)
	states := make(map[int]*partState, len(parts))
	starts := make(map[int]int64, len(parts))
	for _, p := range parts {
		s := &partState{}
		s.hwm.Store(p.last)
		next, start := p.first, p.first
		if lo, ok := rec.last[p.id]; ok {
			next = lo + 1
			start = max(next-overlap, p.first)
			if next < p.first {
				b.log.Warn("records were removed from Kafka before they were bridged",
					"partition", p.id, "first_offset", p.first, "next_offset", next, "lost", p.first-next)
				next = p.first
			}
			if next > p.last {
				b.log.Warn("the stream holds offsets beyond the end of the Kafka partition (topic recreated?); waiting for them",
					"partition", p.id, "next_offset", next, "high_watermark", p.last)
			}
		}
		s.next.Store(next)
		states[p.id] = s
		starts[p.id] = start
		b.log.Info("resuming partition", "partition", p.id, "from_offset", start, "next_new_offset", next,
			"high_watermark", p.last, "bridged_before", hasKey(rec.last, p.id))
	}
	return states, starts
}

// startReaders starts a goroutine per partition (counted in wg) that reads from
// its start offset into records; the caller cancels ctx and waits for wg when it
// returns an error.
func (b *Bridge) startReaders(ctx context.Context, wg *sync.WaitGroup, dialer *kafka.Dialer, parts []partition,
	states map[int]*partState, starts map[int]int64, records chan<- *record, errc chan<- error) error {
	for _, p := range parts {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:     b.cfg.Kafka.Brokers,
			Topic:       b.cfg.Kafka.Topic,
			Partition:   p.id,
			Dialer:      dialer,
			MinBytes:    1,
			MaxBytes:    16 << 20,
			MaxWait:     b.cfg.FetchMaxWait,
			ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) { b.log.Debug(fmt.Sprintf(msg, args...)) }),
		})
		if err := r.SetOffset(starts[p.id]); err != nil {
			r.Close()
			return fmt.Errorf("partition %d: set offset %d: %w", p.id, starts[p.id], err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			b.read(ctx, r, states[p.id], records, errc)
		}()
	}
	return nil
}

// lastMsgID returns the Nats-Msg-Id of the stream's message at last ("" when
// last is 0 or the message is gone).
func (b *Bridge) lastMsgID(ctx context.Context, stream jetstream.Stream, last uint64) (string, error) {
	if last == 0 {
		return "", nil
	}
	m, err := stream.GetMsg(ctx, last)
	switch {
	case err == nil:
		return m.Header.Get(jetstream.MsgIDHeader), nil
	case !errors.Is(err, jetstream.ErrMsgNotFound):
		return "", fmt.Errorf("stream %s: read last message %d: %w", b.cfg.Stream, last, err)
	}
	return "", nil
}

func hasKey(m map[int]int64, k int) bool { _, ok := m[k]; return ok }

// read feeds one partition's records, parsed and ready to publish, to out.
func (b *Bridge) read(ctx context.Context, r *kafka.Reader, st *partState, out chan<- *record, errc chan<- error) {
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() == nil {
				select {
				case errc <- fmt.Errorf("read partition %d: %w", r.Config().Partition, err):
				default:
				}
			}
			return
		}
		b.stats.Read.Add(1)
		if m.HighWaterMark > st.hwm.Load() {
			st.hwm.Store(m.HighWaterMark)
		}
		rec := b.build(m)
		select {
		case out <- rec:
		case <-ctx.Done():
			return
		}
	}
}

// watchPartitions ends the pipeline when the topic's partition count changes, so
// that the new partitions are read too.
func (b *Bridge) watchPartitions(ctx context.Context, kc *kafka.Client, n int, errc chan<- error) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			parts, err := b.partitions(ctx, kc)
			if err != nil || len(parts) == n {
				continue
			}
			select {
			case errc <- fmt.Errorf("topic %s now has %d partitions instead of %d", b.cfg.Kafka.Topic, len(parts), n):
			default:
			}
			return
		}
	}
}

func ids(parts []partition) []int {
	out := make([]int, len(parts))
	for i, p := range parts {
		out[i] = p.id
	}
	sort.Ints(out)
	return out
}
