package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

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
	state := filepath.Join(h.tmp, "kstreams-"+tag)
	mark := markBrokers(pids)
	p, err := h.start("kstreams-"+tag, t.java, "-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", t.kstreamsCP,
		"wikiflow.peers.CountJob", h.o.kafka, b.topic, app, domTopic, winTopic, state)
	if err != nil {
		return run, err
	}
	defer p.stop(grace)
	run.pr, err = peerWatch(ctx, b.n, func() (int64, error) { return h.committed(ctx, app, b.topic, len(b.ends)) }, p)
	run.brokers = mark.since()
	run.usageOf(p)
	p.stop(grace)
	if err != nil {
		return run, err
	}
	dom, err := h.readTable(ctx, domTopic)
	if err != nil {
		return run, err
	}
	win, err := h.readTable(ctx, winTopic)
	if err != nil {
		return run, err
	}
	run.checks = append(run.checks, compareNamed("per domain", b.truth.PerDomain, dom),
		compareNamed("per wiki, type and minute", b.minutes, win))
	return run, nil
}

// readTable reads a topic of key -> count changelog records with read_committed
// and returns the last count of each key.
func (h *harness) readTable(ctx context.Context, topic string) (map[string]int64, error) {
	ends, err := bench.PartitionEnds(ctx, h.o.kafka, topic)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for p, end := range ends {
		if end == 0 {
			continue
		}
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{h.o.kafka}, Topic: topic, Partition: p, MinBytes: 1,
			MaxBytes: 16 << 20, IsolationLevel: kafka.ReadCommitted})
		err := readUntilIdle(ctx, rd, end, func(m kafka.Message) error {
			n, err := strconv.ParseInt(string(m.Value), 10, 64)
			if err != nil {
				return fmt.Errorf("%s/%d@%d: %w", topic, p, m.Offset, err)
			}
			out[string(m.Key)] = n
			return nil
		})
		rd.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readUntilIdle reads until the offset before end, or until nothing comes for
// 2 s (the last offsets of a transactional topic are commit markers, never read).
func readUntilIdle(ctx context.Context, rd *kafka.Reader, end int64, each func(kafka.Message) error) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := rd.ReadMessage(rctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil
		}
		if err != nil {
			return err
		}
		if err := each(m); err != nil {
			return err
		}
		if m.Offset+1 >= end {
			return nil
		}
	}
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
