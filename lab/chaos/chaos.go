package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/stack"
	"github.com/wikiflow/wikiflow/internal/wire"
	"github.com/wikiflow/wikiflow/lab/gen"
)

// consumer is the aggregate's durable consumer name (its default), also the
// field of its watermark in Redis.
const consumer = "aggregate"

// runner holds the state of one run.
type runner struct {
	cfg   Config
	start time.Time
	t0    time.Time
	b     *brokerSet
	rep   *Report

	services map[string]*service
	gen      *stack.Proc

	mu    sync.Mutex
	procs []*stack.Proc

	brokerMu sync.Mutex // one broker fault at a time
	// natsMu, kafkaMu and redisMu: one leader fault of each kind at a time
	// (Topology cluster).
	natsMu, kafkaMu, redisMu sync.Mutex
	genMu                    sync.Mutex // guards gen start against a Kafka pause
	// genStarted is closed when the generator has started, at genStart.
	genStarted chan struct{}
	genStart   time.Time

	// samples holds, per service and process start, the largest value seen of
	// each metric.
	samples map[string]map[int]map[string]int64
}

// sampled lists the counters summed over every process lifetime in the report
// (each is the metric counterMetric names).
var sampled = map[string][]string{
	"ingest":    {"published", "duplicates", "dead_lettered", "lost", "reconnects", "write_retries"},
	"bridge":    {"published", "duplicates", "already_bridged", "resyncs", "restarts"},
	"aggregate": {"applied", "duplicates", "cas_conflicts", "recoveries", "out_of_order", "errors"},
}

// counterMetric names the metric of each counter of the report, by
// "<service>/<counter>".
var counterMetric = map[string]string{
	"ingest/published":        "wikiflow_ingest_events_published_total",
	"ingest/duplicates":       "wikiflow_ingest_duplicates_skipped_total",
	"ingest/dead_lettered":    "wikiflow_ingest_dead_letters_total",
	"ingest/lost":             "wikiflow_ingest_events_lost_total",
	"ingest/reconnects":       "wikiflow_ingest_reconnects_total",
	"ingest/write_retries":    "wikiflow_ingest_kafka_write_retries_total",
	"bridge/published":        "wikiflow_bridge_events_published_total",
	"bridge/duplicates":       "wikiflow_bridge_publish_duplicates_total",
	"bridge/already_bridged":  "wikiflow_bridge_records_already_bridged_total",
	"bridge/resyncs":          "wikiflow_bridge_resyncs_total",
	"bridge/restarts":         "wikiflow_bridge_pipeline_restarts_total",
	"bridge/read":             "wikiflow_bridge_records_read_total",
	"aggregate/applied":       "wikiflow_aggregate_events_applied_total",
	"aggregate/duplicates":    "wikiflow_aggregate_duplicates_skipped_total",
	"aggregate/cas_conflicts": "wikiflow_aggregate_watermark_conflicts_total",
	"aggregate/recoveries":    "wikiflow_aggregate_consumer_recoveries_total",
	"aggregate/out_of_order":  "wikiflow_aggregate_messages_out_of_order_total",
	"aggregate/fetched":       "wikiflow_aggregate_messages_fetched_total",
	"aggregate/errors":        "wikiflow_aggregate_operation_errors_total",
}

