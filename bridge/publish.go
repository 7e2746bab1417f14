package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/retry"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// errNotSent marks a record that was not sent because an earlier send failed.
var errNotSent = errors.New("not sent")

// errSkipKnown marks a record whose meta.id the stream's recovered tail holds.
var errSkipKnown = errors.New("already in the stream")

// errUnconfirmed marks publishes sent without an ack that no later ack confirmed.
var errUnconfirmed = errors.New("published without an ack, and not confirmed by a later ack")

// publisher writes the records to the stream in the order it receives them,
// keeping up to Config.MaxInFlight publishes awaiting their ack. Each publish
// expects the stream's last sequence and Nats-Msg-Id to be those the previous
// publish leaves, so the publishes in flight form a chain: once one of them is
// not stored, none after it can be.
//
// Why this is safe with many publishes in flight: the server handles one
// connection's publishes to a stream in the order they were sent, and checks each
// expectation against the stream as it stands when that message is stored. A
// message stored by anyone else, a duplicate that does not advance the stream or
// a lost publish therefore makes every later publish of the window fail its
// expected sequence instead of landing after a gap or a foreign message, and
// recover reads what the stream holds before sending again. Every record keeps its
// own Nats-Msg-Id, so a publish that was stored but whose ack was lost is found by
// resync or dropped as a duplicate, never stored twice.
//
// Why not atomic batches (nats-server 2.12+, AllowAtomicPublish): nats.go has no
// client for them, and on a file-store stream the server stages every message of
// a batch in a store of its own and copies it at the commit, which measured slower
// here than this window (200,000 messages of 1.3 KB: about 25-30k/s in batches of
// 500-1000 against 40k/s asynchronously); a batch also rejects
// Nats-Expected-Last-Msg-Id and fails as a whole on one duplicate Nats-Msg-Id,
// where a single publish is acknowledged as a duplicate.
type publisher struct {
	b      *Bridge
	js     jetstream.JetStream
	nc     *nats.Conn
	stream jetstream.Stream
	// last is the stream's last sequence as far as this bridge knows: every message
	// up to it was checked to be this bridge's (or was there at start).
	last uint64
	// lastID is the Nats-Msg-Id of the message at last ("" for none).
	lastID string
	// known are meta.ids the stream holds from the resume overlap.
	known map[string]struct{}
	parts map[int]*partState

	// queue holds the records read and not yet settled, in the order read.
	queue ring
	// nextSeq and nextID are what the next publish expects: the stream's last
	// sequence and Nats-Msg-Id once every publish in flight is stored.
	nextSeq uint64
	nextID  string
	// held is the last record queued to be published, not sent yet: whether it
	// asks for an ack depends on whether another record follows it at once.
	held *entry
	// bare counts the publishes sent without an ack since the last one with.
	bare int
	// forceAck makes the next publish ask for an ack (the first one after a
	// recovery, so that a duplicate among the records sent again is reported as
	// one instead of breaking the chain once more).
	forceAck bool
	// sendErr is set once a send failed: the records after it are not sent.
	sendErr error
	// failures counts consecutive resynchronisations caused by failing publishes
	// (rather than a broken chain), and backoff spaces their attempts.
	failures int
	backoff  *retry.Backoff
}

// entry is one record in the queue with the outcome of its publish.
type entry struct {
	r *record
	// f is the publish awaiting its ack (nil when the record was not sent, or sent
	// without an ack).
	f jetstream.PubAckFuture
	// bare reports that the record was published without an ack: it is stored
	// once the next publish that asks for one is.
	bare bool
	// deadline bounds the wait for f, should the client never resolve it.
	deadline time.Time
	// done reports that ack or err holds the outcome.
	done bool
	ack  *jetstream.PubAck
	// err is why the record was not stored: errSkipKnown, nats.ErrMaxPayload,
	// errNotSent, a send error or the publish's error.
	err error
}

// poll collects the outcome of e's publish without waiting; it reports whether
// the outcome is known.
func (e *entry) poll() bool {
	if e.done {
		return true
	}
	select {
	case e.ack = <-e.f.Ok():
	case e.err = <-e.f.Err():
	default:
		return false
	}
	e.done = true
	return true
}

