package aggregate

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// TestUpgradesAnExplicitAckConsumer starts the aggregate on a durable consumer
// left by a version with explicit acks: applied and acked up to W, with the next
// messages delivered to an instance that died holding them under a long AckWait.
// JetStream cannot change a consumer's ack policy, so the aggregate must recreate
// the consumer with cumulative acks right after W, count the rest exactly once,
// and keep that consumer on the next start.
func TestUpgradesAnExplicitAckConsumer(t *testing.T) {
	e := newEnv(t)
	e.publishRecorded(t)
	want, last := e.expect(all)
	ctx := context.Background()

	// The old version applied the first 450 messages and acked them one by one.
	d := projection.NewDelta()
	for _, p := range e.pubs[:450] {
		if p.ev != nil {
			d.Add(p.ev)
		}
	}
	wm := e.pubs[449].seq
	if res, err := e.store.Apply(ctx, projection.DefaultNamespace, "aggregate", 0, wm, d); err != nil || res.Status != projection.Applied {
		t.Fatalf("apply: %+v %v", res, err)
	}
	cfg := e.config("aggregate", wire.SubjectAll, 300)
	old := (&worker{Aggregate: newAggregate(t, cfg)}).consumerConfig()
	old.AckPolicy, old.AckWait = jetstream.AckExplicitPolicy, time.Hour
	st, err := e.js.Stream(ctx, wire.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(600, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		if n++; n <= 450 {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n != 600 {
		t.Fatalf("the old instance fetched %d messages, want 600", n)
	}

	a := newAggregate(t, cfg)
	r := start(a)
	e.waitWatermark(t, "aggregate", last)
	e.waitAcked(t, "aggregate", last)
	r.stop(t)
	e.checkCounts(t, want, true)
	info := consumerInfo(t, e, "aggregate")
	if info.Config.AckPolicy != jetstream.AckAllPolicy {
		t.Fatalf("ack policy after the upgrade: %v, want all", info.Config.AckPolicy)
	}

	// The next start keeps the consumer it created.
	r = start(newAggregate(t, cfg))
	last = e.publishAgain(t, 5, "after-upgrade", want)
	e.waitWatermark(t, "aggregate", last)
	r.stop(t)
	e.checkCounts(t, want, true)
	if again := consumerInfo(t, e, "aggregate"); !again.Created.Equal(info.Created) {
		t.Errorf("the consumer was created again on a restart (%v, before %v)", again.Created, info.Created)
	}
}

func consumerInfo(t *testing.T, e *env, name string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := e.js.Consumer(context.Background(), wire.DefaultStream, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// appliedNotAcked fails the test unless the consumer's ack floor is below the
// watermark wm: a crash left messages applied but not acknowledged, which the
// next instance must skip when they come back, or cover with its first
// cumulative ack.
func appliedNotAcked(t *testing.T, js jetstream.JetStream, stream, consumer string, wm uint64) {
	t.Helper()
	c, err := js.Consumer(context.Background(), stream, consumer)
	if err != nil {
		t.Fatal(err)
	}
	if floor := c.CachedInfo().AckFloor.Stream; floor >= wm || wm == 0 {
		t.Fatalf("after the crash: ack floor %d, watermark %d; want a floor below a watermark: the crash proved nothing", floor, wm)
	}
}

func TestAckTargetStrandsNoHeldDelivery(t *testing.T) {
	msgs := make([]jetstream.Msg, 6)
	for i := range msgs {
		msgs[i] = &stubMsg{id: i}
	}
	it := func(i int, seq, cseq uint64) item { return item{m: msgs[i], seq: seq, cseq: cseq} }
	in := []item{it(0, 1, 1), it(1, 2, 2), it(2, 3, 3)}
	if got := ackTarget(in, []item{it(3, 4, 4)}); got != msgs[2] {
		t.Error("in order: the last applied message is not the one acked")
	}
	if got := ackTarget(in, nil); got != msgs[2] {
		t.Error("nothing held: the last applied message is not the one acked")
	}
	// Sequence 1 came back after 2, 3 and the held 4 were delivered: acking it
	// (delivery 9) would make the server ignore the ack and nak of delivery 5.
	late := []item{it(0, 1, 9), it(1, 2, 2), it(2, 3, 3)}
	if got := ackTarget(late, []item{it(3, 4, 5)}); got != msgs[2] {
		t.Error("a redelivered first message: sequence 3 (delivery 3) should be acked")
	}
	if got := ackTarget(late[:1], []item{it(3, 4, 5)}); got != nil {
		t.Error("only a late delivery applied: nothing should be acked")
	}
}

// stubMsg stands for a delivered message where only its identity matters.
type stubMsg struct {
	jetstream.Msg
	id int
}
