package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/stack"
	"github.com/wikiflow/wikiflow/internal/wire"
	"github.com/wikiflow/wikiflow/lab/bench"
)

// env is what the measurement runs against.
type env struct {
	tmp    string
	ns     *natsserver.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	rdb    *redis.Client
	base   string // the projection's unique base name
	bin    string
	api    *stack.Proc
	apiURL string
	raws   [][]byte // the recording, published again during the measurement
}

// setup starts NATS with the stream holding the recording, counts it into Redis
// with a `wikiflow aggregate`, then starts the API alone.
func setup(ctx context.Context, o options, tmp string) (*env, error) {
	e := &env{tmp: tmp, base: fmt.Sprintf("evbench_%d", time.Now().UnixNano())}
	for _, r := range recording.Events() {
		e.raws = append(e.raws, r.Data)
	}
	if err := e.startNATS(ctx, max(stack.NATSMaxConsumers, o.clients+10)); err != nil {
		return e, err
	}
	opt, err := redis.ParseURL(o.redisURL)
	if err != nil {
		return e, fmt.Errorf("redis-url: %w", err)
	}
	e.rdb = redis.NewClient(opt)
	if err := e.rdb.Ping(ctx).Err(); err != nil {
		return e, fmt.Errorf("redis at %s: %w", o.redisURL, err)
	}
	if o.bin != "" {
		// The processes run in tmp: a relative path would be looked for there.
		if e.bin, err = filepath.Abs(o.bin); err != nil {
			return e, fmt.Errorf("bin: %w", err)
		}
	} else {
		e.bin = filepath.Join(tmp, "wikiflow")
		logf("building %s", e.bin)
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", e.bin, "./cmd/wikiflow").CombinedOutput(); err != nil {
			return e, fmt.Errorf("go build ./cmd/wikiflow (run from the module root): %v\n%s", err, out)
		}
	}
	if _, err := e.publish(ctx, e.raws, true); err != nil {
		return e, err
	}
	agg, err := e.start("aggregate", "aggregate", "--nats-url", e.ns.ClientURL(), "--redis-url", o.redisURL, "--hash", e.base)
	if err != nil {
		return e, err
	}
	defer agg.Stop(15 * time.Second)
	port, err := bench.FreePort()
	if err != nil {
		return e, err
	}
	e.apiURL = "http://127.0.0.1:" + strconv.Itoa(port)
	e.api, err = e.start("api", "api", "--addr", "127.0.0.1:"+strconv.Itoa(port), "--redis-url", o.redisURL,
		"--hash", e.base, "--nats-url", e.ns.ClientURL(), "--stage-metrics", "",
		"--events-max-clients", strconv.Itoa(o.clients))
	if err != nil {
		return e, err
	}
	return e, e.waitCounted(ctx, int64(len(e.raws)))
}

// startNATS starts the embedded nats-server allowing maxConsumers per stream (as
// the native stack's nats.conf does, stack.NATSMaxConsumers: one consumer per client).
func (e *env) startNATS(ctx context.Context, maxConsumers int) error {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: filepath.Join(e.tmp, "nats"), NoLog: true, NoSigs: true,
		JetStreamLimits: natsserver.JSLimitOpts{DefaultMaxConsumers: maxConsumers}})
	if err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return errors.New("nats-server did not start in 10 s")
	}
	e.ns = ns
	if e.nc, err = nats.Connect(ns.ClientURL()); err != nil {
		return err
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		return err
	}
	_, err = e.js.CreateStream(ctx, jetstream.StreamConfig{Name: wire.DefaultStream, Subjects: []string{wire.SubjectAll},
		Storage: jetstream.FileStorage, Duplicates: time.Minute})
	return err
}

// publish logs raws as the bridge does; unique gives each copy its own meta.id
// header (the stream's duplicate window would drop repeats). It returns the
// sequence of the first event published.
func (e *env) publish(ctx context.Context, raws [][]byte, unique bool) (uint64, error) {
	var first uint64
	for i, raw := range raws {
		ev, err := event.Parse(raw)
		if err != nil {
			return 0, fmt.Errorf("recorded event %d: %w", i, err)
		}
		var opts []jetstream.PublishOpt
		if unique {
			opts = append(opts, jetstream.WithMsgID(ev.ID))
		}
		ack, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: ev.Subject(wire.SubjectPrefix), Data: raw}, opts...)
		if err != nil {
			return 0, fmt.Errorf("publish: %w", err)
		}
		if i == 0 {
			first = ack.Sequence
		}
	}
	return first, nil
}

// start runs the wikiflow binary with args, logging to <tmp>/<name>.log.
func (e *env) start(name string, args ...string) (*stack.Proc, error) {
	p := stack.NewProc(name, e.tmp, filepath.Join(e.tmp, name+".log"), append([]string{e.bin}, args...)...)
	if err := p.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

// waitCounted waits until the API's /stats counts n events.
func (e *env) waitCounted(ctx context.Context, n int64) error {
	deadline := time.Now().Add(90 * time.Second)
	var total int64
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var body struct{ Total int64 }
		if resp, err := http.Get(e.apiURL + "/stats"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if total = body.Total; total == n {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the projection counted %d of %d events in 90 s (logs in %s)", total, n, e.tmp)
}

func (e *env) close() {
	if e.api != nil {
		e.api.Stop(15 * time.Second)
	}
	if e.rdb != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, pat := range []string{e.base + "*", "{" + e.base + "}*"} {
			iter := e.rdb.Scan(ctx, 0, pat, 1000).Iterator()
			for iter.Next(ctx) {
				e.rdb.Del(ctx, iter.Val())
			}
		}
		e.rdb.Close()
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.ns != nil {
		e.ns.Shutdown()
		e.ns.WaitForShutdown()
	}
}
