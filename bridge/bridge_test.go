package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

func TestBridgeAllEvents(t *testing.T) {
	e := newEnv(t)
	evs := events(t)
	e.produce(evs)
	cfg := e.config()
	cfg.MaxInFlight = 64
	r := start(t, cfg)
	js := jsFor(t, e.url)
	waitBridged(t, js, r, uint64(len(evs)))
	if err := r.halt(t); err != nil {
		t.Fatalf("Run returned %v after cancellation, want nil", err)
	}
	e.verify(js)

	st := r.b.Stats()
	if st.Read.Load() != int64(len(evs)) || st.Published.Load() != int64(len(evs)) ||
		st.Duplicates.Load() != 0 || st.Canaries.Load() != 0 || st.Invalid.Load() != 0 || st.KafkaLag.Load() != 0 {
		t.Errorf("stats read=%d published=%d duplicates=%d canaries=%d invalid=%d lag=%d",
			st.Read.Load(), st.Published.Load(), st.Duplicates.Load(), st.Canaries.Load(), st.Invalid.Load(), st.KafkaLag.Load())
	}
	var total int64
	for _, next := range r.b.LastOffsets() {
		total += next
	}
	if total != int64(len(evs)) {
		t.Errorf("offsets after the last bridged record sum to %d, want %d", total, len(evs))
	}

	// The stream as required.
	s, err := js.Stream(context.Background(), wire.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	c := s.CachedInfo().Config
	if !slices.Equal(c.Subjects, []string{wire.SubjectAll}) || c.Storage != jetstream.FileStorage ||
		c.Retention != jetstream.LimitsPolicy || c.Discard != jetstream.DiscardOld || !c.DenyDelete || !c.DenyPurge ||
		c.MaxAge != cfg.MaxAge || c.MaxBytes != cfg.MaxBytes || c.Duplicates != cfg.DuplicateWindow || c.Replicas != 1 {
		t.Errorf("stream config %+v", c)
	}
	if err := s.DeleteMsg(context.Background(), 1); err == nil {
		t.Error("deleting a message succeeded on a DenyDelete stream")
	}
	if err := s.Purge(context.Background()); err == nil {
		t.Error("purging succeeded on a DenyPurge stream")
	}
}

func TestExistingStreamLimitsUpdated(t *testing.T) {
	e := newEnv(t)
	js := jsFor(t, e.url)
	old := e.config().StreamConfig()
	old.MaxAge, old.Duplicates = time.Hour, time.Minute
	if _, err := js.CreateStream(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	foreignBefore := 1
	foreign(t, js, "0", "0") // a message the bridge must leave alone, written before it started
	evs := events(t)[:100]
	e.produce(evs)
	r := start(t, e.config())
	waitBridged(t, js, r, uint64(len(evs)+foreignBefore))
	if err := r.halt(t); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), wire.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	c := s.CachedInfo().Config
	if c.MaxAge != 168*time.Hour || c.Duplicates != 2*time.Minute || c.MaxBytes != 10<<30 {
		t.Errorf("limits not updated: age %s window %s bytes %d", c.MaxAge, c.Duplicates, c.MaxBytes)
	}
	if got := streamMsgs(js, wire.DefaultStream); got != uint64(len(evs)+foreignBefore) {
		t.Errorf("stream holds %d messages, want %d (recreated?)", got, len(evs)+foreignBefore)
	}
}

func TestRestartResumesWithoutDuplicates(t *testing.T) {
	for _, window := range []time.Duration{2 * time.Minute, time.Second} {
		t.Run(fmt.Sprintf("window=%s", window), func(t *testing.T) {
			e := newEnv(t)
			evs := events(t)
			cfg := e.config()
			cfg.DuplicateWindow = window
			cfg.MaxInFlight = 100
			js := jsFor(t, e.url)
			var pause time.Duration // past a tiny window
			if window < 10*time.Second {
				pause = window + 500*time.Millisecond
			}

			e.produce(evs[:1500])
			r1 := start(t, cfg)
			waitBridged(t, js, r1, 1500)
			if err := r1.halt(t); err != nil {
				t.Fatal(err)
			}
			time.Sleep(pause)

			e.produce(evs[1500:])
			r2 := start(t, cfg)
			waitBridged(t, js, r2, uint64(len(evs)))
			// And once more with nothing new: nothing may be added.
			if err := r2.halt(t); err != nil {
				t.Fatal(err)
			}
			time.Sleep(pause)
			r3 := start(t, cfg)
			overlap := e.overlap(cfg)
			waitFor(t, "the overlap to be read again", func() bool { return r3.b.Stats().Read.Load() >= overlap })
			waitBridged(t, js, r3, uint64(len(evs)))
			if err := r3.halt(t); err != nil {
				t.Fatal(err)
			}
			e.verify(js)

			if got := r2.b.Stats().Published.Load(); got != int64(len(evs)-1500) {
				t.Errorf("second run published %d, want %d", got, len(evs)-1500)
			}
			if got := r3.b.Stats().Published.Load(); got != 0 {
				t.Errorf("third run published %d, want 0", got)
			}
			if got := r3.b.Stats().AlreadyBridged.Load(); got != overlap {
				t.Errorf("third run skipped %d records already in the stream, want the %d of the overlap", got, overlap)
			}
			if r2.b.Stats().AlreadyBridged.Load() == 0 {
				t.Error("the resume overlap was not read again and skipped")
			}
		})
	}
}

// TestDuplicateRecordsStoredOnce runs with an ack for every publish and with
// acks for every 7th only, so that duplicates fall on publishes without an ack
// too (each then breaks the chain, and the recovery has to report it).
func TestDuplicateRecordsStoredOnce(t *testing.T) {
	for _, every := range []int{1, 7} {
		t.Run(fmt.Sprintf("ack every %d", every), func(t *testing.T) {
			duplicatesStoredOnce(t, every)
		})
	}
}

func duplicatesStoredOnce(t *testing.T, ackEvery int) {
	e := newEnv(t)
	evs := events(t)[:400]
	cfg := e.config()
	cfg.DuplicateWindow = time.Second
	cfg.MaxInFlight = 32
	cfg.AckEvery = ackEvery
	js := jsFor(t, e.url)

	// Every 8th event is produced again right away, and the last 30 again at the
	// end, so that a duplicate is the last record of its partition.
	var batch []sent
	for i, s := range evs {
		batch = append(batch, s)
		if i%8 == 0 {
			batch = append(batch, s)
		}
	}
	batch = append(batch, evs[len(evs)-30:]...)
	e.produce(batch)

	r := start(t, cfg)
	waitBridged(t, js, r, uint64(len(evs)))
	if err := r.halt(t); err != nil {
		t.Fatal(err)
	}
	st := r.b.Stats()
	if got := st.Duplicates.Load() + st.AlreadyBridged.Load(); got != int64(len(batch)-len(evs)) {
		t.Errorf("duplicates %d + already bridged %d, want %d", st.Duplicates.Load(), st.AlreadyBridged.Load(), len(batch)-len(evs))
	}
	if st.Published.Load() != int64(len(evs)) {
		t.Errorf("published %d, want %d", st.Published.Load(), len(evs))
	}

	// A restart long after the duplicate window must not store the trailing
	// duplicates either.
	time.Sleep(2 * time.Second)
	r2 := start(t, cfg)
	waitBridged(t, js, r2, uint64(len(evs)))
	if err := r2.halt(t); err != nil {
		t.Fatal(err)
	}
	if got := r2.b.Stats().Published.Load(); got != 0 {
		t.Errorf("restart published %d, want 0", got)
	}
	e.verify(js)
}

func TestForeignWriterFences(t *testing.T) {
	e := newEnv(t)
	evs := events(t)
	js := jsFor(t, e.url)
	e.produce(evs[:500])
	r := start(t, e.config())
	waitBridged(t, js, r, 500)

	foreign(t, js, "9", "99")
	e.produce(evs[500:600])
	var err error
	select {
	case err = <-r.done:
	case <-time.After(60 * time.Second):
		t.Fatal("the bridge kept running after another writer appended to the stream")
	}
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("Run returned %v, want ErrFenced", err)
	}
	want := "another bridge is writing to stream WIKIMEDIA (expected last sequence 500, found 501 from partition 9 offset 99); refusing to continue"
	if err.Error() != want {
		t.Errorf("error\n got %q\nwant %q", err, want)
	}
	if got := streamMsgs(js, wire.DefaultStream); got != 501 {
		t.Errorf("stream holds %d messages after fencing, want 501", got)
	}
}