// await waits for the outcome of e's publish. The client times every publish out
// after AckTimeout; the deadline only guards against one that never resolves.
func (e *entry) await(guard *time.Timer) {
	if e.done {
		return
	}
	guard.Reset(time.Until(e.deadline))
	select {
	case e.ack = <-e.f.Ok():
	case e.err = <-e.f.Err():
	case <-guard.C:
		e.err = jetstream.ErrAsyncPublishTimeout
	}
	guard.Stop()
	e.done = true
}

// run publishes the records of in until ctx ends (nil) or an error stops the
// pipeline. Whenever it stops it first waits for the publishes in flight, so that
// none lands after the next pipeline has read the stream's position.
func (p *publisher) run(ctx context.Context, in <-chan *record, errc <-chan error) error {
	limit := p.b.cfg.MaxInFlight
	p.queue = newRing(limit)
	p.nextSeq, p.nextID = p.last, p.lastID
	p.backoff = retry.NewDoubling(100*time.Millisecond, 5*time.Second)
	guard := time.NewTimer(time.Hour)
	guard.Stop()
	filling := true
	lagTick := time.NewTicker(time.Second)
	defer lagTick.Stop()
	for {
		if cause := p.settleDone(); cause != nil {
			err := p.recover(ctx, cause, guard)
			if err != nil {
				if ctx.Err() != nil && !errors.Is(err, ErrFenced) {
					return nil
				}
				return err
			}
			continue
		}
		// Publish in bursts: wait for half the window to be acked, then fill it
		// again with what is at hand, so that each write and each wake-up of the
		// server and the client carries many messages.
		switch {
		case p.queue.len() <= limit/2:
			filling = true
		case p.queue.len() >= limit:
			filling = false
		}
		var next <-chan *record
		if filling && p.sendErr == nil {
			next = in
		}
		var ok <-chan *jetstream.PubAck
		var fail <-chan error
		var timeout <-chan time.Time
		head := p.awaited()
		if head != nil {
			// The first ack in flight: settleDone settled everything before it
			// that did not wait for it.
			ok, fail = head.f.Ok(), head.f.Err()
			guard.Reset(time.Until(head.deadline))
			timeout = guard.C
		}
		select {
		case <-ctx.Done():
			p.drain(guard)
			return nil
		case err := <-errc:
			p.drain(guard)
			return err
		case r := <-next:
			p.send(r)
			p.sendAvailable(in, limit)
		case head.ack = <-ok:
			head.done = true
		case head.err = <-fail:
			head.done = true
		case <-timeout:
			head.err, head.done = jetstream.ErrAsyncPublishTimeout, true
		case <-lagTick.C:
			p.b.updateLag()
		}
		if timeout != nil {
			guard.Stop()
		}
	}
}

func (p *publisher) isKnown(id string) bool {
	_, ok := p.known[id]
	return ok
}

// settleDone settles the records at the front of the queue whose outcome is known,
// in order, and stops at the first one still awaiting its ack. It returns the
// error of the first record that was not stored, left at the front of the queue.
func (p *publisher) settleDone() error {
	for e := p.queue.front(); e != nil; e = p.queue.front() {
		if e.bare {
			n, err := p.confirmed()
			if n == 0 {
				return err
			}
			p.settleConfirmed(n)
			continue
		}
		if e.f != nil && !e.poll() {
			return nil
		}
		if err := p.settleEntry(e); err != nil {
			return err
		}
		p.queue.pop()
	}
	return nil
}

// settleEntry counts and settles one record whose outcome is known; it returns
// the error of a record that must be published again.
func (p *publisher) settleEntry(e *entry) error {
	r := e.r
	switch {
	case r.skip:
	case e.err == errSkipKnown:
		p.b.stats.AlreadyBridged.Add(1)
	case errors.Is(e.err, nats.ErrMaxPayload):
		p.b.stats.Invalid.Add(1)
		p.b.log.Warn("skipping a Kafka record too large for NATS",
			"partition", r.partition, "offset", r.offset, "bytes", len(r.msg.Data), "err", e.err)
	case e.err != nil:
		return e.err
	case e.ack.Duplicate:
		// The stream already holds this meta.id and did not advance: the
		// expectations of the publishes after it are now one too high, and the
		// first of them to fail resynchronises.
		p.b.stats.Duplicates.Add(1)
	default:
		p.b.stats.Published.Add(1)
		p.last, p.lastID = e.ack.Sequence, r.id
		p.failures = 0
		p.backoff.Reset()
	}
	p.settle(r)
	return nil
}

