package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wikiflow/wikiflow/lab/bench"
)

// runKStreams runs the Kafka Streams job until its consumer group has committed
// the whole backlog, then reads the final counts from its output topics.
//
// The counts are read from the output topics (read_committed, the last value of
// each key) rather than written to Redis by the job: a Redis write would sit
// outside Kafka's transactions, and the comparison is about what Kafka Streams'
// exactly-once guarantee gives by itself.
func (h *harness) runKStreams(ctx context.Context, t peerTools, b *peerBacklog, pids brokerPIDs, r int) (peerRun, error) {
	var run peerRun
	tag := "pk" + strconv.Itoa(r)
	app := h.base(tag)
	defer h.forgetTopics(app)
	domTopic, err := h.topic(ctx, tag+"dom")
	if err != nil {
		return run, err
	}
	winTopic, err := h.topic(ctx, tag+"win")
	if err != nil {
		return run, err
	}
	dom, err := h.followTable(ctx, domTopic)
	if err != nil {
		return run, err
	}
	defer dom.close()
	win, err := h.followTable(ctx, winTopic)
	if err != nil {
		return run, err
	}
	defer win.close()
	state := filepath.Join(h.tmp, "kstreams-"+tag)
	mark := markBrokers(pids)
	p, err := h.start("kstreams-"+tag, t.java, "-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", t.kstreamsCP,
		"wikiflow.peers.CountJob", h.o.kafka, b.topic, app, domTopic, winTopic, state)
	if err != nil {
		return run, err
	}
	defer p.stop(grace)
	// Done when both committed output tables account for every event: the input
	// offsets are committed before the repartitioned counts reach the outputs.
	run.pr, err = peerWatch(ctx, b.n, func() (int64, error) { return min(dom.sum(), win.sum()), nil }, p)
	run.brokers = mark.since()
	run.usageOf(p)
	p.stop(grace)
	if err != nil {
		return run, fmt.Errorf("%w (per-domain table at %d, window table at %d)", err, dom.sum(), win.sum())
	}
	if err := errors.Join(dom.err(), win.err()); err != nil {
		return run, err
	}
	run.checks = append(run.checks, compareNamed("per domain", b.truth.PerDomain, dom.table()),
		compareNamed("per wiki, type and minute", b.minutes, win.table()))
	return run, nil
}

// changelog follows a topic of key -> count records with read_committed, keeping
// the last count of each key. It reads with franz-go: a transactional topic holds
// commit markers, which kafka-go hands out as records.
type changelog struct {
	cl   *kgo.Client
	done chan struct{}
	mu   sync.Mutex
	last map[string]int64
	bad  error
}

// followTable starts following topic from its start until close.
func (h *harness) followTable(ctx context.Context, topic string) (*changelog, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.o.kafka), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return nil, fmt.Errorf("kafka client for %s: %w", topic, err)
	}
	c := &changelog{cl: cl, done: make(chan struct{}), last: map[string]int64{}}
	go c.run(ctx, topic)
	return c, nil
}

func (c *changelog) run(ctx context.Context, topic string) {
	defer close(c.done)
	for {
		fs := c.cl.PollFetches(ctx)
		if fs.IsClientClosed() || ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		fs.EachError(func(t string, p int32, err error) {
			c.bad = cmp.Or(c.bad, fmt.Errorf("read %s/%d: %w", t, p, err))
		})
		fs.EachRecord(func(r *kgo.Record) {
			n, err := strconv.ParseInt(string(r.Value), 10, 64)
			if err != nil {
				c.bad = cmp.Or(c.bad, fmt.Errorf("%s/%d@%d: %w", topic, r.Partition, r.Offset, err))
			}
			c.last[string(r.Key)] = n
		})
		c.mu.Unlock()
	}
}

// sum is the total of the last counts.
func (c *changelog) sum() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, v := range c.last {
		n += v
	}
	return n
}

// table returns a copy of the last counts.
func (c *changelog) table() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.last)
}

func (c *changelog) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bad
}

func (c *changelog) close() {
	c.cl.Close()
	<-c.done
}

// compareNamed compares a table with the truth.
func compareNamed(what string, truth, got map[string]int64) bench.CountCheck {
	return bench.Compare(what, truth, got)
}

// forgetTopics adds the internal topics of a Kafka Streams application (named
// after it) to the topics the cleanup deletes.
func (h *harness) forgetTopics(app string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", h.o.kafka)
	if err != nil {
		return
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions()
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, p := range parts {
		if strings.HasPrefix(p.Topic, app+"-") && !seen[p.Topic] {
			seen[p.Topic] = true
			h.topics = append(h.topics, p.Topic)
		}
	}
}
