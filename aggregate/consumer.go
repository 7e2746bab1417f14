package aggregate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// setup reads the namespace and watermark (Redis first: without Redis no consumer
// is created), checks the watermark against the stream (a *TailLostError when the
// stream lost messages already counted), (re)binds the stream and consumer, and
// recreates the consumer from W+1 when Redis lost data.
func (w *worker) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	w.conns = w.nc.Stats().Reconnects
	pos, err := w.position(ctx)
	if err != nil {
		return fmt.Errorf("redis %s: %w", w.redisAddr, err)
	}
	ns, wm := pos.ns, pos.wm
	if err := w.store.ClaimShards(ctx); err != nil {
		return fmt.Errorf("redis %s: %w", w.redisAddr, err)
	}
	stream, source, err := w.openStream(ctx)
	if err != nil {
		return err
	}
	if err := w.checkTail(ctx, source, pos); err != nil {
		return err
	}
	cons, err := w.ensureConsumer(ctx, stream, wm)
	if err != nil {
		return err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer %s info: %w", w.cfg.Consumer, err)
	}
	floor := info.AckFloor.Stream
	lost := false
	if wm < floor {
		if lost, err = w.ackedAfter(ctx, stream, wm, floor); err != nil {
			return err
		}
	}
	stalled := !w.stuckSince.IsZero() && time.Since(w.stuckSince) > w.stallLimit()
	switch {
	case lost:
		w.log.Warn("watermark in Redis is behind the consumer's ack floor: Redis lost data; replaying the lost range",
			"namespace", ns, "watermark", wm, "ack_floor", floor)
	case stalled:
		w.log.Warn("the message after the watermark has not come back; repositioning the consumer right after it",
			"namespace", ns, "watermark", wm, "waiting_for", time.Since(w.stuckSince).Round(time.Second),
			"ack_pending", info.NumAckPending)
	}
	if lost || stalled {
		if cons, err = w.reposition(ctx, stream, wm); err != nil {
			return err
		}
		w.stuckSince, w.pauseLogged = time.Time{}, false
		w.stats.WaitingForSeq.Store(0)
		w.stats.Recoveries.Add(1)
	}
	if w.ns != "" && w.ns != ns {
		w.stats.NamespaceSwitches.Add(1)
		w.log.Info("projection namespace switched", "from", w.ns, "to", ns, "watermark", wm)
	}
	w.stream, w.cons, w.ns, w.wm = stream, cons, ns, wm
	w.stats.LastSeq.Store(int64(wm))
	w.setPending(info)
	return nil
}

// ackedAfter reports whether the consumer acknowledged a message of its filter
// after the watermark wm, the sign that Redis lost applies: the first such
// message is at or below the ack floor. A floor above the watermark alone is not
// that sign for a shard: once nothing is pending, JetStream moves a filtered
// consumer's ack floor to the last sequence it looked at, past other shards'
// messages that follow the shard's last one.
func (w *worker) ackedAfter(ctx context.Context, stream jetstream.Stream, wm, floor uint64) (bool, error) {
	if w.cfg.FilterSubject == "" {
		return true, nil
	}
	raw, err := stream.GetMsg(ctx, wm+1, jetstream.WithGetMsgSubject(w.cfg.FilterSubject))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("get first message after %d on %s: %w", wm, w.cfg.FilterSubject, err)
	}
	return raw.Sequence <= floor, nil
}

// openStream returns the stream to consume (the configured one, or its shard
// mirror) and the stream its tail is checked against: the configured one, since a
// mirror keeps its source's sequences and message times, but ignores messages at
// sequences it holds already, as those of a source that lost its tail.
func (w *worker) openStream(ctx context.Context) (consume, source jetstream.Stream, err error) {
	if w.shards > 1 {
		return w.ensureMirror(ctx)
	}
	s, err := w.js.Stream(ctx, w.cfg.Stream)
	if err != nil {
		return nil, nil, fmt.Errorf("stream %s: %w", w.cfg.Stream, err)
	}
	return s, s, nil
}

// reposition deletes the durable consumer and creates it again to deliver from
// wm+1 (everything when wm is 0), dropping every pending delivery.
func (w *worker) reposition(ctx context.Context, stream jetstream.Stream, wm uint64) (jetstream.Consumer, error) {
	if err := stream.DeleteConsumer(ctx, w.cfg.Consumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("delete consumer %s: %w", w.cfg.Consumer, err)
	}
	cc := w.consumerConfig()
	if wm > 0 {
		cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cc.OptStartSeq = wm + 1
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("recreate consumer %s: %w", w.cfg.Consumer, err)
	}
	return cons, nil
}

// stallLimit is how long the message right after the watermark may stay away
// before the consumer is repositioned: long enough for a delivery held by a dead
// instance to be redelivered after AckWait.
func (w *worker) stallLimit() time.Duration {
	return w.cfg.AckWait + 2*w.hold()
}

func (w *worker) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       w.cfg.Consumer,
		AckPolicy:     jetstream.AckAllPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: w.cfg.FilterSubject,
		AckWait:       w.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 8 * w.cfg.BatchSize,
		Replicas:      w.cfg.Replicas,
	}
}

// ensureConsumer returns the durable consumer, creating it or updating its
// settings; an existing consumer keeps its deliver policy and start sequence. A
// consumer with another ack policy (explicit acks, as created before acks became
// cumulative) cannot be updated: it is recreated to deliver from wm+1, as after
// lost Redis data, which drops nothing that was not applied.
func (w *worker) ensureConsumer(ctx context.Context, stream jetstream.Stream, wm uint64) (jetstream.Consumer, error) {
	cc := w.consumerConfig()
	cons, err := stream.Consumer(ctx, w.cfg.Consumer)
	switch {
	case err == nil:
		old := cons.CachedInfo().Config
		if old.AckPolicy != cc.AckPolicy {
			w.log.Info("recreating the consumer with cumulative acks right after the watermark",
				"consumer", w.cfg.Consumer, "ack_policy", old.AckPolicy.String(), "watermark", wm)
			return w.reposition(ctx, stream, wm)
		}
		if old.FilterSubject == cc.FilterSubject && old.AckWait == cc.AckWait &&
			old.MaxAckPending == cc.MaxAckPending && old.MaxDeliver == cc.MaxDeliver &&
			(cc.Replicas == 0 || old.Replicas == cc.Replicas) {
			return cons, nil
		}
		if old.FilterSubject != cc.FilterSubject {
			w.log.Warn("changing the consumer's filter subject; its watermark keeps counting from where it was",
				"consumer", w.cfg.Consumer, "from", old.FilterSubject, "to", cc.FilterSubject)
		}
		cc.DeliverPolicy, cc.OptStartSeq, cc.OptStartTime = old.DeliverPolicy, old.OptStartSeq, old.OptStartTime
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, fmt.Errorf("consumer %s: %w", w.cfg.Consumer, err)
	}
	cons, err = stream.CreateOrUpdateConsumer(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", w.cfg.Consumer, err)
	}
	return cons, nil
}

func (w *worker) setPending(info *jetstream.ConsumerInfo) {
	w.stats.Pending.Store(int64(info.NumPending))
	w.stats.AckPending.Store(int64(info.NumAckPending))
	w.lastPending = time.Now()
}