// drain waits for the publishes in flight and settles what was stored, up to the
// first record that was not.
func (p *publisher) drain(guard *time.Timer) {
	for i := range p.queue.len() {
		if e := p.queue.at(i); e.f != nil {
			e.await(guard)
		}
	}
	_ = p.settleDone()
}

// recover handles a record at the front of the queue that was not stored: it
// waits for every publish in flight, reads what the stream stored meanwhile
// (resync), settles the records found there and publishes the others again.
func (p *publisher) recover(ctx context.Context, cause error, guard *time.Timer) error {
	rest := make([]*record, 0, p.queue.len())
	for i := range p.queue.len() {
		e := p.queue.at(i)
		if e.f != nil {
			e.await(guard)
		}
		rest = append(rest, e.r)
	}
	p.queue.clear()
	p.sendErr = nil
	found, err := p.resync(ctx, rest, cause)
	if err != nil {
		return err
	}
	if !chainBroke(cause) && len(found) == 0 {
		// Not a broken chain but a failing publish (the stream full, the server
		// restarting): wait before trying again, and hand over to a pipeline
		// restart if it goes on.
		if p.failures++; p.failures >= 10 {
			return fmt.Errorf("publish to stream %s keeps failing: %w", p.b.cfg.Stream, cause)
		}
		if !retry.Sleep(ctx, p.backoff.Next()) {
			return ctx.Err()
		}
	}
	p.nextSeq, p.nextID, p.bare, p.forceAck = p.last, p.lastID, 0, true
	for _, r := range rest {
		if found[r] {
			p.b.stats.Published.Add(1)
			p.settle(r)
			continue
		}
		p.send(r)
	}
	p.flush()
	return nil
}

// settle records that r needs no more work.
func (p *publisher) settle(r *record) {
	if s := p.parts[r.partition]; s != nil && r.offset+1 > s.next.Load() {
		s.next.Store(r.offset + 1)
	}
}

// ring is a fixed-capacity FIFO queue of entries.
type ring struct {
	buf  []entry
	head int
	n    int
}

func newRing(capacity int) ring { return ring{buf: make([]entry, capacity)} }

func (q *ring) len() int { return q.n }

// at returns the i-th entry from the front.
func (q *ring) at(i int) *entry { return &q.buf[(q.head+i)%len(q.buf)] }

// front returns the first entry, or nil when the queue is empty.
func (q *ring) front() *entry {
	if q.n == 0 {
		return nil
	}
	return &q.buf[q.head]
}

// push appends an entry for r; the queue must not be full.
func (q *ring) push(r *record) *entry {
	e := q.at(q.n)
	*e = entry{r: r}
	q.n++
	return e
}

