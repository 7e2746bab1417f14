package bridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/wire"
)

// errNotSent marks a window entry that was not sent because an earlier one of the
// same window could not be.
var errNotSent = errors.New("not sent")

// publisher writes windows of records to the stream, each publish expecting the
// stream's last sequence to be the one the previous publish left.
type publisher struct {
	b      *Bridge
	js     jetstream.JetStream
	stream jetstream.Stream
	// last is the stream's last sequence as far as this bridge knows: every message
	// up to it was checked to be this bridge's (or was there at start).
	last uint64
	// lastID is the Nats-Msg-Id of the message at last ("" for none): each publish
	// also expects the previous one's id, so that once a publish fails no later
	// one of the same window can be stored after a message someone else wrote.
	lastID string
	// known are meta.ids the stream holds from the resume overlap.
	known map[string]struct{}
	parts map[int]*partState
}

// result is the outcome of one window entry.
type result struct {
	ack *jetstream.PubAck
	err error
}

// run collects records into windows and publishes them until ctx ends (nil) or an
// error stops the pipeline.
func (p *publisher) run(ctx context.Context, in <-chan *record, errc <-chan error) error {
	limit := p.b.cfg.MaxInFlight
	window := make([]*record, 0, limit)
	for {
		window = window[:0]
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case r := <-in:
			window = append(window, r)
		}
	fill:
		for len(window) < limit {
			select {
			case r := <-in:
				window = append(window, r)
			default:
				break fill
			}
		}
		if err := p.flush(ctx, window); err != nil {
			if ctx.Err() != nil && !errors.Is(err, ErrFenced) {
				return nil
			}
			return err
		}
		p.b.updateLag()
	}
}

// flush publishes one window and returns when every record of it is stored (or
// skipped), resynchronising with the stream as often as the chain breaks.
func (p *publisher) flush(ctx context.Context, window []*record) error {
	pending := window
	wait := 100 * time.Millisecond
	for failures := 0; len(pending) > 0; {
		results := p.publish(pending)
		fail := -1
		var cause error
		for i, r := range pending {
			res := results[i]
			if fail >= 0 {
				continue
			}
			switch {
			case r.skip:
				p.settle(r)
			case res.err == errSkipKnown:
				p.b.stats.AlreadyBridged.Add(1)
				p.settle(r)
			case errors.Is(res.err, nats.ErrMaxPayload):
				p.b.stats.Invalid.Add(1)
				p.b.log.Warn("skipping a Kafka record too large for NATS",
					"partition", r.partition, "offset", r.offset, "bytes", len(r.msg.Data), "err", res.err)
				p.settle(r)
			case res.err != nil:
				fail, cause = i, res.err
			case res.ack.Duplicate:
				// The stream already holds this meta.id and did not advance: the
				// expectations of the rest of the window are now one too high.
				p.b.stats.Duplicates.Add(1)
				p.settle(r)
			default:
				p.b.stats.Published.Add(1)
				p.last, p.lastID = res.ack.Sequence, r.id
				p.settle(r)
			}
		}
		if fail < 0 {
			return nil
		}
		rest := pending[fail:]
		found, err := p.resync(ctx, rest, cause)
		if err != nil {
			return err
		}
		if !isWrongLastSeq(cause) && len(found) == 0 {
			// Not a broken chain but a failing publish (the stream full, the
			// server restarting): wait before trying again, and hand over to a
			// pipeline restart if it goes on.
			if failures++; failures >= 10 {
				return fmt.Errorf("publish to stream %s keeps failing: %w", p.b.cfg.Stream, cause)
			}
			if !sleep(ctx, wait) {
				return ctx.Err()
			}
			wait = min(wait*2, 5*time.Second)
		}
		pending = pending[:0:0]
		for _, r := range rest {
			if found[r] {
				p.b.stats.Published.Add(1)
				p.settle(r)
				continue
			}
			pending = append(pending, r)
		}
	}
	return nil
}

// errSkipKnown marks a record whose meta.id the stream's recovered tail holds.
var errSkipKnown = errors.New("already in the stream")