// sample scrapes the metrics of ingest, bridge and aggregate every second until
// ctx ends.
func (r *runner) sample(ctx context.Context) {
	for {
		r.sampleRSS()
		for name, port := range r.stagePorts() {
			s := r.services[name]
			start := s.Starts()
			m, err := scrape(ctx, port)
			if err != nil {
				continue
			}
			r.mu.Lock()
			if r.samples[name] == nil {
				r.samples[name] = map[int]map[string]int64{}
			}
			if r.samples[name][start] == nil {
				r.samples[name][start] = map[string]int64{}
			}
			for k, v := range m {
				if v > r.samples[name][start][k] {
					r.samples[name][start][k] = v
				}
			}
			r.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// totals sums the sampled counters over the process lifetimes (and, for the
// aggregate of Topology cluster, over its shards).
func (r *runner) totals() map[string]map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]map[string]int64{}
	for group, keys := range sampled {
		out[group] = map[string]int64{}
		for name, lifetimes := range r.samples {
			if kind, _ := nodeOf(name); kind != group {
				continue
			}
			for _, k := range keys {
				for _, m := range lifetimes {
					out[group][k] += m[counterMetric[group+"/"+k]]
				}
			}
		}
	}
	return out
}

func (r *runner) say(format string, args ...any) {
	base := r.t0
	if base.IsZero() {
		base = r.start
	}
	fmt.Fprintf(r.cfg.Progress, "chaos [%6.1fs] %s\n", time.Since(base).Seconds(), fmt.Sprintf(format, args...))
}

func (r *runner) addProc(p *stack.Proc) {
	r.mu.Lock()
	r.procs = append(r.procs, p)
	r.mu.Unlock()
}

// Run performs one chaos run as configured and returns its report. The error is
// non-nil when the run could not complete or any domain's count differs from the
// ground truth; the report then says why.
func Run(ctx context.Context, cfg Config) (rep Report, err error) {
	if err := cfg.Validate(); err != nil {
		return rep, err
	}
	cfg, err = cfg.withDefaults()
	if err != nil {
		return rep, err
	}
	r := &runner{cfg: cfg, start: time.Now(), rep: &rep, services: map[string]*service{}, genStarted: make(chan struct{}),
		samples: map[string]map[int]map[string]int64{}}
	rep.Seed, rep.Speed, rep.GenCount, rep.GenRate = cfg.Seed, cfg.Speed, cfg.GenCount, cfg.GenRate
	rep.Date = r.start.UTC().Format(time.RFC3339)
	rep.Machine, rep.CPUs = machine(), runtime.NumCPU()
	rep.Home = cfg.Home
	rep.Kills, rep.LeaderKills = map[string]int{}, map[string]int{}
	rep.Topology = cfg.Topology
	rep.Schedule = Schedule(cfg)
	p1, _ := Phases(cfg)
	rep.RecordingPhase = p1.Round(100 * time.Millisecond).String()
	defer func() {
		rep.Duration = time.Since(r.start).Round(100 * time.Millisecond).String()
		if err != nil {
			rep.Error = err.Error()
			r.printTails()
		} else if !cfg.KeepData {
			os.RemoveAll(filepath.Join(cfg.Home, "data"))
		}
	}()
	err = r.run(ctx)
	if err == nil && !rep.OK() {
		err = fmt.Errorf("%d events lost, %d counted twice, %d domains differ", rep.Lost, rep.Twice, len(rep.Diffs))
	}
	return rep, err
}

// run performs the run's steps: the brokers, the pipeline under supervision,
// the sampling and repair loops, the faults beside the generator, then the
// comparison with the ground truth. Each step's cleanup runs in reverse order.
func (r *runner) run(ctx context.Context) error {
	recTruth, recIDs, pt, err := r.prepare()
	if err != nil {
		return err
	}
	start := r.startBrokers
	if r.clustered() {
		start = r.startClusterBrokers
	}
	stopBrokers, err := start(ctx, pt)
	defer stopBrokers()
	if err != nil {
		return err
	}
	defer r.startPipeline()()
	defer r.watch(ctx)()
	if err := r.inject(ctx, recIDs); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return r.verify(ctx, recTruth)
}

// prepare reads the recording's ground truth, picks the run's ports and makes
// its folder.
func (r *runner) prepare() (map[string]int64, map[string]bool, ports, error) {
	recTruth, recIDs, err := RecordingTruth()
	if err != nil {
		return nil, nil, ports{}, err
	}
	for _, n := range recTruth {
		r.rep.RecordingEvents += n
	}
	pt, err := pickPorts(r.cfg.BasePort, r.clustered())
	if err != nil {
		return nil, nil, pt, err
	}
	if err := os.MkdirAll(r.cfg.Home, 0o755); err != nil {
		return nil, nil, pt, fmt.Errorf("run folder: %w", err)
	}
	r.say("seed %d; run folder %s; ports %d-%d", r.cfg.Seed, r.cfg.Home, pt.Kafka, pt.Aggregate2)
	return recTruth, recIDs, pt, nil
}

// startBrokers starts the private brokers through internal/stack and waits
// until they are healthy; the returned function stops them (it is never nil).
func (r *runner) startBrokers(ctx context.Context, pt ports) (func(), error) {
	b, err := newBrokers(ctx, r.cfg, pt)
	if err != nil {
		return func() {}, err
	}
	r.b = b
	r.addProc(b.kafka)
	r.addProc(b.nats)
	r.addProc(b.redis)
	stop := func() {
		b.stopAll()
		r.say("brokers stopped")
	}
	if err := b.startAll(ctx); err != nil {
		return stop, err
	}
	r.say("brokers healthy: Kafka %s, NATS %s, Redis %s", b.kafkaAddr(), b.natsURL(), b.redisURL())
	return stop, nil
}

// startPipeline starts the emulator, ingest, bridge and aggregate, each under
// its supervisor; the returned function halts them and notes their kills and
// exits in the report.
func (r *runner) startPipeline() func() {
	r.t0 = time.Now()
	run := filepath.Join(r.cfg.Home, "run")
	for _, name := range r.serviceNames() {
		p := stack.NewProc(name, run, filepath.Join(run, name+".log"), r.args(name, false)...)
		r.addProc(p)
		s := newService(p)
		r.services[name] = s
		go s.supervise(r.say)
	}
	return func() {
		rep := r.rep
		names := r.serviceNames()
		names[0], names[1] = names[1], names[0] // ingest before the emulator
		for _, name := range names {
			r.services[name].halt(15 * time.Second)
			rep.Kills[name] = r.services[name].kills
			if kind, _ := nodeOf(name); kind == "aggregate" {
				rep.FloorReplays += countLines(r.services[name].Log, floorReplayLog)
			}
			if c := r.services[name].crashList(); len(c) > 0 {
				if rep.SelfExits == nil {
					rep.SelfExits = map[string][]string{}
				}
				rep.SelfExits[name] = c
			}
		}
		r.say("pipeline stopped")
	}
}

// watch starts sampling the stages' metrics and repairing the projection; the
// returned function stops both and sums the samples into the report.
func (r *runner) watch(ctx context.Context) func() {
	sctx, stopSampling := context.WithCancel(ctx)
	sampling := make(chan struct{})
	repairing := make(chan struct{})
	go func() {
		defer close(sampling)
		r.sample(sctx)
	}()
	go func() {
		defer close(repairing)
		if !r.clustered() {
			r.repair(sctx)
		}
	}()
	return func() {
		stopSampling()
		<-sampling
		<-repairing
		r.rep.Counters = r.totals()
	}
}

// inject prints the schedule, then performs every fault at its time while the
// generator writes its events; the first failure cancels the rest.
func (r *runner) inject(ctx context.Context, recIDs map[string]bool) error {
	cfg, rep := r.cfg, r.rep
	p1, p2 := Phases(cfg)
	r.say("pipeline started; recording phase ~%s, generator phase ~%s; %d faults scheduled:", p1.Round(time.Second), p2.Round(time.Second), len(rep.Schedule))
	for _, a := range rep.Schedule {
		fmt.Fprintf(cfg.Progress, "  at %8s  %s\n", a.At.Round(100*time.Millisecond), a)
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var faultErr error
	for _, a := range rep.Schedule {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !r.waitFor(fctx, a, p1) {
				return
			}
			if err := r.do(fctx, a); err != nil {
				mu.Lock()
				faultErr = errors.Join(faultErr, err)
				mu.Unlock()
				cancel()
			}
		}()
	}
	gerr := r.runGen(fctx, recIDs, p1)
	if gerr != nil {
		cancel()
	}
	wg.Wait()
	return errors.Join(gerr, faultErr)
}

// waitFor waits until the time of fault a and reports whether it came before
// ctx ended. With Topology cluster, a fault scheduled after the recording
// phase p1 happens that long after the generator started (ingest takes longer
// than p1 when its Kafka partitions lose their leaders), so that the
// generator's load meets its share of the faults.
func (r *runner) waitFor(ctx context.Context, a Action, p1 time.Duration) bool {
	at := r.t0.Add(a.At)
	if r.clustered() && a.At > p1 {
		select {
		case <-r.genStarted:
			at = r.genStart.Add(a.At - p1)
		case <-ctx.Done():
			return false
		}
	}
	select {
	case <-time.After(time.Until(at)):
		return true
	case <-ctx.Done():
		return false
	}
}

// verify waits for the pipeline to drain, then compares the projection's
// counts with the recording's and the generator's ground truth.
func (r *runner) verify(ctx context.Context, recTruth map[string]int64) error {
	rep := r.rep
	r.say("faults over; waiting for the pipeline to drain (at most %s)", r.cfg.DrainTimeout)
	truth, err := gen.ReadTruth(filepath.Join(r.cfg.Home, "gen-truth.json"))
	if err != nil {
		return err
	}
	rep.GeneratedEvents = truth.Events
	drain, counts := r.drain, r.counts
	if r.clustered() {
		drain, counts = r.drainCluster, r.clusterCounts
	}
	if err := drain(ctx); err != nil {
		return err
	}
	counted, err := counts(ctx)
	if err != nil {
		return err
	}
	expected := map[string]int64{}
	for d, n := range recTruth {
		expected[d] += n
	}
	for d, n := range truth.PerDomain {
		expected[d] += n
	}
	rep.compare(expected, counted)
	if rep.DeadLetters, err = topicRecords(ctx, r.b.kafkaAddr(), wire.DefaultDeadLetterTopic); err != nil {
		r.say("dead letters: %v", err)
	}
	if rep.KafkaRecords, err = topicRecords(ctx, r.b.kafkaAddr(), wire.DefaultTopic); err != nil {
		r.say("Kafka records: %v", err)
	}
	r.say("compared %d domains: expected %d, counted %d, lost %d, counted twice %d", rep.Domains, rep.Expected, rep.Counted, rep.Lost, rep.Twice)
	return nil
}

// args returns the command line of a pipeline process; second selects the
// health port of a second bridge or aggregate.
func (r *runner) args(name string, second bool) []string {
	if r.clustered() {
		return r.clusterArgs(name)
	}
	return r.singleArgs(name, second)
}

// singleArgs is args with Topology single.
func (r *runner) singleArgs(name string, second bool) []string {
	b, pt := r.b, r.b.ports
	health := func(first, other int) string {
		if second {
			first = other
		}
		return fmt.Sprintf("127.0.0.1:%d", first)
	}
	bin := r.cfg.Bin
	switch name {
	case "emulator":
		return []string{bin, "emulator", "--addr", fmt.Sprintf("127.0.0.1:%d", pt.Emulator),
			"--speed", strconv.FormatFloat(r.cfg.Speed, 'g', -1, 64)}
	case "ingest":
		return []string{bin, "ingest", "--url", fmt.Sprintf("http://127.0.0.1:%d/v2/stream/recentchange", pt.Emulator),
			"--kafka-brokers", b.kafkaAddr(), "--health-addr", health(pt.Ingest, pt.Ingest), "--backoff-max", "5s"}
	case "bridge":
		return []string{bin, "bridge", "--kafka-brokers", b.kafkaAddr(), "--nats-url", b.natsURL(),
			"--health-addr", health(pt.Bridge, pt.Bridge2)}
	default:
		return []string{bin, "aggregate", "--nats-url", b.natsURL(), "--redis-url", b.redisURL(), "--hash", r.cfg.Hash,
			"--consumer", consumer, "--ack-wait", "10s", "--health-addr", health(pt.Aggregate, pt.Aggregate2)}
	}
}

// do performs one fault.
func (r *runner) do(ctx context.Context, a Action) error {
	switch a.Kind {
	case KindKill:
		if r.services[a.Target].killNow(a.Delay) {
			r.say("%s", a)
		} else {
			r.say("%s: not running for 15s, no kill", a.Target)
		}
		return nil
	case KindRestart:
		r.brokerMu.Lock()
		defer r.brokerMu.Unlock()
		r.say("%s ...", a)
		if a.Target == "kafka" {
			r.genMu.Lock()
			if r.gen != nil {
				// The generator is a load tool, not a stage: it gives up after its
				// writer's retries, so it waits while Kafka is down.
				r.gen.Signal(syscall.SIGSTOP)
				defer r.gen.Signal(syscall.SIGCONT)
			}
			defer r.genMu.Unlock()
		}
		t := time.Now()
		if err := r.b.restart(ctx, a.Target, a.Hard, a.LoseAOF); err != nil {
			return err
		}
		r.rep.BrokerRestarts = append(r.rep.BrokerRestarts, r.b.restarts[len(r.b.restarts)-1])
		r.say("%s is healthy again after %s", a.Target, time.Since(t).Round(100*time.Millisecond))
		return nil
	case KindCrash:
		r.brokerMu.Lock()
		defer r.brokerMu.Unlock()
		r.say("%s ...", a)
		t := time.Now()
		what, err := r.crash(ctx, func() { r.killServices(a.Delay, "bridge", "aggregate") })
		if err != nil {
			return fmt.Errorf("crash: %w", err)
		}
		r.rep.BrokerRestarts = append(r.rep.BrokerRestarts, what)
		r.say("%s; NATS and Redis healthy again after %s", what, time.Since(t).Round(100*time.Millisecond))
		return nil
	case KindLeader:
		return r.leaderFault(ctx, a)
	default:
		return r.second(ctx, a)
	}
}

// killServices kills the named services at once; each is restarted after delay.
func (r *runner) killServices(delay time.Duration, names ...string) {
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.services[name].killNow(delay)
		}()
	}
	wg.Wait()
}

