package aggregate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/retry"
)

// A stream that loses its tail (nats-server acknowledges writes before they are on
// disk, so an OS crash can take its last messages) gives the lost sequences again
// to new messages. A watermark counts sequences, so the aggregate would take those
// new messages for ones it applied already and skip them: events lost silently.
//
// The stage therefore checks, at every setup (and a reconnect to NATS always
// leads to one before any message is trusted), that the stream still holds what
// the watermark says was counted:
//
//   - the watermark must not be above the stream's last sequence;
//   - the last message applied, recorded after each apply in the hash
//     <namespace prefix>stamps as consumer -> "<sequence>:<stored Unix ns>", must
//     still be in the stream with the time the stream stored it then (a reused
//     sequence carries a later time).
//
// When either check fails, counting stops (nothing is applied or acked), the error
// is logged once with what to do, Stats.StreamTailLost is 1, Ready fails, and the
// refusal is recorded in the same hash (consumer|refused) so that a restarted
// instance refuses too. It ends when the namespace or the watermark changes: a
// rebuild (`wikiflow rebuild --force`) counts what the stream holds into a fresh
// namespace and switches to it.

// ErrTailLost is matched by errors.Is on a *TailLostError.
var ErrTailLost = errors.New("the stream lost messages that were already counted")

// TailLostError says that the stream no longer holds messages the projection has
// counted, so that counting on would skip new messages as already applied.
type TailLostError struct {
	// Stream, Namespace and Consumer say whose watermark it is.
	Stream, Namespace, Consumer string
	// Watermark is the consumer's last applied sequence; LastSeq the stream's
	// last sequence when it was checked.
	Watermark, LastSeq uint64
	// Reused is the sequence that now holds another message than the one counted
	// (0 when the watermark is simply above the stream's end); Counted and Found
	// are the times the stream stored the counted message and the one it holds.
	Reused         uint64
	Counted, Found time.Time
	// Earlier is the reason recorded when counting was stopped at this watermark
	// before (by this or another instance); "" for a new finding.
	Earlier string
}

// Detail says what was found, without the repair.
func (e *TailLostError) Detail() string {
	switch {
	case e.Earlier != "":
		return e.Earlier
	case e.Reused != 0:
		return fmt.Sprintf("stream %s holds at sequence %d a message stored at %s, not the one counted there (stored at %s): "+
			"the stream lost messages that were counted (watermark %d of consumer %s in namespace %s) and gave their sequences to new messages",
			e.Stream, e.Reused, e.Found.UTC().Format(time.RFC3339Nano), e.Counted.UTC().Format(time.RFC3339Nano),
			e.Watermark, e.Consumer, e.Namespace)
	}
	return fmt.Sprintf("stream %s ends at sequence %d, below the watermark %d of consumer %s in namespace %s: "+
		"the stream lost messages that were counted, and new messages will reuse sequences %d..%d",
		e.Stream, e.LastSeq, e.Watermark, e.Consumer, e.Namespace, e.LastSeq+1, e.Watermark)
}

// Repair says what to do.
func (e *TailLostError) Repair() string {
	return fmt.Sprintf("counting is stopped rather than skipping new messages as already counted; once the stream holds sequence %d again "+
		"(the bridge copies the lost events again from Kafka), run `wikiflow rebuild --force` to count what the stream holds into a new namespace; "+
		"counting resumes by itself there", e.Watermark)
}

// Error implements error.
func (e *TailLostError) Error() string { return e.Detail() + "; " + e.Repair() }

// Is makes errors.Is(err, ErrTailLost) true.
func (e *TailLostError) Is(target error) bool { return target == ErrTailLost }

// Summary is the short form Ready and Degraded give.
func (e *TailLostError) Summary() string {
	return fmt.Sprintf("stream %s lost messages already counted (watermark %d, stream last sequence %d); counting stopped: run `wikiflow rebuild --force`",
		e.Stream, e.Watermark, e.LastSeq)
}

// refusePoll is how often a stopped stage looks for a new namespace or watermark.
const refusePoll = 2 * time.Second

// refusedSuffix names the field of the stamps hash recording a refusal.
const refusedSuffix = "|refused"

// stamp identifies an applied message: its stream sequence and the time the
// stream stored it (Unix ns).
type stamp struct {
	seq    uint64
	stored int64
}

// position is what Redis holds for this consumer.
type position struct {
	ns      string
	wm      uint64
	last    stamp  // the last applied message recorded (zero: none)
	refused string // why counting was stopped at wm before ("": it was not)
}

// stampsKey is the hash of the namespace's stamps and refusals.
func (w *worker) stampsKey(ns string) string {
	return w.store.Keys(ns).Prefix() + "stamps"
}

