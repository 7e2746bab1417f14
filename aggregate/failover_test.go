package aggregate

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/testenv"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// slotNodes returns the master and a replica of the Redis Cluster slot of key.
func slotNodes(t *testing.T, ctx context.Context, cc *redis.ClusterClient, key string) (master, replica string) {
	t.Helper()
	slot, err := cc.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Replicas show up in the slot map a moment after the cluster is formed.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ranges, err := cc.ClusterSlots(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ranges {
			if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 1 {
				return r.Nodes[0].Addr, r.Nodes[1].Addr
			}
		}
	}
	t.Fatalf("no master with a replica serves slot %d", slot)
	return "", ""
}

// nodePID returns the process id a Redis node reports.
func nodePID(t *testing.T, ctx context.Context, addr string) int {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("%s reports no process_id", addr)
	return 0
}

// takeOver makes replica the master of its slots without its old master and
// waits until it says so.
func takeOver(t *testing.T, ctx context.Context, replica string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: replica})
	defer c.Close()
	if err := c.Do(ctx, "CLUSTER", "FAILOVER", "TAKEOVER").Err(); err != nil {
		t.Fatalf("CLUSTER FAILOVER TAKEOVER on %s: %v", replica, err)
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if role, err := c.Do(ctx, "ROLE").Slice(); err == nil && len(role) > 0 && role[0] == "master" {
			return
		}
	}
	t.Fatalf("%s did not become master", replica)
}

// TestRedisFailoverLosingTheLastApplies counts into a Redis Cluster of 3 masters
// and 3 replicas, then freezes the replica of the projection's master (SIGSTOP)
// while more events are applied and acknowledged, kills the master (SIGKILL) and
// promotes the replica, which never got those applies. The running aggregate
// must notice the watermark behind the consumer's ack floor and count the lost
// range again: at the end every domain holds exactly its events.
func TestRedisFailoverLosingTheLastApplies(t *testing.T) {
	nodes := strings.Split(testenv.RedisCluster(t), ",")
	var addrs []string
	for _, n := range nodes {
		u, err := url.Parse(n)
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, u.Host)
	}
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ClusterStateReloadInterval: brokers.ClusterReload})
	t.Cleanup(func() { cc.Close() })
	natsURL, _ := testenv.NATS(t)
	js := newJS(t, natsURL)
	createStream(t, js)
	base := fmt.Sprintf("failover%d", time.Now().UnixNano())
	e := &env{url: natsURL, redis: strings.Join(nodes, ","), js: js, base: base, store: projection.NewStore(cc, base)}

	e.publishRecorded(t)
	want, last := e.expect(all)
	cfg := e.config("aggregate", wire.SubjectAll, 500)
	a := newAggregate(t, cfg)
	r := start(a)
	defer r.stop(t)
	e.waitWatermark(t, "aggregate", last)

	master, replica := slotNodes(t, ctx, cc, "{"+base+"}")
	mpid, rpid := nodePID(t, ctx, master), nodePID(t, ctx, replica)
	if err := syscall.Kill(rpid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = syscall.Kill(rpid, syscall.SIGCONT)
		}
	}()
	// Cut the replication link too: what the master sent before stays in the
	// frozen replica's socket buffer, what it writes from now on never leaves it.
	mc := redis.NewClient(&redis.Options{Addr: master})
	if err := mc.Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
		t.Fatalf("cut the replica's link: %v", err)
	}
	mc.Close()
	lost := e.publishAgain(t, 800, "lost", want)
	e.waitWatermark(t, "aggregate", lost)
	e.waitAcked(t, "aggregate", lost)
	if err := syscall.Kill(mpid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(rpid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	takeOver(t, ctx, replica)
	// A new client reads the slot map as it is after the failover.
	after := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { after.Close() })
	e.store = projection.NewStore(after, base)
	var w uint64
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if w, err = e.store.Watermark(ctx, projection.DefaultNamespace, "aggregate"); err == nil {
			break
		}
	}
	if err != nil || w >= lost {
		t.Fatalf("after the failover the watermark is %d (%v), want one below %d: the replica was not behind", w, err, lost)
	}
	t.Logf("the failover lost the applies after sequence %d of %d", w, lost)

	// With nothing new to apply the idle aggregate must find the watermark
	// behind by itself and count the lost range again.
	e.waitWatermark(t, "aggregate", lost)
	// New events are counted on top.
	end := e.publishAgain(t, 50, "after", want)
	e.waitWatermark(t, "aggregate", end)
	var got map[string]string
	got, err = after.HGetAll(ctx, projection.New(base, projection.DefaultNamespace).All(projection.KindDomain)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%d domains, want %d", len(got), len(want))
	}
	for d, n := range want {
		if got[d] != strconv.FormatInt(n, 10) {
			t.Errorf("%s = %q, want %d", d, got[d], n)
		}
	}
	if n := a.Stats().Recoveries.Load(); n < 1 {
		t.Errorf("%d recoveries: the loss went unnoticed", n)
	}
}