// second runs a second bridge or aggregate beside the first for a.Delay.
func (r *runner) second(ctx context.Context, a Action) error {
	pt := r.b.ports
	port := pt.Bridge2
	if a.Target == "aggregate" {
		port = pt.Aggregate2
	}
	p := stack.NewProc(a.Target+"2", filepath.Join(r.cfg.Home, "run"), filepath.Join(r.cfg.Home, "run", a.Target+"2.log"), r.args(a.Target, true)...)
	r.addProc(p)
	t := time.Now()
	if err := p.Start(); err != nil {
		return err
	}
	r.say("second %s started (pid %d) for %s", a.Target, p.Pid(), a.Delay)
	var last map[string]int64
	deadline := time.Now().Add(a.Delay)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if m, err := scrape(ctx, port); err == nil {
			last = m
		}
		if up, _ := p.Running(); !up {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	up, _ := p.Running()
	p.Stop(15 * time.Second)
	ran := time.Since(t).Round(100 * time.Millisecond)
	s := Second{Name: a.Target, Ran: ran.String(), Metrics: map[string]int64{}}
	var keys []string
	if a.Target == "bridge" {
		keys = []string{"published", "duplicates", "already_bridged", "resyncs", "restarts", "read"}
	} else {
		keys = []string{"applied", "duplicates", "cas_conflicts", "recoveries", "out_of_order", "fetched", "errors"}
	}
	var parts []string
	for _, k := range keys {
		v := last[counterMetric[a.Target+"/"+k]]
		s.Metrics[k] = v
		parts = append(parts, fmt.Sprintf("%s %d", strings.ReplaceAll(k, "_", " "), v))
	}
	how := "stopped with SIGTERM"
	if !up {
		how = fmt.Sprintf("exited by itself (%v)", p.ExitError())
		if line := lastErrorLine(p.Log); line != "" {
			how += ": " + line
		}
	}
	if last == nil {
		parts = append(parts, "no metrics read")
	}
	s.Outcome = fmt.Sprintf("ran %s beside the first, %s; %s", ran, how, strings.Join(parts, ", "))
	r.mu.Lock()
	r.rep.Seconds = append(r.rep.Seconds, s)
	r.mu.Unlock()
	r.say("second %s: %s", a.Target, s.Outcome)
	return nil
}

// runGen waits until the whole recording is in Kafka, then writes the generated
// events to Kafka and waits for the generator to finish.
func (r *runner) runGen(ctx context.Context, recIDs map[string]bool, p1 time.Duration) error {
	addr := r.b.kafkaAddr()
	var have int
	err := poll(ctx, 3*p1+3*time.Minute, time.Second, func() error {
		ids, _, err := topicMetaIDs(ctx, addr, wire.DefaultTopic)
		if err != nil {
			return err
		}
		have = 0
		for id := range recIDs {
			if ids[id] {
				have++
			}
		}
		if have < len(recIDs) {
			return fmt.Errorf("%d of the recording's %d events are in Kafka", have, len(recIDs))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ingest did not finish the recording: %w", err)
	}
	r.say("ingest finished the recording: all %d events are in Kafka; starting the generator", len(recIDs))
	p := stack.NewProc("gen", filepath.Join(r.cfg.Home, "run"), filepath.Join(r.cfg.Home, "run", "gen.log"),
		r.cfg.Bin, "gen", "--count", strconv.Itoa(r.cfg.GenCount), "--seed", strconv.FormatInt(r.cfg.Seed, 10),
		"--rate", strconv.FormatFloat(r.cfg.GenRate, 'g', -1, 64), "--out", "kafka",
		"--truth-file", filepath.Join(r.cfg.Home, "gen-truth.json"), "--kafka-brokers", addr)
	r.addProc(p)
	r.genMu.Lock()
	err = p.Start()
	if err == nil {
		r.gen, r.genStart = p, time.Now()
		close(r.genStarted)
	}
	r.genMu.Unlock()
	if err != nil {
		return err
	}
	_, done := p.Running()
	select {
	case <-done:
	case <-ctx.Done():
		p.Kill()
		return ctx.Err()
	}
	r.genMu.Lock()
	r.gen = nil
	r.genMu.Unlock()
	if err := p.ExitError(); err != nil {
		return fmt.Errorf("the generator failed (%v); last lines of %s:\n%s", err, p.Log, p.Tail(20))
	}
	r.say("generator finished: %d events written", r.cfg.GenCount)
	return nil
}

// drain waits until the bridge has no Kafka lag, the stream stopped growing and
// the aggregate's watermark equals the stream's last sequence.
func (r *runner) drain(ctx context.Context) error {
	var prev uint64
	var stable int
	err := r.pollDrain(ctx, func() error {
		m, err := scrape(ctx, r.b.ports.Bridge)
		if err != nil {
			return fmt.Errorf("bridge metrics: %w", err)
		}
		lag := m["wikiflow_bridge_kafka_lag_records"]
		last, err := r.streamLastSeq(ctx)
		if err != nil {
			return err
		}
		wm, err := r.watermark(ctx)
		if err != nil {
			return err
		}
		r.rep.StreamLastSeq, r.rep.Watermark = last, wm
		if last == prev && lag == 0 {
			stable++
		} else {
			stable = 0
		}
		prev = last
		err = nil
		switch {
		case lag != 0:
			err = fmt.Errorf("bridge lag %d", lag)
		case wm != last:
			err = fmt.Errorf("watermark %d, stream last sequence %d", wm, last)
		case stable < 3:
			err = fmt.Errorf("stream at %d, waiting for it to stay put", last)
		}
		return err
	})
	if err != nil {
		return err
	}
	r.say("drained: bridge lag 0, stream last sequence %d = watermark", r.rep.StreamLastSeq)
	return nil
}

// pollDrain calls check every second until it returns nil, for at most
// DrainTimeout, and says every 10 s what the drain still waits for.
func (r *runner) pollDrain(ctx context.Context, check func() error) error {
	lastSay := time.Now()
	err := poll(ctx, r.cfg.DrainTimeout, time.Second, func() error {
		err := check()
		if err != nil && time.Since(lastSay) > 10*time.Second {
			r.say("draining: %v", err)
			lastSay = time.Now()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("the pipeline did not drain: %w", err)
	}
	return nil
}

func (r *runner) streamLastSeq(ctx context.Context) (uint64, error) {
	nc, err := nats.Connect(r.b.natsURL(), nats.Name("chaos"), nats.Timeout(3*time.Second))
	if err != nil {
		return 0, fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, fmt.Errorf("jetstream: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := js.Stream(cctx, wire.DefaultStream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", wire.DefaultStream, err)
	}
	info, err := s.Info(cctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", wire.DefaultStream, err)
	}
	return info.State.LastSeq, nil
}

func (r *runner) redis() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.b.ports.Redis)})
}

// keys returns the projection's keys in the namespace readers use.
func (r *runner) keys(ctx context.Context, c *redis.Client) (projection.Keys, error) {
	k := projection.New(r.cfg.Hash, projection.DefaultNamespace)
	ns, err := c.Get(ctx, k.Pointer()).Result()
	if err != nil && err != redis.Nil {
		return k, fmt.Errorf("redis: %w", err)
	}
	if ns != "" {
		k = projection.New(r.cfg.Hash, ns)
	}
	return k, nil
}

func (r *runner) watermark(ctx context.Context) (uint64, error) {
	c := r.redis()
	defer c.Close()
	k, err := r.keys(ctx, c)
	if err != nil {
		return 0, err
	}
	v, err := c.HGet(ctx, k.Watermarks(), consumer).Result()
	if err == redis.Nil {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redis: %w", err)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("watermark %q: %w", v, err)
	}
	return n, nil
}

// counts reads the legacy domain -> count hash.
func (r *runner) counts(ctx context.Context) (map[string]int64, error) {
	c := r.redis()
	defer c.Close()
	h, err := c.HGetAll(ctx, r.cfg.Hash).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	out := make(map[string]int64, len(h))
	for d, v := range h {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("count of %s: %q: %w", d, v, err)
		}
		out[d] = n
	}
	return out, nil
}

// scrape reads the gauges of a process's GET /metrics.
func scrape(ctx context.Context, port int) (map[string]int64, error) {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(cctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", port), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		// Values from 1e6 up are written in exponent notation (1.5e+06).
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = int64(v)
		}
	}
	return out, sc.Err()
}

// printTails prints the end of every process's log.
func (r *runner) printTails() {
	r.mu.Lock()
	procs := append([]*stack.Proc(nil), r.procs...)
	r.mu.Unlock()
	seen := map[string]bool{}
	for _, p := range procs {
		if seen[p.Log] {
			continue
		}
		seen[p.Log] = true
		fmt.Fprintf(r.cfg.Progress, "---- last lines of %s\n%s\n", p.Log, p.Tail(25))
	}
}

// machine returns `uname -m`, or Go's architecture name.
func machine() string {
	if out, err := exec.Command("uname", "-m").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	return runtime.GOARCH
}

// lastErrorLine returns the last line of a log that reports an error, shortened.
func lastErrorLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		if strings.Contains(l, "level=ERROR") || strings.HasPrefix(l, "wikiflow:") {
			if len(l) > 300 {
				l = l[:300] + "..."
			}
			return l
		}
	}
	return ""
}
