package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/wikiflow/wikiflow/internal/stack"
	"github.com/wikiflow/wikiflow/lab/bench"
)

// harness holds the state of one benchmark run and what it must clean up.
type harness struct {
	o       options
	run     string
	tmp     string
	started time.Time
	rdb     *redis.Client
	kcl     *kafka.Client
	res     *bench.Results
	procs   []*proc
	topics  []string
	natsEnv []*natsEnv
	seq     int
	wrk     string
	dlq     string
}

func (h *harness) logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s wfbench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

func (h *harness) note(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	h.logf("note: %s", s)
	h.res.Notes = append(h.res.Notes, s)
}

func newHarness(ctx context.Context, o options) (*harness, error) {
	h := &harness{o: o, run: runID(), started: time.Now()}
	opt, err := redis.ParseURL(o.redisURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	h.rdb = redis.NewClient(opt)
	if err := h.rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis %s: %w (start the brokers with go tool task infra)", o.redisURL, err)
	}
	h.kcl = &kafka.Client{Addr: kafka.TCP(o.kafka), Timeout: 15 * time.Second}
	conn, err := kafka.DialContext(ctx, "tcp", o.kafka)
	if err != nil {
		return nil, fmt.Errorf("kafka %s: %w (start the brokers with go tool task infra)", o.kafka, err)
	}
	conn.Close()
	if h.tmp, err = os.MkdirTemp("", "wfbench-"+h.run+"-"); err != nil {
		return nil, err
	}
	h.wrk, _ = exec.LookPath("wrk")
	mode := "full"
	if o.quick {
		mode = "quick"
	}
	h.res = &bench.Results{Run: h.run, Date: h.started.UTC().Format(time.RFC3339), Mode: mode}
	h.describe(ctx)
	h.logf("run %s (%s mode), logs in %s", h.run, mode, h.tmp)
	return h, nil
}

// describe fills in the machine and the versions.
func (h *harness) describe(ctx context.Context) {
	m := &h.res.Machine
	m.CPUs = runtime.NumCPU()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel = bench.ParseCPUModel(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemTotalBytes, _ = bench.ParseMemTotal(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	v := &h.res.Versions
	v.Go = runtime.Version()
	if out, err := exec.Command("go", "version", h.o.bin).Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) >= 2 {
			v.Go = f[1]
		}
	}
	v.Kafka = kafkaVersion()
	if info, err := h.rdb.Info(ctx, "server").Result(); err == nil {
		for _, line := range strings.Split(info, "\n") {
			if s, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
				v.Redis = s
			}
		}
	}
	if out, err := exec.Command(h.o.bin, "version").Output(); err == nil {
		v.Wikiflow = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command(h.o.natsServer, "--version").Output(); err == nil {
		v.NATS = strings.TrimSpace(string(out))
	}
}

// kafkaVersion is the version the native stack runs (internal/stack).
func kafkaVersion() string { return stack.KafkaVersion + " (KRaft, single node)" }

// cleanup stops every process and removes every topic, stream and key of the run.
func (h *harness) cleanup() {
	for i := len(h.procs) - 1; i >= 0; i-- {
		h.procs[i].stop(10 * time.Second)
	}
	for _, e := range h.natsEnv {
		e.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if len(h.topics) > 0 {
		if _, err := h.kcl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: h.topics}); err != nil {
			h.logf("delete topics: %v", err)
		}
	}
	var n int
	for _, pat := range []string{"bench_" + h.run + "*", "{bench_" + h.run + "*"} {
		it := h.rdb.Scan(ctx, 0, pat, 1000).Iterator()
		var batch []string
		for it.Next(ctx) {
			batch = append(batch, it.Val())
			if len(batch) == 500 {
				n += len(batch)
				h.rdb.Unlink(ctx, batch...)
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			n += len(batch)
			h.rdb.Unlink(ctx, batch...)
		}
	}
	h.rdb.Close()
	if h.o.keepTmp {
		h.logf("kept %s", h.tmp)
	} else {
		os.RemoveAll(h.tmp)
	}
	h.logf("cleaned up: %d topics, %d Redis keys, %d nats-servers", len(h.topics), n, len(h.natsEnv))
}

// topic creates a fresh 3-partition topic of the run.
func (h *harness) topic(ctx context.Context, tag string) (string, error) {
	name := "bench_" + h.run + "_" + tag
	resp, err := h.kcl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: name, NumPartitions: 3, ReplicationFactor: 1,
	}}})
	if err == nil {
		err = resp.Errors[name]
	}
	if err != nil {
		return "", fmt.Errorf("create topic %s: %w", name, err)
	}
	h.topics = append(h.topics, name)
	return name, nil
}

