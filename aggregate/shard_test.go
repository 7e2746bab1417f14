package aggregate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/projection/projectiontest"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// partitionOf is JetStream's {{partition(n,1)}} of a subject's wiki token.
func partitionOf(subject string, n int) int {
	wiki := strings.Split(subject, ".")[2]
	h := fnv.New32a()
	h.Write([]byte(wiki))
	return int(h.Sum32() % uint32(n))
}

// lastOfShard is the last published sequence of shard k of n (0: none).
func (e *env) lastOfShard(k, n int) uint64 {
	var last uint64
	for _, p := range e.pubs {
		if partitionOf(p.subject, n) == k {
			last = p.seq
		}
	}
	return last
}

// waitShards waits until the watermark of every shard of base, as the store of
// that shard reads it, reaches the shard's last published sequence.
func (e *env) waitShards(t *testing.T, base, consumer string, n int) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for k := range n {
		st := projection.NewShardStore(e.rdb, base, k, n)
		want := e.lastOfShard(k, n)
		for {
			w, err := st.Watermark(ctx, projection.DefaultNamespace, ShardConsumer(consumer, k, n))
			if err != nil {
				t.Fatal(err)
			}
			if w == want {
				break
			}
			if w > want || time.Now().After(deadline) {
				t.Fatalf("shard %d/%d: watermark %d, want %d", k, n, w, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// sameView checks that the sharded projection under base reads as the
// unsharded one of e does, and returns the unsharded view.
func (e *env) sameView(t *testing.T, base string) map[string]any {
	t.Helper()
	want := projectiontest.View(t, projection.NewReader(e.rdb, e.base))
	got := projectiontest.View(t, projection.NewReader(e.rdb, base))
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s:\n got %v\nwant %v", k, got[k], v)
		}
	}
	return want
}

func TestThreeShardsCountLikeOne(t *testing.T) {
	e := newEnv(t)
	e.publishRecorded(t)
	_, last := e.expect(all)
	sharded := testenv.Prefix(t, e.rdb)
	const n = 3
	runs := []*running{start(newAggregate(t, e.config("aggregate", wire.SubjectAll, 500)))}
	for k := range n {
		cfg := e.config("aggregate", wire.SubjectAll, 300)
		cfg.Base, cfg.Shard = sharded, fmt.Sprintf("%d/%d", k, n)
		runs = append(runs, start(newAggregate(t, cfg)))
	}
	e.waitWatermark(t, "aggregate", last)
	e.waitShards(t, sharded, "aggregate", n)
	e.publishAgain(t, 300, "again", map[string]int64{})
	_, last = e.expectAll(t)
	e.waitWatermark(t, "aggregate", last)
	e.waitShards(t, sharded, "aggregate", n)
	for _, r := range runs {
		r.stop(t)
	}
	want := e.sameView(t, sharded)
	ctx := context.Background()
	var sum int64
	for k := range n {
		m, err := projection.NewShardStore(e.rdb, sharded, k, n).Meta(ctx, projection.DefaultNamespace)
		if err != nil || m.Events == 0 {
			t.Fatalf("shard %d counted %d events, %v", k, m.Events, err)
		}
		sum += m.Events
	}
	if w := want["events"].(int64); sum != w || w < 2000 {
		t.Errorf("the shards counted %d events, one instance %d", sum, w)
	}
	for k := range n {
		c, err := e.js.Consumer(ctx, MirrorName(wire.DefaultStream, n), ShardConsumer("aggregate", k, n))
		if err != nil {
			t.Fatal(err)
		}
		if f := c.CachedInfo().Config.FilterSubject; f != ShardFilter(k) {
			t.Errorf("shard %d consumer filter %q", k, f)
		}
	}
	if got, err := e.rdb.Get(ctx, projection.New(sharded, "").ShardCount()).Result(); err != nil || got != "3" {
		t.Errorf("shard count %q, %v", got, err)
	}
	if n, err := e.rdb.Exists(ctx, projection.New(e.base, "").ShardCount()).Result(); err != nil || n != 0 {
		t.Errorf("the unsharded aggregate wrote a shard count (%d, %v): the layout of one shard must stay as it was", n, err)
	}
}

// expectAll records the messages published by publishAgain, which e.pubs does
// not hold, by reading the stream's subjects back, and returns the last sequence.
func (e *env) expectAll(t *testing.T) (int, uint64) {
	t.Helper()
	ctx := context.Background()
	s, err := e.js.Stream(ctx, wire.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	from := e.pubs[len(e.pubs)-1].seq + 1
	for seq := from; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		e.pubs = append(e.pubs, published{seq: seq, subject: m.Subject})
	}
	return len(e.pubs), info.State.LastSeq
}

func TestShardConfig(t *testing.T) {
	for in, ok := range map[string]bool{"0/1": true, "2/3": true, "3/3": false, "-1/2": false, "1": false, "a/b": false, "0/0": false, "0/257": false} {
		if _, _, err := ParseShard(in); (err == nil) != ok {
			t.Errorf("ParseShard(%q): %v", in, err)
		}
	}
	c := DefaultConfig()
	c.Shard, c.FilterSubject = "1/2", wire.SubjectPrefix+".enwiki.>"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "filter-subject") {
		t.Errorf("a filter with shards: %v", err)
	}
	a, err := New(func() Config { c := DefaultConfig(); c.Shard = "1/4"; return c }(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if a.cfg.Stream != "WIKIMEDIA_S4" || a.cfg.Consumer != "aggregate-s1" || a.cfg.FilterSubject != "wikimedia.shard.1.>" {
		t.Errorf("shard 1/4 consumes %s/%s filtered by %s", a.cfg.Stream, a.cfg.Consumer, a.cfg.FilterSubject)
	}
	one, err := New(DefaultConfig(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if one.cfg.Stream != wire.DefaultStream || one.cfg.Consumer != DefaultConsumer || one.cfg.FilterSubject != wire.SubjectAll {
		t.Errorf("unsharded consumes %s/%s filtered by %s", one.cfg.Stream, one.cfg.Consumer, one.cfg.FilterSubject)
	}
}

// TestShardsShareAndCrash runs shard 0 as two instances sharing its consumer
// (so that its runs are split between them and meet CAS conflicts over
// non-contiguous sequences), crashes shard 1 after its second apply before the
// ack (its applied messages must be skipped when they come back, or be covered by
// the restarted shard's first cumulative ack), then restarts it, and
// compares the result with one unsharded aggregate.
func TestShardsShareAndCrash(t *testing.T) {
	e := newEnv(t)
	e.publishRecorded(t)
	_, last := e.expect(all)
	sharded := testenv.Prefix(t, e.rdb)
	const n = 3
	shard := func(k, batch int) *Aggregate {
		cfg := e.config("aggregate", wire.SubjectAll, batch)
		cfg.Base, cfg.Shard = sharded, fmt.Sprintf("%d/%d", k, n)
		return newAggregate(t, cfg)
	}
	crash := shard(1, 100)
	applies := 0
	crash.afterApply = func(uint64) error {
		if applies++; applies == 2 {
			return errors.New("simulated crash")
		}
		return nil
	}
	if err := crash.Run(context.Background()); !errors.Is(err, errHook) {
		t.Fatalf("Run = %v, want the hook's error", err)
	}
	wm, err := projection.NewShardStore(e.rdb, sharded, 1, n).Watermark(context.Background(), projection.DefaultNamespace, ShardConsumer("aggregate", 1, n))
	if err != nil {
		t.Fatal(err)
	}
	appliedNotAcked(t, e.js, MirrorName(wire.DefaultStream, n), ShardConsumer("aggregate", 1, n), wm)
	s0a, s0b, s1 := shard(0, 50), shard(0, 70), shard(1, 100)
	runs := []*running{
		start(newAggregate(t, e.config("aggregate", wire.SubjectAll, 500))),
		start(s0a), start(s0b), start(s1), start(shard(2, 300)),
	}
	e.waitWatermark(t, "aggregate", last)
	e.waitShards(t, sharded, "aggregate", n)
	e.waitShardAcked(t, 1, n)
	for _, r := range runs {
		r.stop(t)
	}
	e.sameView(t, sharded)
	t.Logf("shard 0 instances applied %d and %d events (%d CAS conflicts); the restarted shard 1 skipped %d",
		s0a.Stats().Applied.Load(), s0b.Stats().Applied.Load(),
		s0a.Stats().CASConflicts.Load()+s0b.Stats().CASConflicts.Load(), s1.Stats().Duplicates.Load())
}

// waitShardAcked waits until shard k's consumer has every message of its shard
// acked (the redeliveries after a crash included).
func (e *env) waitShardAcked(t *testing.T, k, n int) {
	t.Helper()
	ctx := context.Background()
	want := e.lastOfShard(k, n)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := e.js.Consumer(ctx, MirrorName(wire.DefaultStream, n), ShardConsumer("aggregate", k, n))
		if err != nil {
			t.Fatal(err)
		}
		info := c.CachedInfo()
		if info.AckFloor.Stream == want && info.NumAckPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("shard %d: ack floor %d, %d pending; want %d, 0", k, info.AckFloor.Stream, info.NumAckPending, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestShardRestartBehindItsAckFloor restarts a shard whose consumer's ack floor
// is past the shard's last message with nothing pending, as JetStream leaves a
// filtered consumer that went on past other shards' messages (seen in the
// cluster chaos run): a watermark below that floor is no sign that Redis lost
// applies, and the restarted shard must neither replay nor count anything again.
// The consumer is put in that state by creating it again from the stream's end.
func TestShardRestartBehindItsAckFloor(t *testing.T) {
	e := newEnv(t)
	e.publishRecorded(t)
	sharded := testenv.Prefix(t, e.rdb)
	const n = 3
	shard := func(k int) *Aggregate {
		cfg := e.config("aggregate", wire.SubjectAll, 300)
		cfg.Base, cfg.Shard = sharded, fmt.Sprintf("%d/%d", k, n)
		return newAggregate(t, cfg)
	}
	var runs []*running
	for k := range n {
		runs = append(runs, start(shard(k)))
	}
	e.waitShards(t, sharded, "aggregate", n)
	for _, r := range runs {
		r.stop(t)
	}
	_, last := e.expect(all)
	k := 0
	for k < n-1 && e.lastOfShard(k, n) == last {
		k++
	}
	ctx := context.Background()
	mirror, err := e.js.Stream(ctx, MirrorName(wire.DefaultStream, n))
	if err != nil {
		t.Fatal(err)
	}
	name := ShardConsumer("aggregate", k, n)
	c, err := mirror.Consumer(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	cc := c.CachedInfo().Config
	if err := mirror.DeleteConsumer(ctx, name); err != nil {
		t.Fatal(err)
	}
	cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, last+1
	if c, err = mirror.CreateConsumer(ctx, cc); err != nil {
		t.Fatal(err)
	}
	if f := c.CachedInfo().AckFloor.Stream; f <= e.lastOfShard(k, n) {
		t.Fatalf("shard %d: ack floor %d, not past its last message %d", k, f, e.lastOfShard(k, n))
	}
	again := shard(k)
	r := start(again)
	time.Sleep(2 * time.Second)
	r.stop(t)
	if got := again.Stats().Recoveries.Load(); got != 0 {
		t.Errorf("the restarted shard %d replayed %d times: it took an ack floor past its last message for lost applies", k, got)
	}
	if got := again.Stats().Applied.Load(); got != 0 {
		t.Errorf("the restarted shard %d applied %d events again", k, got)
	}
}
