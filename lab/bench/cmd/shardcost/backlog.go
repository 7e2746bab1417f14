package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/aggregate"
	"github.com/wikiflow/wikiflow/bridge"
	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/wire"
	"github.com/wikiflow/wikiflow/lab/bench"
)

// backlog is an embedded JetStream holding the events to count.
type backlog struct {
	srv      *natsserver.Server
	nc       *nats.Conn
	subjects []string // by stream sequence - 1
}

// newBacklog starts the server with its store in dir and publishes n distinct
// events made of the recording (copy k of an event has its id and title
// suffixed by k).
func newBacklog(ctx context.Context, dir string, n int) (*backlog, error) {
	port, err := bench.FreePort()
	if err != nil {
		return nil, err
	}
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		return nil, errors.New("nats server did not start")
	}
	b := &backlog{srv: srv}
	if b.nc, err = nats.Connect(srv.ClientURL()); err != nil {
		return nil, err
	}
	js, err := jetstream.New(b.nc)
	if err != nil {
		return nil, err
	}
	if _, err := js.CreateStream(ctx, bridge.DefaultConfig().StreamConfig()); err != nil {
		return nil, err
	}
	return b, b.publish(ctx, js, n)
}

func (b *backlog) publish(ctx context.Context, js jetstream.JetStream, n int) error {
	recs := recording.Events()
	for i := 0; i < n; i++ {
		r, k := recs[i%len(recs)], i/len(recs)
		ev, err := event.Parse(r.Data)
		if err != nil {
			return fmt.Errorf("recorded line %d: %w", r.Line, err)
		}
		id := ev.ID + "-" + strconv.Itoa(k)
		data := bytes.Replace(r.Data, []byte(`"id":"`+ev.ID+`"`), []byte(`"id":"`+id+`"`), 1)
		data = bytes.Replace(data, []byte(`"title":"`), []byte(`"title":"c`+strconv.Itoa(k)+` `), 1)
		m := nats.NewMsg(ev.Subject(wire.SubjectPrefix))
		m.Data = data
		m.Header.Set(jetstream.MsgIDHeader, id)
		if _, err := js.PublishMsgAsync(m); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		b.subjects = append(b.subjects, m.Subject)
		if i%2000 == 1999 {
			if err := complete(ctx, js); err != nil {
				return err
			}
		}
	}
	return complete(ctx, js)
}

// complete waits until every asynchronous publish was acknowledged.
func complete(ctx context.Context, js jetstream.JetStream) error {
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-time.After(time.Minute):
		return errors.New("publish: not acknowledged within a minute")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *backlog) close() {
	b.nc.Close()
	b.srv.Shutdown()
}

// lastOf is the last sequence and the event count of partition k of n.
func (b *backlog) lastOf(k, n int) (last uint64, events int) {
	for i, s := range b.subjects {
		h := fnv.New32a()
		h.Write([]byte(strings.Split(s, ".")[2]))
		if int(h.Sum32()%uint32(n)) == k {
			last, events = uint64(i+1), events+1
		}
	}
	return last, events
}

// measure counts the backlog with n aggregate processes into a fresh
// projection and measures their CPU, Redis's and this process's. With n > 1 the
// shard mirror is created and filled first, and measured on its own.
func (b *backlog) measure(ctx context.Context, o options, n int) (result, error) {
	r := result{shards: n, events: len(b.subjects), shardCPU: make([]time.Duration, n), shardEvents: make([]int, n)}
	rc, err := brokers.Redis{URL: o.redisURL}.Universal()
	if err != nil {
		return r, err
	}
	defer rc.Close()
	if n > 1 {
		if r.mirror, err = b.fillMirror(ctx, n); err != nil {
			return r, err
		}
	}
	base, err := spreadBase(ctx, rc, n)
	if err != nil {
		return r, err
	}
	defer dropBase(context.WithoutCancel(ctx), rc, base)
	redis0, err := redisCPU(ctx, rc)
	if err != nil {
		return r, err
	}
	self0 := selfCPU()
	start := time.Now()
	procs := make([]*exec.Cmd, n)
	defer func() {
		for _, p := range procs {
			if p != nil && p.ProcessState == nil {
				_ = p.Process.Kill()
				_ = p.Wait()
			}
		}
	}()
	for k := range n {
		procs[k] = exec.CommandContext(ctx, o.bin, "aggregate", "--nats-url", b.srv.ClientURL(), "--redis-url", o.redisURL,
			"--hash", base, "--shard", fmt.Sprintf("%d/%d", k, n), "--consumer", "cost"+strconv.Itoa(n))
		procs[k].Stderr = os.Stderr
		if err := procs[k].Start(); err != nil {
			return r, err
		}
	}
	if err := b.waitShards(ctx, rc, base, procs, &r); err != nil {
		return r, err
	}
	r.wall = time.Since(start)
	r.nats = selfCPU() - self0
	if err := redisShares(ctx, rc, base, redis0, &r); err != nil {
		return r, err
	}
	for _, p := range procs {
		_ = p.Process.Signal(syscall.SIGTERM)
		_ = p.Wait()
	}
	return r, nil
}

