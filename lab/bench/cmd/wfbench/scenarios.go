package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/lab/bench"
)

const (
	poll      = 10 * time.Millisecond
	stall     = 60 * time.Second
	healthMax = 60 * time.Second
	grace     = 20 * time.Second
)

// all runs every selected measurement; a failed measurement becomes a note.
func (h *harness) all(ctx context.Context) error {
	o := h.o
	var err error
	if h.dlq, err = h.topic(ctx, "dlq"); err != nil {
		return err
	}
	var res resources
	for _, m := range []struct {
		want bool
		run  func(context.Context, *resources) error
	}{
		{o.want("stages"), h.allStages},
		{o.want("e2e") || o.want("api") || o.want("rebuild"), h.allE2E},
		{o.want("e2e") && o.e2eRepN > 0, h.allE2EReps},
		{o.want("fresh"), h.allFreshness},
		{o.want("peers"), h.allPeers},
	} {
		if !m.want {
			continue
		}
		if err := m.run(ctx, &res); err != nil {
			return err
		}
	}
	// Order the rebuild after the end-to-end figures.
	sort.SliceStable(h.res.Throughput, func(i, j int) bool {
		return h.res.Throughput[i].Key != "rebuild" && h.res.Throughput[j].Key == "rebuild"
	})
	h.res.Resources = res.results()
	h.res.TotalSeconds = time.Since(h.started).Seconds()
	return nil
}

// failed turns the error of a measurement into a note (nil), or returns the
// context's error when the run is cancelled.
func (h *harness) failed(ctx context.Context, err error, format string, a ...any) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	h.note(format+": %v", append(a, firstLine(err))...)
	return nil
}

// allStages measures ingest, bridge and aggregate, each on a backlog, o.reps times.
func (h *harness) allStages(ctx context.Context, res *resources) error {
	o := h.o
	var ing, br, agg []progress
	for r := 1; r <= o.reps; r++ {
		h.logf("per-stage run %d/%d, %d events", r, o.reps, o.stageN)
		i, b, a, err := h.stageRep(ctx, r, res)
		if err != nil {
			if err := h.failed(ctx, err, "per-stage run %d did not complete", r); err != nil {
				return err
			}
		}
		ing, br, agg = appendOK(ing, i), appendOK(br, b), appendOK(agg, a)
	}
	n := int64(o.stageN)
	h.res.Throughput = append(h.res.Throughput,
		throughput("ingest", "ingest (emulator gen, speed 0 → ingest → Kafka)", n, 0, ing),
		throughput("bridge", "bridge (Kafka backlog → JetStream)", n, 0, br),
		throughput("aggregate", "aggregate (JetStream backlog → Redis)", n, bench.TargetAggregate, agg))
	return nil
}

// allE2E runs the end-to-end measurement once, with the API load test and the
// rebuild on its result when they are selected.
func (h *harness) allE2E(ctx context.Context, res *resources) error {
	o := h.o
	h.logf("end-to-end run of %d events (with API and rebuild on its result)", o.e2eN)
	pr, err := h.e2e(ctx, "e2e", o.e2eN, res, func(env *natsEnv, stream, base string) {
		if o.want("api") {
			if err := h.api(ctx, base, res); err != nil {
				h.note("API load test failed: %v", firstLine(err))
			}
		}
		if o.want("rebuild") {
			if err := h.rebuild(ctx, env, stream, base, res); err != nil {
				h.note("rebuild failed: %v", firstLine(err))
			}
		}
	})
	if err != nil {
		if err := h.failed(ctx, err, "end-to-end run of %d events did not complete", o.e2eN); err != nil {
			return err
		}
	}
	if o.want("e2e") {
		t := throughput("e2e", fmt.Sprintf("end to end, %s events, once", fmtN(o.e2eN)), int64(o.e2eN), bench.TargetEndToEnd, appendOK(nil, pr))
		if t.Rate.N > 0 && t.Seconds[0] > 180 {
			h.note("the end-to-end run of %s events took %.0f s (more than 3 minutes) on this machine", fmtN(o.e2eN), t.Seconds[0])
		}
		h.res.Throughput = append(h.res.Throughput, t)
	}
	return nil
}

