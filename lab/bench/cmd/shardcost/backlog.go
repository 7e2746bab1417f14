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
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
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
	}
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
// projection and measures their CPU, Redis's and this process's.
func (b *backlog) measure(ctx context.Context, o options, n int) (result, error) {
	r := result{shards: n, events: len(b.subjects), shardCPU: make([]time.Duration, n), shardEvents: make([]int, n)}
	rc, err := brokers.Redis{URL: o.redisURL}.Universal()
	if err != nil {
		return r, err
	}
	defer rc.Close()
	base := fmt.Sprintf("shardcost_%d_%d", n, time.Now().UnixNano())
	redis0, err := redisCPU(ctx, rc)
	if err != nil {
		return r, err
	}
	self0 := selfCPU()
	start := time.Now()
	procs := make([]*exec.Cmd, n)
	for k := range n {
		procs[k] = exec.CommandContext(ctx, o.bin, "aggregate", "--nats-url", b.srv.ClientURL(), "--redis-url", o.redisURL,
			"--hash", base, "--shard", fmt.Sprintf("%d/%d", k, n), "--consumer", "cost"+strconv.Itoa(n))
		procs[k].Stderr = os.Stderr
		if err := procs[k].Start(); err != nil {
			return r, err
		}
	}
	defer func() {
		for _, p := range procs {
			if p.ProcessState == nil {
				_ = p.Process.Kill()
				_ = p.Wait()
			}
		}
	}()
	for k := range n {
		last, events := b.lastOf(k, n)
		r.shardEvents[k] = events
		st := projection.NewShardStore(rc, base, k, n)
		if err := waitWatermark(ctx, st, aggregate.ShardConsumer("cost"+strconv.Itoa(n), k, n), last); err != nil {
			return r, fmt.Errorf("shard %d: %w", k, err)
		}
	}
	r.wall = time.Since(start)
	r.nats = selfCPU() - self0
	if r.redisCPU, err = redisCPU(ctx, rc); err != nil {
		return r, err
	}
	r.redisCPU -= redis0
	for k, p := range procs {
		_ = p.Process.Signal(syscall.SIGTERM)
		_ = p.Wait()
		r.shardCPU[k] = p.ProcessState.UserTime() + p.ProcessState.SystemTime()
		r.aggCPU += r.shardCPU[k]
	}
	return r, nil
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

// redisCPU is the CPU time Redis reports (summed over a cluster's masters and
// replicas).
func redisCPU(ctx context.Context, rc redis.UniversalClient) (time.Duration, error) {
	var mu sync.Mutex
	var total time.Duration
	add := func(ctx context.Context, c *redis.Client) error {
		info, err := c.Info(ctx, "cpu").Result()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(info, "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
				f, _ := strconv.ParseFloat(v, 64)
				mu.Lock()
				total += time.Duration(f * float64(time.Second))
				mu.Unlock()
			}
		}
		return nil
	}
	if cc, ok := rc.(*redis.ClusterClient); ok {
		return total, cc.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error { return add(ctx, c) })
	}
	return total, add(ctx, rc.(*redis.Client))
}
