package bridge

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sending. Most publishes are sent without a reply subject: the server stores
// them but answers nothing, which spares it an ack to build and route per
// message and the client an ack to decode and match. Every Config.AckEvery-th
// publish, and the last one of every burst, asks for an ack. Since each publish
// expects the stream's last sequence and Nats-Msg-Id to be those the publish
// before it leaves, a publish that is stored proves that every publish before it
// was stored, in order, one message each: a publish sent without an ack that was
// not stored (or was a duplicate that did not advance the stream) makes every
// later one fail, the one that asks for an ack included, which then reports the
// break and recover reads the stream.

// send queues r and, unless it is to be skipped, holds it to be published once
// it is known whether another record follows: the one before it, if any, is
// published now, without an ack unless AckEvery says otherwise.
func (p *publisher) send(r *record) {
	e := p.queue.push(r)
	switch {
	case r.skip:
		return
	case p.isKnown(r.id):
		e.err = errSkipKnown
		return
	}
	if p.held != nil {
		p.publish(p.held, p.bare+1 >= min(p.b.cfg.AckEvery, p.b.cfg.MaxInFlight))
		p.held = nil
	}
	if p.sendErr != nil {
		e.err = errNotSent
		return
	}
	p.held = e
}

// flush publishes the held record, asking for an ack: it ends a burst.
func (p *publisher) flush() {
	if p.held != nil {
		p.publish(p.held, true)
		p.held = nil
	}
}

// publish sends e's record with the expectations the publish before it leaves,
// with an ack (asynchronously) or without one. Its callers hold no record once a
// send failed (send returns before holding one), so it is not called after.
func (p *publisher) publish(e *entry, ack bool) {
	r := e.r
	r.setHeader(hvExpectedSeq, jetstream.ExpectedLastSeqHeader, strconv.FormatUint(p.nextSeq, 10))
	if p.nextID != "" {
		r.setHeader(hvExpectedID, jetstream.ExpectedLastMsgIDHeader, p.nextID)
	} else {
		delete(r.msg.Header, jetstream.ExpectedLastMsgIDHeader)
	}
	ack = ack || p.forceAck
	var f jetstream.PubAckFuture
	var err error
	if ack {
		f, err = p.js.PublishMsgAsync(&r.msg)
	} else {
		err = p.nc.PublishMsg(&r.msg)
	}
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		// Not sent, so the expectations of the next publish stay as they are.
		e.err = err
		return
	case err != nil:
		p.sendErr = fmt.Errorf("publish %s: %w", r.msg.Subject, err)
		e.err = p.sendErr
		return
	}
	if ack {
		e.f, e.deadline = f, time.Now().Add(p.b.cfg.AckTimeout+5*time.Second)
		p.bare, p.forceAck = 0, false
	} else {
		e.bare = true
		p.bare++
	}
	p.nextSeq, p.nextID = p.nextSeq+1, r.id
}

// sendAvailable sends the records waiting in in, without blocking, until the
// window is full or none is waiting, and then ends the burst.
func (p *publisher) sendAvailable(in <-chan *record, limit int) {
	defer p.flush()
	for p.queue.len() < limit && p.sendErr == nil {
		select {
		case r := <-in:
			p.send(r)
		default:
			return
		}
	}
}

// awaited returns the first entry whose ack is in flight (nil for none).
func (p *publisher) awaited() *entry {
	for i := range p.queue.len() {
		if e := p.queue.at(i); e.f != nil {
			return e
		}
	}
	return nil
}

// confirmed looks for the publish with an ack that settles the publishes without
// one at the front of the queue. It returns how many entries before it are
// settled by its outcome (0 while it is in flight or when it does not confirm
// them), and, when it does not confirm them, why: its error, or errUnconfirmed
// when it was a duplicate (which proves nothing about the chain) or when no
// publish with an ack follows them (a send that failed after them).
func (p *publisher) confirmed() (int, error) {
	for i := range p.queue.len() {
		e := p.queue.at(i)
		if e.bare || e.f == nil && settledWithoutSend(e) {
			continue
		}
		switch {
		case e.f == nil && e.err != nil:
			return 0, e.err
		case e.f == nil:
			return 0, errUnconfirmed
		case !e.poll():
			return 0, nil
		case e.err != nil:
			return 0, e.err
		case e.ack.Duplicate:
			return 0, errUnconfirmed
		}
		return i, nil
	}
	return 0, errUnconfirmed
}

// settledWithoutSend reports whether e's record needed no publish: skipped,
// already in the stream or too large for NATS.
func settledWithoutSend(e *entry) bool {
	return e.r.skip || e.err == errSkipKnown || errors.Is(e.err, nats.ErrMaxPayload)
}

// settleConfirmed settles the first n entries of the queue, which the publish
// after them confirmed.
func (p *publisher) settleConfirmed(n int) {
	for range n {
		e := p.queue.front()
		if e.bare {
			p.b.stats.Published.Add(1)
			p.settle(e.r)
		} else {
			_ = p.settleEntry(e) // a skipped record: settled without error
		}
		p.queue.pop()
	}
}