// base returns the Redis base name of a case.
func (h *harness) base(tag string) string { return "bench_" + h.run + "_" + tag }

// stream returns the stream name of a case.
func (h *harness) stream(tag string) string { return strings.ToUpper("BENCH_" + h.run + "_" + tag) }

// natsEnv is a private nats-server with JetStream.
type natsEnv struct {
	p   *proc
	url string
	dir string
	nc  *nats.Conn
	js  jetstream.JetStream
}

func (e *natsEnv) close() {
	if e.nc != nil {
		e.nc.Close()
		e.nc = nil
	}
	if e.p != nil {
		e.p.stop(10 * time.Second)
	}
	if e.dir != "" {
		os.RemoveAll(e.dir)
		e.dir = ""
	}
}

func (h *harness) startNATS(ctx context.Context, tag string) (*natsEnv, error) {
	port, err := bench.FreePort()
	if err != nil {
		return nil, err
	}
	e := &natsEnv{dir: filepath.Join(h.tmp, "nats-"+tag), url: "nats://" + addr(port)}
	h.natsEnv = append(h.natsEnv, e)
	// nats-server's own defaults (sync every 2m, 1000 consumers per stream), as
	// measured before; only the store is the run's.
	ns := stack.NATS{Bin: h.o.natsServer, Name: "wfbench-" + tag, Port: port, StoreDir: e.dir,
		Conf: filepath.Join(h.tmp, "nats-"+tag+".conf")}
	if err := ns.Prepare(); err != nil {
		return nil, err
	}
	args := ns.Args()
	if e.p, err = h.start("nats-server-"+tag, args[0], args[1:]...); err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, port, e.p, 20*time.Second); err != nil {
		return nil, err
	}
	if e.nc, err = nats.Connect(e.url, nats.Name("wfbench")); err != nil {
		return nil, fmt.Errorf("connect %s: %w", e.url, err)
	}
	if e.js, err = jetstream.New(e.nc); err != nil {
		return nil, err
	}
	return e, nil
}

// streamState returns the number of messages and the last sequence of a stream (0
// while it does not exist).
func (e *natsEnv) streamState(ctx context.Context, name string) (msgs, last uint64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	st := s.CachedInfo().State
	return st.Msgs, st.LastSeq, nil
}

// redisInt reads a hash field as an integer (0 when missing).
func (h *harness) redisInt(ctx context.Context, key, field string) (int64, error) {
	v, err := h.rdb.HGet(ctx, key, field).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func per1k(cpuSeconds float64, events int64) float64 {
	if events <= 0 {
		return math.NaN()
	}
	return cpuSeconds * 1000 / float64(events) * 1000
}

// resources collects samples per service and scenario for the report.
type resources struct {
	order []string
	rss   map[string][]float64
	cpu   map[string][]float64
}

func (r *resources) add(service, scenario string, s bench.ProcSample, events int64) {
	if s.PeakRSS == 0 {
		return
	}
	if r.rss == nil {
		r.rss, r.cpu = map[string][]float64{}, map[string][]float64{}
	}
	k := service + "\x00" + scenario
	if _, ok := r.rss[k]; !ok {
		r.order = append(r.order, k)
	}
	r.rss[k] = append(r.rss[k], mib(s.PeakRSS))
	if c := per1k(s.CPUSeconds, events); !math.IsNaN(c) {
		r.cpu[k] = append(r.cpu[k], c)
	}
}

func (r *resources) results() []bench.Resource {
	var out []bench.Resource
	for _, k := range r.order {
		svc, sc, _ := strings.Cut(k, "\x00")
		out = append(out, bench.Resource{Service: svc, Scenario: sc, PeakRSSMB: bench.Summarize(r.rss[k]), CPUmsPer1k: bench.Summarize(r.cpu[k])})
	}
	return out
}

// throughput builds a Throughput from per-repetition progress.
func throughput(key, name string, events int64, target float64, prs []progress) bench.Throughput {
	t := bench.Throughput{Key: key, Name: name, Events: events, Target: target}
	for _, p := range prs {
		t.Rates = append(t.Rates, p.rate())
		t.Seconds = append(t.Seconds, p.end.Sub(p.first).Seconds())
	}
	t.Rate = bench.Summarize(t.Rates)
	return t
}