// publish sends the window asynchronously, the i-th published record expecting
// last+i, and waits for every ack (or error, or the ack timeout).
func (p *publisher) publish(window []*record) []result {
	results := make([]result, len(window))
	futures := make([]jetstream.PubAckFuture, len(window))
	expect, prevID := p.last, p.lastID
	var sendErr error
	for i, r := range window {
		if r.skip {
			continue
		}
		if _, ok := p.known[r.id]; ok {
			results[i].err = errSkipKnown
			continue
		}
		if sendErr != nil {
			results[i].err = errNotSent
			continue
		}
		h := make(nats.Header, len(r.msg.Header)+1)
		maps.Copy(h, r.msg.Header)
		h[jetstream.ExpectedLastSeqHeader] = []string{strconv.FormatUint(expect, 10)}
		if prevID != "" {
			h[jetstream.ExpectedLastMsgIDHeader] = []string{prevID}
		}
		f, err := p.js.PublishMsgAsync(&nats.Msg{Subject: r.msg.Subject, Data: r.msg.Data, Header: h})
		if errors.Is(err, nats.ErrMaxPayload) {
			// Not sent, so the expectations of the rest stay as they are.
			results[i].err = err
			continue
		}
		if err != nil {
			sendErr = fmt.Errorf("publish %s: %w", r.msg.Subject, err)
			results[i].err = sendErr
			continue
		}
		futures[i] = f
		expect, prevID = expect+1, r.id
	}
	// The client times every future out after AckTimeout; the extra margin only
	// guards against a future that never resolves.
	deadline := time.NewTimer(p.b.cfg.AckTimeout + 5*time.Second)
	defer deadline.Stop()
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			results[i].ack = ack
		case err := <-f.Err():
			results[i].err = err
		case <-deadline.C:
			results[i].err = jetstream.ErrAsyncPublishTimeout
			for j := i + 1; j < len(futures); j++ {
				if futures[j] != nil {
					results[j].err = jetstream.ErrAsyncPublishTimeout
				}
			}
			return results
		}
	}
	return results
}

// settle records that r needs no more work.
func (p *publisher) settle(r *record) {
	if s := p.parts[r.partition]; s != nil && r.offset+1 > s.next.Load() {
		s.next.Store(r.offset + 1)
	}
}

// resync brings p.last up to the stream's last sequence after a window broke at
// rest[0]. It reads every message stored since p.last: each must be this bridge's
// (a record of rest whose ack was lost, or stored after a duplicate shifted the
// expectations), or the bridge is fenced. It returns the records of rest found
// stored.
func (p *publisher) resync(ctx context.Context, rest []*record, cause error) (map[*record]bool, error) {
	p.b.stats.Resyncs.Add(1)
	level := p.b.log.Debug
	if !isWrongLastSeq(cause) {
		level = p.b.log.Warn
	}
	level("publish window broke; resynchronising with the stream",
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
	if !isWrongLastSeq(cause) {
		p.b.log.Info("resynchronised with the stream", "stream", p.b.cfg.Stream,
			"last_sequence", p.last, "found_stored", len(found), "to_republish", len(rest)-len(found))
	}
	return found, nil
}

// streamInfo asks for the stream's state until it gets it: after a disconnect the
// client reconnects by itself, and the stream answers again once it is back.
func (p *publisher) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, p.b.cfg.AckTimeout)
		info, err := p.stream.Info(cctx)
		cancel()
		if err == nil {
			return info, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("stream %s: %w", p.b.cfg.Stream, err)
		}
		if attempt%10 == 1 {
			p.b.log.Warn("waiting for the stream to answer", "stream", p.b.cfg.Stream, "attempt", attempt, "err", err)
		}
		if !sleep(ctx, wait) {
			return nil, ctx.Err()
		}
		wait = min(wait*2, 2*time.Second)
	}
}

// getMsg reads one message, retrying transient failures.
func (p *publisher) getMsg(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	var last error
	for attempt := 0; attempt < 20; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, p.b.cfg.AckTimeout)
		m, err := p.stream.GetMsg(cctx, seq)
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrMsgNotFound) {
			return m, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		last = err
		if !sleep(ctx, 250*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("read stream %s sequence %d: %w", p.b.cfg.Stream, seq, last)
}

// jsErrCodeStreamWrongLastMsgID is the stream's answer to a publish whose expected
// last Nats-Msg-Id is not the stream's.
const jsErrCodeStreamWrongLastMsgID jetstream.ErrorCode = 10070

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
