package aggregate

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// fetchN publishes n messages and fetches them with a fresh durable consumer.
func fetchN(t *testing.T, e *env, nc *nats.Conn, name string, n int) (jetstream.Consumer, []jetstream.Msg) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if _, err := e.js.Publish(ctx, wire.SubjectPrefix+".enwiki.edit", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := e.js.Stream(ctx, wire.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: name, AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != n {
		t.Fatalf("fetched %d messages, want %d", len(msgs), n)
	}
	return cons, msgs
}

// ackerWith returns an acker on a connection of its own, closed when the test
// ends, and n messages fetched from a new durable consumer for it to ack.
func ackerWith(t *testing.T, e *env, durable string, n int) (*acker, jetstream.Consumer, []jetstream.Msg) {
	t.Helper()
	nc := testenv.Connect(t, e.url)
	a, err := newAcker(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	cons, msgs := fetchN(t, e, nc, durable, n)
	return a, cons, msgs
}

func TestAckerConfirmsEveryAck(t *testing.T) {
	e := newEnv(t)
	a, cons, msgs := ackerWith(t, e, "acker", 300)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Rounds one after the other, as the worker runs them; each counts only its
	// own answers.
	r1 := a.start(msgs[:100])
	if n, err := a.wait(ctx, r1); n != 0 || err != nil {
		t.Fatalf("first round: %d not confirmed, %v", n, err)
	}
	r2 := a.start(msgs[100:])
	if n, err := a.wait(ctx, r2); n != 0 || err != nil {
		t.Fatalf("second round: %d not confirmed, %v", n, err)
	}
	if n, err := a.wait(ctx, a.start(nil)); n != 0 || err != nil {
		t.Fatalf("empty round: %d, %v", n, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Confirmed means processed: nothing is pending any more.
	if info.NumAckPending != 0 || info.AckFloor.Stream != 300 {
		t.Errorf("after the rounds: %d pending, ack floor %d; want 0, 300", info.NumAckPending, info.AckFloor.Stream)
	}
}

func TestAckerReportsRefusedAcks(t *testing.T) {
	e := newEnv(t)
	a, _, msgs := ackerWith(t, e, "gone", 20)
	// The consumer disappears (as in a recovery by another instance): nobody
	// answers the acks but the server's "no responders" status.
	if err := e.js.DeleteConsumer(context.Background(), wire.DefaultStream, "gone"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	n, err := a.wait(ctx, a.start(msgs))
	if n != len(msgs) || err == nil {
		t.Errorf("acks of a deleted consumer: %d not confirmed, %v; want %d and an error", n, err, len(msgs))
	}
}