// allE2EReps repeats a smaller end-to-end run o.e2eReps times.
func (h *harness) allE2EReps(ctx context.Context, res *resources) error {
	o := h.o
	var prs []progress
	for r := 1; r <= o.e2eReps; r++ {
		h.logf("end-to-end repetition %d/%d, %d events", r, o.e2eReps, o.e2eRepN)
		pr, err := h.e2e(ctx, "e2er"+strconv.Itoa(r), o.e2eRepN, res, nil)
		if err != nil {
			if err := h.failed(ctx, err, "end-to-end repetition %d did not complete", r); err != nil {
				return err
			}
		}
		prs = appendOK(prs, pr)
	}
	h.res.Throughput = append(h.res.Throughput, throughput("e2e_reps", fmt.Sprintf("end to end, %s events, repeated", fmtN(o.e2eRepN)), int64(o.e2eRepN), bench.TargetEndToEnd, prs))
	return nil
}

// allFreshness measures freshness at the live rate and at a high rate.
func (h *harness) allFreshness(ctx context.Context, _ *resources) error {
	o := h.o
	for _, c := range []struct {
		tag    string
		rate   float64
		d      time.Duration
		target float64
	}{{"frlive", o.liveRate, o.freshLive, bench.TargetFreshP99ms}, {"frhigh", o.highRate, o.freshHigh, 0}} {
		h.logf("freshness at %.0f events/s for %s", c.rate, c.d)
		f, err := h.freshness(ctx, c.tag, c.rate, c.d)
		if err != nil {
			if err := h.failed(ctx, err, "freshness at %.0f events/s did not complete", c.rate); err != nil {
				return err
			}
		}
		f.TargetP99ms = c.target
		h.res.Freshness = append(h.res.Freshness, f)
	}
	return nil
}

// allPeers runs the comparison with the alternatives.
func (h *harness) allPeers(ctx context.Context, _ *resources) error {
	if err := h.peers(ctx); err != nil {
		return h.failed(ctx, err, "the peers comparison did not complete")
	}
	return nil
}

func appendOK(prs []progress, p progress) []progress {
	if p.first.IsZero() || p.end.IsZero() || p.rate() <= 0 {
		return prs
	}
	return append(prs, p)
}

