package main

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"time"

	"github.com/wikiflow/wikiflow/lab/bench"
	"github.com/wikiflow/wikiflow/lab/gen"
)

// peersStart is the event time of the backlog's first event: fixed, so that the
// per-minute ground truth can be computed again from the seed.
const peersStart = "2026-05-05T11:17:40Z"

// peersSeed is the generator's seed of the backlog.
const peersSeed = 14

// peerRun is what one system measured in one round.
type peerRun struct {
	pr      progress
	cpu     float64 // CPU seconds of the system's own processes
	rss     int64   // sum of their peak RSS, bytes
	brokers brokerCPU
	checks  []bench.CountCheck
	note    string
}

// peerSystem is one system of the comparison.
type peerSystem struct {
	key, name, kind, guarantee string
	// missing says why it cannot run (a prerequisite is missing); run is nil then.
	missing string
	run     func(ctx context.Context, r int) (peerRun, error)
}

// peerBacklog is the generated backlog every system reads.
type peerBacklog struct {
	topic   string
	n       int64
	ends    map[int]int64
	truth   *gen.Truth
	minutes map[string]int64
}

// peers measures wikiflow and the alternatives on one backlog, in alternating rounds.
func (h *harness) peers(ctx context.Context) error {
	b, err := h.peerBacklog(ctx)
	if err != nil {
		return fmt.Errorf("peers backlog: %w", err)
	}
	systems := h.peerSystems(ctx, b)
	runs := make([][]peerRun, len(systems))
	for r := 1; r <= h.o.reps; r++ {
		for i, s := range systems {
			if s.run == nil {
				continue
			}
			h.logf("peers round %d/%d: %s", r, h.o.reps, s.name)
			pr, err := s.run(ctx, r)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				h.note("peers round %d, %s did not complete: %v", r, s.name, firstLine(err))
				continue
			}
			h.logf("%s: %.0f events/s, %s", s.name, pr.pr.rate(), checksText(pr.checks))
			runs[i] = append(runs[i], pr)
		}
	}
	p := &bench.Peers{Events: b.n, Partitions: len(b.ends), Rounds: h.o.reps}
	for i, s := range systems {
		p.Systems = append(p.Systems, summarizePeer(s, runs[i], b.n))
	}
	h.res.Peers = p
	return nil
}

func checksText(cs []bench.CountCheck) string {
	s := ""
	for i, c := range cs {
		if i > 0 {
			s += "; "
		}
		s += c.What + " " + c.String()
	}
	return s
}

// summarizePeer turns the rounds of one system into its report row.
func summarizePeer(s peerSystem, runs []peerRun, n int64) bench.PeerResult {
	res := bench.PeerResult{Key: s.key, Name: s.name, Kind: s.kind, Guarantee: s.guarantee, Note: s.missing}
	var rss, cpu, kc, rc, nc []float64
	for _, r := range runs {
		res.Rates = append(res.Rates, r.pr.rate())
		rss = append(rss, mib(r.rss))
		cpu = appendFinite(cpu, per1k(r.cpu, n))
		kc = appendFinite(kc, per1k(r.brokers.kafka, n))
		rc = appendFinite(rc, per1k(r.brokers.redis, n))
		if r.brokers.hasNATS {
			nc = appendFinite(nc, per1k(r.brokers.nats, n))
		}
		res.Checks = append(res.Checks, r.checks...)
		if r.note != "" && res.Note == "" {
			res.Note = r.note
		}
	}
	if s.missing == "" && len(runs) == 0 {
		res.Note = "no round completed (see the notes of this run)"
	}
	res.Rate = bench.Summarize(res.Rates)
	res.PeakRSSMB = bench.Summarize(rss)
	res.CPUmsPer1k = bench.Summarize(cpu)
	res.KafkaCPUmsPer1k = bench.Summarize(kc)
	res.RedisCPUmsPer1k = bench.Summarize(rc)
	res.NATSCPUmsPer1k = bench.Summarize(nc)
	return res
}

func appendFinite(xs []float64, x float64) []float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
		return xs
	}
	return append(xs, x)
}

// peerBacklog writes the backlog with `wikiflow gen` and computes its ground truth.
func (h *harness) peerBacklog(ctx context.Context) (*peerBacklog, error) {
	topic, err := h.topic(ctx, "peers")
	if err != nil {
		return nil, err
	}
	n := h.o.stageN
	truthFile := filepath.Join(h.tmp, "peers-truth.json")
	g, err := h.start("gen-peers", h.o.bin, "gen", "--out", "kafka", "--count", strconv.Itoa(n), "--kafka-brokers", h.o.kafka,
		"--kafka-topic", topic, "--seed", strconv.Itoa(peersSeed), "--start", peersStart, "--truth-file", truthFile)
	if err != nil {
		return nil, err
	}
	select {
	case <-g.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if g.err != nil {
		return nil, fmt.Errorf("gen: %v\n%s", g.err, g.tail())
	}
	b := &peerBacklog{topic: topic, n: int64(n)}
	if b.truth, err = gen.ReadTruth(truthFile); err != nil {
		return nil, err
	}
	if b.truth.Events != b.n {
		return nil, fmt.Errorf("gen wrote %d events, want %d", b.truth.Events, n)
	}
	if b.ends, err = bench.PartitionEnds(ctx, h.o.kafka, topic); err != nil {
		return nil, err
	}
	if b.minutes, err = minuteTruth(n, b.truth); err != nil {
		return nil, err
	}
	h.logf("peers backlog: %d events in %s (%d partitions)", n, topic, len(b.ends))
	return b, nil
}

// minuteTruth generates the backlog's events again and counts them per wiki, type
// and event-time minute (start in Unix ms), after checking that they are the same
// events as gen's: the same counts per domain.
func minuteTruth(n int, truth *gen.Truth) (map[string]int64, error) {
	start, err := time.Parse(time.RFC3339, peersStart)
	if err != nil {
		return nil, err
	}
	g := gen.New(gen.DefaultProfile(), peersSeed)
	g.SetClock(start, 0)
	again := gen.NewTruth(peersSeed)
	out := map[string]int64{}
	for range n {
		g.Next()
		in := g.Last()
		again.Add(in)
		out[minuteKey(in.Wiki, in.Type, in.Time)]++
	}
	if c := bench.Compare("per domain", truth.PerDomain, again.PerDomain); c.Over+c.Under > 0 {
		return nil, fmt.Errorf("the events generated again differ from gen's: %s", c)
	}
	return out, nil
}

// minuteKey is the key of the per-minute count of Kafka Streams' output topic.
func minuteKey(wiki, typ string, t time.Time) string {
	return wiki + "|" + typ + "|" + strconv.FormatInt(t.Truncate(time.Minute).UnixMilli(), 10)
}
