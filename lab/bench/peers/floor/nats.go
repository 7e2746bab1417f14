package main

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsFloor times raw reads of the whole stream with an ordered consumer.
func natsFloor(ctx context.Context, o options) (result, error) {
	nc, err := nats.Connect(o.natsURL, nats.Name("wfbench-floor"))
	if err != nil {
		return result{}, fmt.Errorf("connect %s: %w", o.natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return result{}, err
	}
	s, err := js.Stream(ctx, o.stream)
	if err != nil {
		return result{}, fmt.Errorf("stream %s: %w", o.stream, err)
	}
	m := startMeter()
	oc, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return result{}, fmt.Errorf("consumer on %s: %w", o.stream, err)
	}
	it, err := oc.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return result{}, fmt.Errorf("read %s: %w", o.stream, err)
	}
	defer it.Stop()
	var n int64
	for n < o.n {
		if _, err := it.Next(jetstream.NextContext(ctx)); err != nil {
			return m.stop(n), fmt.Errorf("read %s after %d: %w", o.stream, n, err)
		}
		n++
	}
	return m.stop(n), nil
}
