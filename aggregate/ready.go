package aggregate

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/wikiflow/wikiflow/internal/brokers"
)

// Ready reports whether the stage can count: nil when NATS is connected, Redis
// answers and counting is not stopped, otherwise an error that starts with the
// dependency at fault ("nats: …", "redis: …"). The health server serves it as
// /readyz.
func (a *Aggregate) Ready(ctx context.Context) error {
	if lost := a.tailLost.Load(); lost != nil {
		return fmt.Errorf("nats: %s", lost.Summary())
	}
	nc := a.nc.Load()
	if nc == nil {
		return fmt.Errorf("nats: not connected to %s yet", brokers.Redact(a.cfg.NATS.URL))
	}
	if !nc.IsConnected() {
		return fmt.Errorf("nats: %s (%s)", strings.ToLower(nc.Status().String()), brokers.Redact(a.cfg.NATS.URL))
	}
	rdb := a.rdb.Load()
	if rdb == nil {
		return fmt.Errorf("redis: not connected to %s yet", a.redisAddr)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %s: %w", a.redisAddr, err)
	}
	return nil
}

// Degraded says why the stage runs without counting, "" when it counts: stopped
// after the stream lost its tail, or waiting for a message to be redelivered.
func (a *Aggregate) Degraded() string {
	if lost := a.tailLost.Load(); lost != nil {
		return lost.Summary()
	}
	if seq := a.stats.WaitingForSeq.Load(); seq > 0 {
		return fmt.Sprintf("waiting for sequence %d to be redelivered (delivered, not acknowledged; ack wait %s)", seq, a.cfg.AckWait)
	}
	return ""
}

// paused notes a round that found no message after W in hand, even after waiting
// for another instance. A pause is logged and counted once, at its second round:
// one round alone is most often messages this stage nakked itself and fetches
// again next; a second one means the message after W is held elsewhere.
func (w *worker) paused(items []item) {
	switch {
	case w.stuckSince.IsZero():
		w.stuckSince = time.Now()
		return
	case w.pauseLogged:
		return
	}
	w.pauseLogged = true
	w.stats.RedeliveryWaits.Add(1)
	w.stats.WaitingForSeq.Store(int64(w.missing))
	w.log.Info("counting paused: the message after the watermark was delivered but not acknowledged "+
		"(most often to an instance that stopped mid-batch); JetStream redelivers it once its ack wait has passed",
		"watermark", w.wm, "waiting_for_seq", w.missing, "ack_wait", w.cfg.AckWait,
		"paused_for", time.Since(w.stuckSince).Round(time.Millisecond),
		"in_hand", fmt.Sprintf("%d..%d", items[0].seq, items[len(items)-1].seq))
}

// resumed ends a pause, if one is in progress, once a run was applied.
func (w *worker) resumed(last uint64) {
	if w.pauseLogged {
		w.log.Info("counting resumed", "paused_for", time.Since(w.stuckSince).Round(time.Millisecond), "watermark", last)
	}
	w.stuckSince, w.pauseLogged = time.Time{}, false
	w.stats.WaitingForSeq.Store(0)
}