// waitShards waits for every shard's watermark to reach its last sequence, and
// takes each process's CPU time when its shard is done (before it idles).
func (b *backlog) waitShards(ctx context.Context, rc redis.UniversalClient, base string, procs []*exec.Cmd, r *result) error {
	n := len(procs)
	last := make([]uint64, n)
	for k := range n {
		last[k], r.shardEvents[k] = b.lastOf(k, n)
	}
	done := make([]bool, n)
	deadline := time.Now().Add(10 * time.Minute)
	for left := n; left > 0; {
		for k := range n {
			if done[k] {
				continue
			}
			st := projection.NewShardStore(rc, base, k, n)
			w, err := st.Watermark(ctx, projection.DefaultNamespace, aggregate.ShardConsumer("cost"+strconv.Itoa(n), k, n))
			if err != nil {
				return err
			}
			if w == last[k] {
				if r.shardCPU[k], err = procCPU(procs[k].Process.Pid); err != nil {
					return err
				}
				r.aggCPU += r.shardCPU[k]
				done[k] = true
				left--
			}
		}
		if time.Now().After(deadline) {
			return errors.New("the shards did not count the backlog in 10 minutes")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// fillMirror creates the shard mirror for n shards and waits until it holds the
// whole stream; it returns this process's CPU time meanwhile.
func (b *backlog) fillMirror(ctx context.Context, n int) (time.Duration, error) {
	js, err := jetstream.New(b.nc)
	if err != nil {
		return 0, err
	}
	src, err := js.Stream(ctx, wire.DefaultStream)
	if err != nil {
		return 0, err
	}
	self0 := selfCPU()
	m, err := js.CreateStream(ctx, aggregate.MirrorConfig(src.CachedInfo().Config, n, 0))
	if err != nil {
		return 0, fmt.Errorf("create the shard mirror: %w", err)
	}
	for {
		info, err := m.Info(ctx)
		if err != nil {
			return 0, err
		}
		if info.State.LastSeq == uint64(len(b.subjects)) {
			return selfCPU() - self0, nil
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// procCPU is a running process's CPU time (user and system), from /proc.
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	const tick = 10 * time.Millisecond // USER_HZ = 100 on Linux
	return time.Duration(ut+st) * tick, nil
}

func waitWatermark(ctx context.Context, st *projection.Store, consumer string, last uint64) error {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		w, err := st.Watermark(ctx, projection.DefaultNamespace, consumer)
		if err != nil {
			return err
		}
		if w == last {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("watermark %d, want %d", w, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// selfCPU is this process's CPU time (the embedded NATS server's, mostly).
func selfCPU() time.Duration {
	var u syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// redisCPU is the CPU time each Redis node reports, by address (one node
// unless rc is a cluster client: then every master and replica).
func redisCPU(ctx context.Context, rc redis.UniversalClient) (map[string]time.Duration, error) {
	var mu sync.Mutex
	out := map[string]time.Duration{}
	add := func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "cpu").Result()
		if err != nil {
			return err
		}
		var cpu time.Duration
		for _, line := range strings.Split(info, "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
				f, _ := strconv.ParseFloat(v, 64)
				cpu += time.Duration(f * float64(time.Second))
			}
		}
		mu.Lock()
		out[c.Options().Addr] = cpu
		mu.Unlock()
		return nil
	}
	if cc, ok := rc.(*redis.ClusterClient); ok {
		return out, cc.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error { return add(ctx, c) })
	}
	return out, add(ctx, rc.(*redis.Client))
}

// redisShares sets r's Redis CPU: the total over the nodes since before, and on
// a cluster the CPU of the master holding each shard's slot.
func redisShares(ctx context.Context, rc redis.UniversalClient, base string, before map[string]time.Duration, r *result) error {
	after, err := redisCPU(ctx, rc)
	if err != nil {
		return err
	}
	delta := map[string]time.Duration{}
	for addr, cpu := range after {
		delta[addr] = cpu - before[addr]
		r.redisCPU += delta[addr]
	}
	cc, ok := rc.(*redis.ClusterClient)
	if !ok {
		return nil
	}
	r.shardRedis = make([]string, r.shards)
	for k := range r.shards {
		node, err := cc.MasterForKey(ctx, projection.New(base, projection.DefaultNamespace).InShard(k).Meta())
		if err != nil {
			return err
		}
		addr := node.Options().Addr
		r.shardRedis[k] = addr + " " + perEvent(delta[addr], r.shardEvents[k])
	}
	return nil
}

// spreadBase returns a fresh base name whose n shards live on n different
// masters of a cluster (as far as it has masters; any name on a single Redis).
func spreadBase(ctx context.Context, rc redis.UniversalClient, n int) (string, error) {
	stamp := time.Now().UnixNano()
	cc, ok := rc.(*redis.ClusterClient)
	for i := 0; ; i++ {
		base := fmt.Sprintf("shardcost_%d_%d_%d", n, stamp, i)
		if !ok {
			return base, nil
		}
		masters := map[string]bool{}
		for k := range n {
			node, err := cc.MasterForKey(ctx, projection.New(base, "").InShard(k).Pointer())
			if err != nil {
				return "", err
			}
			masters[node.Options().Addr] = true
		}
		if len(masters) == n || i >= 200 {
			return base, nil
		}
	}
}

// dropBase deletes every key of base, on every master.
func dropBase(ctx context.Context, rc redis.UniversalClient, base string) {
	drop := func(ctx context.Context, c *redis.Client) error {
		for _, pat := range []string{"{" + base + "}*", "{" + base + ":s*", base} {
			iter := c.Scan(ctx, 0, pat, 1000).Iterator()
			for iter.Next(ctx) {
				c.Unlink(ctx, iter.Val())
			}
		}
		return nil
	}
	if cc, ok := rc.(*redis.ClusterClient); ok {
		_ = cc.ForEachMaster(ctx, drop)
		return
	}
	_ = drop(ctx, rc.(*redis.Client))
}
