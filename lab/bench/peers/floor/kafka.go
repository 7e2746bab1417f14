package main

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/wikiflow/wikiflow/lab/bench"
)

// readTopic reads every partition of topic from the start to its end at the time
// of the call, one reader per partition, calling each with every message (from
// one goroutine per partition).
func readTopic(ctx context.Context, brokers, topic string, each func(p int, m kafka.Message)) error {
	ends, err := bench.PartitionEnds(ctx, brokers, topic)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	for p, end := range ends {
		if end == 0 {
			continue
		}
		g.Go(func() error {
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{brokers}, Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 16 << 20,
				// A short MaxWait: Close waits for the fetch in flight, and the default 10 s
				// would be counted as reading time.
				MaxWait: 100 * time.Millisecond})
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					return fmt.Errorf("read %s/%d: %w", topic, p, err)
				}
				each(p, m)
				if m.Offset+1 >= end {
					return nil
				}
			}
		})
	}
	return g.Wait()
}

// kafkaFloor times raw reads of the whole topic.
func kafkaFloor(ctx context.Context, o options) (result, error) {
	counts := make([]int64, 64)
	var m meter
	m = startMeter()
	err := readTopic(ctx, o.brokers, o.topic, func(p int, msg kafka.Message) {
		counts[p%64]++
	})
	var n int64
	for _, c := range counts {
		n += c
	}
	res := m.stop(n)
	if err != nil {
		return res, err
	}
	if n != o.n {
		return res, fmt.Errorf("read %d messages, want %d", n, o.n)
	}
	return res, nil
}
