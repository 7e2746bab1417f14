package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/valyala/fastjson"
)

// pipelineSize is the number of HINCRBY commands sent in one round trip.
const pipelineSize = 1000

// redisFloor reads the domains of the topic's events (untimed), then times
// pipelined HINCRBY <hash> <domain> 1 of every event.
func redisFloor(ctx context.Context, o options) (result, error) {
	var mu sync.Mutex
	var domains []string
	err := readTopic(ctx, o.brokers, o.topic, func(_ int, msg kafka.Message) {
		d := fastjson.GetString(msg.Value, "meta", "domain")
		mu.Lock()
		domains = append(domains, d)
		mu.Unlock()
	})
	if err != nil {
		return result{}, err
	}
	opt, err := redis.ParseURL(o.redisURL)
	if err != nil {
		return result{}, fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return result{}, fmt.Errorf("redis %s: %w", o.redisURL, err)
	}
	m := startMeter()
	for i := 0; i < len(domains); i += pipelineSize {
		p := rdb.Pipeline()
		for _, d := range domains[i:min(len(domains), i+pipelineSize)] {
			p.HIncrBy(ctx, o.hash, d, 1)
		}
		if _, err := p.Exec(ctx); err != nil {
			return m.stop(int64(i)), fmt.Errorf("HINCRBY pipeline at %d: %w", i, err)
		}
	}
	return m.stop(int64(len(domains))), nil
}