func TestTwoBridgesNeverDuplicateNorLose(t *testing.T) {
	e := newEnv(t)
	evs := events(t)
	js := jsFor(t, e.url)
	cfg := e.config()
	cfg.MaxInFlight = 16

	e.produce(evs[:1000])
	a := start(t, cfg)
	waitBridged(t, js, a, 1000)
	b := start(t, cfg)
	waitFor(t, "the second bridge to recover its position", func() bool { return len(b.b.LastOffsets()) == 3 })

	// Both read the new records; at most one of them may keep writing.
	var fenced []error
	next := 1000
	for ; next < len(evs) && len(fenced) == 0; next += 100 {
		e.produce(evs[next:min(next+100, len(evs))])
		time.Sleep(20 * time.Millisecond)
		for _, r := range []*running{a, b} {
			select {
			case err := <-r.done:
				r.done <- err
				fenced = append(fenced, err)
			default:
			}
		}
	}
	waitFor(t, "a bridge to be fenced", func() bool {
		return len(a.done) > 0 || len(b.done) > 0
	})
	errA, errB := a.halt(t), b.halt(t)
	if !errors.Is(errA, ErrFenced) && !errors.Is(errB, ErrFenced) {
		t.Fatalf("neither bridge was fenced: %v, %v", errA, errB)
	}
	for _, err := range []error{errA, errB} {
		if err != nil && !errors.Is(err, ErrFenced) {
			t.Errorf("unexpected error %v", err)
		}
	}
	t.Logf("first: %v; second: %v", errA, errB)

	// Whatever was written, a fresh bridge completes the stream without a
	// duplicate or a gap.
	if next < len(evs) {
		e.produce(evs[next:])
	}
	c := start(t, cfg)
	waitBridged(t, js, c, uint64(len(evs)))
	if err := c.halt(t); err != nil {
		t.Fatal(err)
	}
	e.verify(js)
}