// position reads the namespace, the watermark and the tail-loss records.
func (w *worker) position(ctx context.Context) (position, error) {
	var p position
	var err error
	if p.ns, err = w.store.Current(ctx); err != nil {
		return p, err
	}
	if p.wm, err = w.store.Watermark(ctx, p.ns, w.cfg.Consumer); err != nil {
		return p, err
	}
	vals, err := w.rdb.HMGet(ctx, w.stampsKey(p.ns), w.cfg.Consumer, w.cfg.Consumer+refusedSuffix).Result()
	if err != nil {
		return p, fmt.Errorf("read the stamps of %s in %s: %w", w.cfg.Consumer, p.ns, err)
	}
	if s, ok := vals[0].(string); ok {
		seq, stored, _ := strings.Cut(s, ":")
		p.last.seq, _ = strconv.ParseUint(seq, 10, 64)
		p.last.stored, _ = strconv.ParseInt(stored, 10, 64)
	}
	if s, ok := vals[1].(string); ok {
		if at, why, _ := strings.Cut(s, " "); at == strconv.FormatUint(p.wm, 10) {
			p.refused = why
		}
	}
	return p, nil
}

// checkTail returns a *TailLostError when the stream no longer holds what p says
// was counted.
func (w *worker) checkTail(ctx context.Context, stream jetstream.Stream, p position) error {
	name := stream.CachedInfo().Config.Name
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s info: %w", name, err)
	}
	st := info.State
	w.stats.StreamLastSeq.Store(int64(st.LastSeq))
	lost := &TailLostError{Stream: name, Namespace: p.ns, Consumer: w.cfg.Consumer, Watermark: p.wm, LastSeq: st.LastSeq, Earlier: p.refused}
	switch {
	case p.refused != "" || p.wm > st.LastSeq:
		return lost
	case p.last.seq == 0 || p.last.seq < st.FirstSeq || p.last.seq > st.LastSeq:
		return nil // nothing recorded, or retention dropped it
	}
	raw, err := stream.GetMsg(ctx, p.last.seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: get message %d: %w", name, p.last.seq, err)
	}
	if raw.Time.UnixNano() != p.last.stored {
		lost.Reused, lost.Counted, lost.Found = p.last.seq, time.Unix(0, p.last.stored), raw.Time
		return lost
	}
	return nil
}

// writeStamp records it as the last message applied; a failure only weakens the
// next check (it then looks at an earlier message).
func (w *worker) writeStamp(ctx context.Context, it item) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	defer cancel()
	v := strconv.FormatUint(it.seq, 10) + ":" + strconv.FormatInt(it.stored, 10)
	if err := w.rdb.HSet(sctx, w.stampsKey(w.ns), w.cfg.Consumer, v).Err(); err != nil {
		w.failed("redis stamp", fmt.Errorf("redis %s: record the last applied message: %w", w.redisAddr, err))
		return
	}
	w.healthy("redis stamp")
}

// refuse stops counting after lost: it logs why and what to do, records the
// refusal, and waits until the namespace or the watermark changes (a rebuild
// switched) or ctx ends.
func (w *worker) refuse(ctx context.Context, lost *TailLostError) {
	w.stats.StreamTailLost.Store(1)
	w.tailLost.Store(lost)
	defer func() {
		w.stats.StreamTailLost.Store(0)
		w.tailLost.Store(nil)
	}()
	w.log.Error("counting stopped: "+ErrTailLost.Error(), "stream", lost.Stream, "namespace", lost.Namespace,
		"consumer", lost.Consumer, "watermark", lost.Watermark, "stream_last_seq", lost.LastSeq,
		"found", lost.Detail(), "repair", lost.Repair())
	if lost.Earlier == "" {
		rctx, cancel := context.WithTimeout(ctx, opTimeout)
		v := strconv.FormatUint(lost.Watermark, 10) + " " + lost.Detail()
		if err := w.rdb.HSet(rctx, w.stampsKey(lost.Namespace), w.cfg.Consumer+refusedSuffix, v).Err(); err != nil {
			w.log.Warn("could not record the refusal in Redis; a restarted instance checks the stream again", "err", err)
		}
		cancel()
	}
	for retry.Sleep(ctx, refusePoll) {
		pctx, cancel := context.WithTimeout(ctx, opTimeout)
		ns, err := w.store.Current(pctx)
		var wm uint64
		if err == nil {
			wm, err = w.store.Watermark(pctx, ns, w.cfg.Consumer)
		}
		cancel()
		if err != nil {
			continue // Redis unavailable: keep waiting
		}
		if ns != lost.Namespace || wm != lost.Watermark {
			w.log.Info("the projection changed; checking the stream again", "namespace", ns, "watermark", wm)
			return
		}
	}
}