// pop removes the first entry.
func (q *ring) pop() {
	q.buf[q.head] = entry{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
}

// clear empties the queue.
func (q *ring) clear() {
	for q.n > 0 {
		q.pop()
	}
}

// resync brings p.last up to the stream's last sequence after the chain of
// publishes broke at rest[0]. It reads every message stored since p.last: each must be this bridge's
// (a record of rest whose ack was lost, or stored after a duplicate shifted the
// expectations), or the bridge is fenced. It returns the records of rest found
// stored.
func (p *publisher) resync(ctx context.Context, rest []*record, cause error) (map[*record]bool, error) {
	p.b.stats.Resyncs.Add(1)
	level := p.b.log.Debug
	if !chainBroke(cause) {
		level = p.b.log.Warn
	}
	level("publish chain broke; resynchronising with the stream",
		"stream", p.b.cfg.Stream, "expected_last_sequence", p.last, "unsettled", len(rest), "cause", cause)

	info, err := p.streamInfo(ctx)
	if err != nil {
		return nil, err
	}
	end := info.State.LastSeq
	if end < p.last {
		return nil, fmt.Errorf("stream %s went back from sequence %d to %d", p.b.cfg.Stream, p.last, end)
	}
	byPos := make(map[[2]int64]*record, len(rest))
	for _, r := range rest {
		if !r.skip {
			byPos[[2]int64{int64(r.partition), r.offset}] = r
		}
	}
	found := map[*record]bool{}
	expected := p.last
	for seq := p.last + 1; seq <= end; seq++ {
		m, err := p.getMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			p.lastID = ""
			continue
		}
		if err != nil {
			return nil, err
		}
		if m.Header.Get(HeaderBridge) != p.b.instance {
			return nil, &FencedError{
				Stream:    p.b.cfg.Stream,
				Expected:  expected,
				Found:     seq,
				Partition: m.Header.Get(wire.HeaderKafkaPartition),
				Offset:    m.Header.Get(wire.HeaderKafkaOffset),
				Writer:    m.Header.Get(HeaderBridge),
			}
		}
		if pos, ok := p.b.position(m.Header); ok {
			if r := byPos[[2]int64{int64(pos.partition), pos.offset}]; r != nil && r.id == pos.id {
				found[r] = true
			}
		}
		p.last, p.lastID = seq, m.Header.Get(jetstream.MsgIDHeader)
	}
	p.last = end
	if !chainBroke(cause) {
		p.b.log.Info("resynchronised with the stream", "stream", p.b.cfg.Stream,
			"last_sequence", p.last, "found_stored", len(found), "to_republish", len(rest)-len(found))
	}
	return found, nil
}

// streamInfo asks for the stream's state until it gets it: after a disconnect the
// client reconnects by itself, and the stream answers again once it is back.
func (p *publisher) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	var info *jetstream.StreamInfo
	attempt := 0
	err := retry.Do(ctx, retry.NewDoubling(250*time.Millisecond, 2*time.Second), func() error {
		attempt++
		cctx, cancel := context.WithTimeout(ctx, p.b.cfg.AckTimeout)
		var err error
		info, err = p.stream.Info(cctx)
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return retry.Stop(ctx.Err())
		case errors.Is(err, jetstream.ErrStreamNotFound):
			return retry.Stop(fmt.Errorf("stream %s: %w", p.b.cfg.Stream, err))
		}
		return err
	}, func(err error, _ time.Duration) {
		if attempt%10 == 1 {
			p.b.log.Warn("waiting for the stream to answer", "stream", p.b.cfg.Stream, "attempt", attempt, "err", err)
		}
	})
	if err != nil {
		return nil, err
	}
	return info, nil
}

// getMsg reads one message, retrying transient failures.
func (p *publisher) getMsg(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	const attempts = 20
	var m *jetstream.RawStreamMsg
	attempt := 0
	err := retry.Do(ctx, retry.NewDoubling(250*time.Millisecond, 250*time.Millisecond), func() error {
		attempt++
		cctx, cancel := context.WithTimeout(ctx, p.b.cfg.AckTimeout)
		var err error
		m, err = p.stream.GetMsg(cctx, seq)
		cancel()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, jetstream.ErrMsgNotFound):
			return retry.Stop(err)
		case ctx.Err() != nil:
			return retry.Stop(ctx.Err())
		case attempt >= attempts:
			return retry.Stop(fmt.Errorf("read stream %s sequence %d: %w", p.b.cfg.Stream, seq, err))
		}
		return err
	}, func(err error, wait time.Duration) {
		p.b.log.Debug("reading a stream message failed; retrying", "stream", p.b.cfg.Stream, "seq", seq, "attempt", attempt, "retry_in", wait, "err", err)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// jsErrCodeStreamWrongLastMsgID is the stream's answer to a publish whose expected
// last Nats-Msg-Id is not the stream's.
const jsErrCodeStreamWrongLastMsgID jetstream.ErrorCode = 10070

// chainBroke reports whether err means that the chain of publishes broke (an
// expectation failed, or publishes without an ack went unconfirmed) rather than
// that publishing failed.
func chainBroke(err error) bool {
	return isWrongLastSeq(err) || errors.Is(err, errUnconfirmed)
}

// isWrongLastSeq reports whether err is the stream's answer to a broken chain of
// expectations: "wrong last sequence" or "wrong last msg ID".
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant, jsErrCodeStreamWrongLastMsgID:
		return true
	}
	return false
}