func TestNATSRestart(t *testing.T) {
	addr := testenv.KafkaAddr(t)
	port := testenv.FreePort(t)
	dir := t.TempDir()
	url, srv := testenv.NATSAt(t, port, dir)
	e := &env{t: t, addr: addr, topic: testenv.Topic(t, addr, 3), url: url, sent: map[string]sent{}}
	evs := events(t)
	cfg := e.config()
	cfg.MaxInFlight = 32
	js := jsFor(t, e.url)

	e.produce(evs[:800])
	r := start(t, cfg)
	waitBridged(t, js, r, 800)

	// Down while idle, records arrive meanwhile.
	srv.Shutdown()
	srv.WaitForShutdown()
	e.produce(evs[800:1600])
	time.Sleep(1500 * time.Millisecond)
	_, srv = testenv.NATSAt(t, port, dir)
	waitBridged(t, js, r, 1600)

	// Down while publishing: with four times the recording to publish, the
	// outage comes well before the end.
	more := append(evs[1600:], copies(evs, 3)...)
	e.produce(more)
	waitFor(t, "publishing to resume", func() bool { return streamMsgs(js, wire.DefaultStream) > 1600 })
	before := streamMsgs(js, wire.DefaultStream)
	srv.Shutdown()
	srv.WaitForShutdown()
	time.Sleep(500 * time.Millisecond)
	testenv.NATSAt(t, port, dir)
	total := uint64(1600 + len(more))
	waitBridged(t, js, r, total)
	if err := r.halt(t); err != nil {
		t.Fatal(err)
	}
	e.verify(js)
	// The outage must have come while publishing. The bridge then either
	// resynchronised (the chain broke) or carried on (the client's reconnect
	// buffer delivered the publishes without an ack in order, and the chain held):
	// the stream's contents, verified above, are what counts.
	if before >= total {
		t.Errorf("the outage came after the end: the stream held all %d messages before it", before)
	}
	t.Logf("outage at %d of %d messages: %d resyncs, %d pipeline restarts",
		before, total, r.b.Stats().Resyncs.Load(), r.b.Stats().Restarts.Load())
}

func TestRunWithoutTopicRetries(t *testing.T) {
	cfg := missingTopicConfig(t)
	r := start(t, cfg)
	waitFor(t, "a pipeline restart", func() bool { return r.b.Stats().Restarts.Load() > 0 })
	if lag := r.b.Stats().KafkaLag.Load(); lag != LagUnknown {
		t.Errorf("lag %d while the pipeline cannot start, want %d (unknown): 0 would read as caught up", lag, LagUnknown)
	}
	if err := r.halt(t); err != nil {
		t.Fatalf("Run returned %v on cancellation, want nil", err)
	}
}

// TestLagUnknownWhileStopped checks that the lag reads unknown again once the
// pipeline stops, after it was known.
func TestLagUnknownWhileStopped(t *testing.T) {
	b, err := New(DefaultConfig(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	st := &partState{}
	st.hwm.Store(10)
	st.next.Store(4)
	b.setParts(map[int]*partState{0: st})
	if lag := b.Stats().KafkaLag.Load(); lag != 6 {
		t.Fatalf("lag %d with a partition 6 records behind, want 6", lag)
	}
	b.setParts(nil)
	if lag := b.Stats().KafkaLag.Load(); lag != LagUnknown {
		t.Fatalf("lag %d with the pipeline stopped, want %d", lag, LagUnknown)
	}
}
