package aggregate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ackBody is JetStream's positive acknowledgement.
var ackBody = []byte("+ACK")

// acker double-acks many messages per round trip: every ack of a round is
// published at once, with a reply subject of that round under the acker's own
// inbox, and the round is confirmed when the server has answered each of them.
// The server answers an ack only after processing it, exactly as for
// jetstream.Msg.DoubleAck, which does the same for one message at a time. One
// round is in progress at a time.
type acker struct {
	nc     *nats.Conn
	prefix string
	sub    *nats.Subscription

	mu    sync.Mutex
	cur   *ackRound // the round replies are counted for
	round uint64
}

// ackRound is one round of acks.
type ackRound struct {
	subject string
	asked   int   // acks asked for
	want    int   // answers expected (acks published)
	got     int   // answers received
	refused int   // answers that were not confirmations
	sendErr error // why fewer acks than asked were published
	done    chan struct{}
}

// newAcker subscribes to a fresh inbox on nc.
func newAcker(nc *nats.Conn) (*acker, error) {
	a := &acker{nc: nc, prefix: nc.NewInbox()}
	sub, err := nc.Subscribe(a.prefix+".*", a.reply)
	if err != nil {
		return nil, fmt.Errorf("subscribe to ack replies: %w", err)
	}
	// A round of up to 10,000 answers must never be dropped as a slow consumer.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribe to ack replies: %w", err)
	}
	a.sub = sub
	return a, nil
}

func (a *acker) close() { _ = a.sub.Unsubscribe() }

// reply counts one answer; answers to an abandoned round are ignored.
func (a *acker) reply(m *nats.Msg) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.cur
	if r == nil || m.Subject != r.subject || r.got >= r.want {
		return
	}
	r.got++
	// A confirmation is an empty message; a status (such as 503, no responders:
	// the consumer is gone) is a refusal.
	if len(m.Data) != 0 || m.Header.Get("Status") != "" {
		r.refused++
	}
	if r.got == r.want {
		close(r.done)
	}
}

// start publishes the acks of msgs as a new round, abandoning any round not waited
// for.
func (a *acker) start(msgs []jetstream.Msg) *ackRound {
	a.mu.Lock()
	a.round++
	r := &ackRound{
		subject: a.prefix + "." + strconv.FormatUint(a.round, 10),
		asked:   len(msgs),
		want:    len(msgs),
		done:    make(chan struct{}),
	}
	if r.want == 0 {
		close(r.done)
	}
	a.cur = r
	a.mu.Unlock()
	for i, m := range msgs {
		if err := a.nc.PublishRequest(m.Reply(), r.subject, ackBody); err != nil {
			a.mu.Lock()
			r.sendErr = fmt.Errorf("publish ack: %w", err)
			if r.want = i; r.got == r.want {
				close(r.done)
			}
			a.mu.Unlock()
			break
		}
	}
	return r
}

// errAckRefused is returned when the server answered an ack with an error.
var errAckRefused = errors.New("ack refused by the server")

// wait waits until the server answered every ack of r or ctx ends, and returns how
// many acks it did not confirm and why (0, nil when all were confirmed).
func (a *acker) wait(ctx context.Context, r *ackRound) (int, error) {
	var err error
	select {
	case <-r.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == r {
		a.cur = nil
	}
	missing := r.asked - r.got + r.refused
	switch {
	case r.sendErr != nil:
		err = r.sendErr
	case missing > 0 && err == nil:
		err = errAckRefused
	}
	if err != nil && missing == 0 {
		// Every answer arrived as the context ended.
		err = nil
	}
	return missing, err
}

// ack starts double-acking m (see acker) after waiting for the previous round.
// The consumer's acks are cumulative (AckAll): m's ack covers every message of the
// consumer up to m's stream sequence, which the worker acks only when it is at or
// below W, so that everything it covers has been applied. A failed ack only means
// the messages come back later and are skipped as duplicates.
func (w *worker) ack(m jetstream.Msg) {
	w.settleAcks()
	w.acking = w.acks.start([]jetstream.Msg{m})
}

// settleAcks waits for the ack round in progress, if any, and reports failures.
func (w *worker) settleAcks() {
	if w.acking == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	n, err := w.acks.wait(ctx, w.acking)
	w.acking = nil
	if err != nil {
		w.failed("ack", fmt.Errorf("%d acks not confirmed (they will be redelivered and skipped): %w", n, err))
		return
	}
	w.healthy("ack")
}

// nak asks for redelivery of items after delay (best effort: unacked messages are
// redelivered after AckWait anyway).
func (w *worker) nak(items []item, delay time.Duration) {
	for _, it := range items {
		var err error
		if delay > 0 {
			err = it.m.NakWithDelay(delay)
		} else {
			err = it.m.Nak()
		}
		if err != nil {
			w.log.Debug("nak failed", "seq", it.seq, "err", err)
		}
	}
}