func firstLine(err error) string {
	s := err.Error()
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

func fmtN(n int) string {
	switch {
	case n >= 1000000 && n%1000000 == 0:
		return strconv.Itoa(n/1000000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// Arguments of the services.

func (h *harness) emulatorArgs(port, count int, rate, speed float64, seed int) []string {
	return []string{"emulator", "--addr", addr(port), "--source", "gen", "--gen-count", strconv.Itoa(count),
		"--gen-rate", strconv.FormatFloat(rate, 'f', -1, 64), "--speed", strconv.FormatFloat(speed, 'f', -1, 64),
		"--gen-seed", strconv.Itoa(seed)}
}

func (h *harness) ingestArgs(emuPort, hport int, topic string) []string {
	return []string{"ingest", "--url", "http://" + addr(emuPort) + "/v2/stream/recentchange", "--kafka-brokers", h.o.kafka,
		"--kafka-topic", topic, "--dead-letter-topic", h.dlq, "--health-addr", addr(hport)}
}

func (h *harness) bridgeArgs(env *natsEnv, hport int, topic, stream string) []string {
	return []string{"bridge", "--kafka-brokers", h.o.kafka, "--kafka-topic", topic, "--nats-url", env.url,
		"--stream", stream, "--health-addr", addr(hport)}
}

func (h *harness) aggregateArgs(env *natsEnv, hport int, stream, base string) []string {
	return []string{"aggregate", "--nats-url", env.url, "--stream", stream, "--redis-url", h.o.redisURL,
		"--hash", base, "--consumer", "aggregate", "--health-addr", addr(hport)}
}

func ports(n int) ([]int, error) {
	out := make([]int, n)
	seen := map[int]bool{}
	for i := range out {
		for {
			p, err := bench.FreePort()
			if err != nil {
				return nil, err
			}
			if !seen[p] {
				seen[p], out[i] = true, p
				break
			}
		}
	}
	return out, nil
}

// stageRep measures ingest, bridge and aggregate separately, each on a backlog.
func (h *harness) stageRep(ctx context.Context, r int, res *resources) (ing, br, agg progress, err error) {
	tag := "st" + strconv.Itoa(r)
	pt, err := ports(4)
	if err != nil {
		return
	}
	if ing, err = h.stageIngest(ctx, tag, r, pt[0], pt[1], res); err != nil {
		return
	}
	env, err := h.startNATS(ctx, tag)
	if err != nil {
		return
	}
	defer env.close()
	stream := h.stream(tag)
	if br, err = h.stageBridge(ctx, tag, r, env, pt[2], stream, res); err != nil {
		return
	}
	agg, err = h.stageAggregate(ctx, tag, env, pt[3], stream, res)
	return
}

// stageIngest measures ingest reading the emulator's generated events into a
// new topic, the emulator on emuPort and ingest's health on port.
func (h *harness) stageIngest(ctx context.Context, tag string, r, emuPort, port int, res *resources) (progress, error) {
	n := h.o.stageN
	topic, err := h.topic(ctx, tag+"ing")
	if err != nil {
		return progress{}, err
	}
	emu, err := h.start("emulator-"+tag, h.o.bin, h.emulatorArgs(emuPort, n, 100, 0, r)...)
	if err != nil {
		return progress{}, err
	}
	defer emu.stop(grace)
	if err = waitTCP(ctx, emuPort, emu, healthMax); err != nil {
		return progress{}, err
	}
	in, err := h.start("ingest-"+tag, h.o.bin, h.ingestArgs(emuPort, port, topic)...)
	if err != nil {
		return progress{}, err
	}
	defer in.stop(grace)
	ing, err := watch(ctx, poll, stall, int64(n), func() (int64, error) {
		v, err := metric(port, "wikiflow_ingest_events_published_total")
		return int64(v), err
	}, in)
	res.add("ingest", "per-stage backlog", in.sample(), ing.endV)
	in.stop(grace)
	emu.stop(grace)
	if err != nil {
		return ing, fmt.Errorf("ingest: %w", err)
	}
	h.logf("ingest: %.0f events/s", ing.rate())
	return ing, nil
}

// stageBridge measures the bridge copying a backlog written by gen into stream.
func (h *harness) stageBridge(ctx context.Context, tag string, r int, env *natsEnv, port int, stream string, res *resources) (progress, error) {
	n := h.o.stageN
	btopic, err := h.topic(ctx, tag+"br")
	if err != nil {
		return progress{}, err
	}
	gen, err := h.start("gen-"+tag, h.o.bin, "gen", "--out", "kafka", "--count", strconv.Itoa(n), "--kafka-brokers", h.o.kafka,
		"--kafka-topic", btopic, "--seed", strconv.Itoa(r), "--truth-file", "")
	if err != nil {
		return progress{}, err
	}
	select {
	case <-gen.done:
	case <-ctx.Done():
		return progress{}, ctx.Err()
	}
	if gen.err != nil {
		return progress{}, fmt.Errorf("gen: %v\n%s", gen.err, gen.tail())
	}
	bp, err := h.start("bridge-"+tag, h.o.bin, h.bridgeArgs(env, port, btopic, stream)...)
	if err != nil {
		return progress{}, err
	}
	defer bp.stop(grace)
	br, err := watch(ctx, poll, stall, int64(n), func() (int64, error) {
		m, _, err := env.streamState(ctx, stream)
		return int64(m), err
	}, bp)
	res.add("bridge", "per-stage backlog", bp.sample(), br.endV)
	bp.stop(grace)
	if err != nil {
		return br, fmt.Errorf("bridge: %w", err)
	}
	h.logf("bridge: %.0f events/s", br.rate())
	return br, nil
}

// stageAggregate measures aggregate counting the bridge's stream.
func (h *harness) stageAggregate(ctx context.Context, tag string, env *natsEnv, port int, stream string, res *resources) (progress, error) {
	msgs, last, err := env.streamState(ctx, stream)
	if err != nil {
		return progress{}, err
	}
	base := h.base(tag)
	ap, err := h.start("aggregate-"+tag, h.o.bin, h.aggregateArgs(env, port, stream, base)...)
	if err != nil {
		return progress{}, err
	}
	defer ap.stop(grace)
	wm := "{" + base + "}:ns:live:wm"
	agg, err := watch(ctx, poll, stall, int64(last), func() (int64, error) {
		return h.redisInt(ctx, wm, "aggregate")
	}, ap)
	res.add("aggregate", "per-stage backlog", ap.sample(), int64(msgs))
	ap.stop(grace)
	if err != nil {
		return agg, fmt.Errorf("aggregate: %w", err)
	}
	h.logf("aggregate: %.0f events/s", agg.rate())
	return agg, nil
}

// pipeline is the four processes of a whole pipeline run.
type pipeline struct {
	env             *natsEnv
	emu, in, br, ag *proc
	stream, base    string
	ingPort         int
	metaKey         string
	topic           string
	stopped         bool
	emuPort, brPort int
	aggPort         int
	count           int
}

// startPipeline starts nats-server, emulator, bridge and aggregate; ingest is
// started by startIngest so that the caller controls when events begin to flow.
func (h *harness) startPipeline(ctx context.Context, tag string, count int, rate, speed float64) (*pipeline, error) {
	pt, err := ports(4)
	if err != nil {
		return nil, err
	}
	p := &pipeline{emuPort: pt[0], ingPort: pt[1], brPort: pt[2], aggPort: pt[3], count: count}
	if p.env, err = h.startNATS(ctx, tag); err != nil {
		return p, err
	}
	if p.topic, err = h.topic(ctx, tag); err != nil {
		return p, err
	}
	p.stream, p.base = h.stream(tag), h.base(tag)
	p.metaKey = "{" + p.base + "}:ns:live:meta"
	if p.emu, err = h.start("emulator-"+tag, h.o.bin, h.emulatorArgs(p.emuPort, count, rate, speed, 7)...); err != nil {
		return p, err
	}
	if err = waitTCP(ctx, p.emuPort, p.emu, healthMax); err != nil {
		return p, err
	}
	if p.br, err = h.start("bridge-"+tag, h.o.bin, h.bridgeArgs(p.env, p.brPort, p.topic, p.stream)...); err != nil {
		return p, err
	}
	if err = waitHealthy(ctx, p.brPort, p.br, healthMax); err != nil {
		return p, err
	}
	if _, err = watch(ctx, 20*time.Millisecond, healthMax, 1, func() (int64, error) {
		_, err := p.env.js.Stream(ctx, p.stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return 0, nil
		}
		return 1, err
	}, p.br); err != nil {
		return p, fmt.Errorf("stream %s: %w", p.stream, err)
	}
	if p.ag, err = h.start("aggregate-"+tag, h.o.bin, h.aggregateArgs(p.env, p.aggPort, p.stream, p.base)...); err != nil {
		return p, err
	}
	if err = waitHealthy(ctx, p.aggPort, p.ag, healthMax); err != nil {
		return p, err
	}
	return p, nil
}

func (h *harness) startIngest(p *pipeline, tag string) error {
	var err error
	p.in, err = h.start("ingest-"+tag, h.o.bin, h.ingestArgs(p.emuPort, p.ingPort, p.topic)...)
	return err
}

func (p *pipeline) stop() {
	for _, x := range []*proc{p.in, p.emu, p.br, p.ag} {
		if x != nil {
			x.stop(grace)
		}
	}
}

func (p *pipeline) procs() []*proc {
	var out []*proc
	for _, x := range []*proc{p.in, p.br, p.ag} {
		if x != nil {
			out = append(out, x)
		}
	}
	return out
}

// e2e pushes n generated events through the whole pipeline at full speed. after,
// when set, runs with the filled projection before the nats-server is stopped.
func (h *harness) e2e(ctx context.Context, tag string, n int, res *resources, after func(env *natsEnv, stream, base string)) (progress, error) {
	var pr progress
	p, err := h.startPipeline(ctx, tag, n, 100, 0)
	if p != nil && p.env != nil {
		defer p.env.close()
	}
	if p != nil {
		defer p.stop()
	}
	if err != nil {
		return pr, err
	}
	if err := h.startIngest(p, tag); err != nil {
		return pr, err
	}
	// First receipt: ingest's frame counter leaves zero.
	first, err := watch(ctx, poll, stall, 1, func() (int64, error) {
		v, err := metric(p.ingPort, "wikiflow_ingest_frames_read_total")
		return int64(v), err
	}, p.procs()...)
	if err != nil {
		return pr, fmt.Errorf("first event: %w", err)
	}
	done, err := watch(ctx, poll, stall, int64(n), func() (int64, error) {
		return h.redisInt(ctx, p.metaKey, "events")
	}, p.procs()...)
	pr = progress{first: first.end, firstV: 0, end: done.end, endV: done.endV}
	scenario := "end to end, " + fmtN(n)
	res.add("ingest", scenario, p.in.sample(), int64(n))
	res.add("bridge", scenario, p.br.sample(), int64(n))
	res.add("aggregate", scenario, p.ag.sample(), int64(n))
	if err != nil {
		return pr, err
	}
	h.logf("end to end %s: %.0f events/s over %.1f s", fmtN(n), pr.rate(), pr.end.Sub(pr.first).Seconds())
	p.stop()
	if after != nil {
		after(p.env, p.stream, p.base)
	}
	return pr, nil
}

// freshness paces events at rate for d through the pipeline and measures the delay
// from ingest's receipt to the count's visibility in Redis.
func (h *harness) freshness(ctx context.Context, tag string, rate float64, d time.Duration) (bench.FreshnessResult, error) {
	count := int(rate * d.Seconds())
	fr := bench.FreshnessResult{Name: fmt.Sprintf("%s events/s", fmtN(int(rate))), Rate: rate, Seconds: d.Seconds()}
	if rate <= 200 {
		fr.Name = "live rate"
	}
	p, err := h.startPipeline(ctx, tag, count, rate, 1)
	if p != nil && p.env != nil {
		defer p.env.close()
	}
	if p != nil {
		defer p.stop()
	}
	if err != nil {
		return fr, err
	}
	vp := h.pollVisibility(ctx, p.metaKey)
	if err := h.startIngest(p, tag); err != nil {
		vp.cancel()
		return fr, err
	}
	_, werr := watch(ctx, 50*time.Millisecond, stall, int64(count), func() (int64, error) {
		return h.redisInt(ctx, p.metaKey, "events")
	}, p.procs()...)
	time.Sleep(20 * time.Millisecond)
	fr.PollMs = vp.finish()
	p.stop()
	if werr != nil && !errors.Is(werr, errStalled) {
		return fr, werr
	}
	recv, err := receipts(ctx, p.env, p.stream)
	if err != nil {
		return fr, err
	}
	h.freshnessFigures(&fr, recv, vp.vis)
	h.logf("freshness at %.0f/s: %d events, p50 %.1f ms, p99 %.1f ms, poll %.2f ms", rate, fr.Events, fr.P50ms, fr.P99ms, fr.PollMs)
	if werr != nil {
		return fr, werr
	}
	return fr, nil
}

// visibilityPoller records every change of a projection's event count.
type visibilityPoller struct {
	vis        []bench.Visibility
	polls      int64
	start, end time.Time
	cancel     context.CancelFunc
	done       chan struct{}
}

// pollVisibility polls the events field of the hash key every 2 ms until the
// poller is finished or cancelled.
func (h *harness) pollVisibility(ctx context.Context, key string) *visibilityPoller {
	pollCtx, cancel := context.WithCancel(ctx)
	vp := &visibilityPoller{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(vp.done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		last := int64(-1)
		vp.start = time.Now()
		for pollCtx.Err() == nil {
			v, err := h.redisInt(pollCtx, key, "events")
			now := time.Now()
			vp.polls++
			if err == nil && v != last {
				vp.vis = append(vp.vis, bench.Visibility{At: now.UnixNano(), Count: v})
				last = v
			}
			select {
			case <-pollCtx.Done():
			case <-t.C:
			}
		}
		vp.end = time.Now()
	}()
	return vp
}

// finish stops the poller, waits for it and returns the mean time between polls
// in milliseconds (0 without a poll).
func (vp *visibilityPoller) finish() float64 {
	vp.cancel()
	<-vp.done
	if vp.polls == 0 {
		return 0
	}
	return vp.end.Sub(vp.start).Seconds() * 1000 / float64(vp.polls)
}

// freshnessFigures fills fr's delivered rate and delays from the stream's receipt
// times and the visibility changes, leaving out the first 2 s as warm-up.
func (h *harness) freshnessFigures(fr *bench.FreshnessResult, recv []int64, vis []bench.Visibility) {
	skip := 0
	if len(recv) > 0 {
		warm := recv[0] + int64(2*time.Second)
		for skip < len(recv) && recv[skip] < warm {
			skip++
		}
	}
	if len(vis) > 0 && len(recv) > 0 {
		lastVis := vis[len(vis)-1]
		firstRecv := int64(0)
		for _, r := range recv {
			if r > 0 && (firstRecv == 0 || r < firstRecv) {
				firstRecv = r
			}
		}
		if d := float64(lastVis.At-firstRecv) / 1e9; firstRecv > 0 && d > 0 {
			fr.DeliveredRate = float64(lastVis.Count) / d
		}
	}
	lat := bench.Freshness(recv, vis, skip)
	sort.Float64s(lat)
	fr.Events = len(lat)
	if len(lat) > 0 {
		fr.P50ms = bench.PercentileSorted(lat, 50)
		fr.P99ms = bench.PercentileSorted(lat, 99)
		fr.MaxMs = lat[len(lat)-1]
	}
	if fr.DeliveredRate > 0 && fr.DeliveredRate < 0.95*fr.Rate {
		h.note("at %s events/s input the pipeline delivered only %.0f events/s: the freshness delays there include a growing backlog", fmtN(int(fr.Rate)), fr.DeliveredRate)
	}
}

// receipts reads the stream in order and returns each message's receipt time.
func receipts(ctx context.Context, env *natsEnv, stream string) ([]int64, error) {
	s, err := env.js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	last := s.CachedInfo().State.LastSeq
	out := make([]int64, last)
	oc, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	for got := uint64(0); got < last; {
		batch, err := oc.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			seq := md.Sequence.Stream
			if seq >= 1 && seq <= last {
				out[seq-1], _ = strconv.ParseInt(m.Headers().Get("Wikiflow-Received"), 10, 64)
			}
			if seq > got {
				got = seq
			}
		}
		if err := batch.Error(); err != nil && n == 0 {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("read %s: stopped at %d of %d", stream, got, last)
		}
	}
	return out, nil
}

// api load-tests the api over the projection of base.
func (h *harness) api(ctx context.Context, base string, res *resources) error {
	port, err := bench.FreePort()
	if err != nil {
		return err
	}
	ap, err := h.start("api", h.o.bin, "api", "--addr", addr(port), "--hash", base, "--redis-url", h.o.redisURL,
		"--stage-metrics", "", "--max-staleness", "0")
	if err != nil {
		return err
	}
	defer ap.stop(grace)
	if err := waitHealthy(ctx, port, ap, healthMax); err != nil {
		return err
	}
	if h.wrk == "" {
		h.note("wrk is not installed: the API was loaded by the Go load generator of lab/bench/load.go")
	} else {
		h.note("the API was loaded by wrk with one thread and 64 keep-alive connections on loopback; wrk and the api share the machine's cores")
	}
	for _, path := range []string{"/stats", "/stats?window=5m&top=50"} {
		url := "http://" + addr(port) + path
		var lr bench.LoadResult
		if h.wrk != "" {
			// One wrk thread drives the 64 connections: on a 2-core machine a
			// second thread would take the api's core away from it.
			threads := 1
			out, err := exec.CommandContext(ctx, h.wrk, bench.WrkArgs(url, 64, h.o.apiFor, threads)...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("wrk %s: %v: %s", path, err, out)
			}
			if lr, err = bench.ParseWrk(string(out)); err != nil {
				return err
			}
			lr.Connections = 64
		} else {
			if lr, err = bench.Load(ctx, url, 64, h.o.apiFor); err != nil {
				return err
			}
		}
		a := bench.APIResult{Path: path, LoadResult: lr, PeakRSSMB: mib(ap.sample().PeakRSS)}
		if path == "/stats" {
			a.TargetRPS, a.TargetP99ms = bench.TargetStatsRPS, bench.TargetStatsP99ms
		}
		h.res.API = append(h.res.API, a)
		h.logf("api %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms, %d errors", path, lr.RPS, lr.P50ms, lr.P99ms, lr.Errors)
	}
	res.add("api", "under load (64 connections)", ap.sample(), 0)
	return nil
}

// rebuild times `wikiflow rebuild` of stream against the projection of base.
func (h *harness) rebuild(ctx context.Context, env *natsEnv, stream, base string, res *resources) error {
	msgs, _, err := env.streamState(ctx, stream)
	if err != nil {
		return err
	}
	t0 := time.Now()
	p, err := h.start("rebuild", h.o.bin, "rebuild", "--stream", stream, "--hash", base, "--nats-url", env.url,
		"--redis-url", h.o.redisURL, "--timeout", "20m", "--keep")
	if err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.stop(grace)
		return ctx.Err()
	}
	el := time.Since(t0)
	if p.err != nil {
		return fmt.Errorf("rebuild: %v\n%s", p.err, p.tail())
	}
	pr := progress{first: t0, end: t0.Add(el), endV: int64(msgs)}
	h.res.Throughput = append(h.res.Throughput, throughput("rebuild", fmt.Sprintf("rebuild of a %s-event stream (whole command: replay, apply, verify, switch; the old namespace is kept)", fmtN(int(msgs))), int64(msgs), bench.TargetRebuildRate, []progress{pr}))
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		res.add("rebuild", "rebuild (rusage)", bench.ProcSample{PeakRSS: ru.Maxrss * 1024, CPUSeconds: cpu}, int64(msgs))
	}
	h.logf("rebuild of %d events: %.1f s, %.0f events/s", msgs, el.Seconds(), pr.rate())
	return nil
}
