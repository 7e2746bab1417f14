// Command floor measures what the brokers alone allow, for the peers comparison of
// wfbench: raw reads of a Kafka topic with kafka-go (-mode kafka), raw reads of a
// JetStream stream with nats.go (-mode nats), and pipelined HINCRBY of each event's
// meta.domain into a Redis hash with go-redis (-mode redis; the domains are read
// from the topic first, outside the timed part). It prints one JSON object: the
// events handled, the seconds from the first to the last, and the CPU seconds and
// peak RSS of this process during that part (getrusage).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"
)

// result is what one floor run prints.
type result struct {
	Events     int64   `json:"events"`
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	MaxRSS     int64   `json:"max_rss_bytes"`
}

// options are the command's flags.
type options struct {
	mode, brokers, topic, natsURL, stream, redisURL, hash string
	n                                                     int64
	timeout                                               time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "kafka", "kafka, nats or redis")
	flag.StringVar(&o.brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap broker")
	flag.StringVar(&o.topic, "topic", "", "Kafka topic (kafka, redis)")
	flag.StringVar(&o.natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS URL (nats)")
	flag.StringVar(&o.stream, "stream", "", "JetStream stream (nats)")
	flag.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis URL (redis)")
	flag.StringVar(&o.hash, "hash", "", "Redis hash to count into (redis)")
	flag.Int64Var(&o.n, "n", 0, "events to read (the whole backlog)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this long")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	res, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

func run(ctx context.Context, o options) (result, error) {
	if o.n <= 0 {
		return result{}, errors.New("-n must be positive")
	}
	switch o.mode {
	case "kafka":
		return kafkaFloor(ctx, o)
	case "nats":
		return natsFloor(ctx, o)
	case "redis":
		return redisFloor(ctx, o)
	}
	return result{}, fmt.Errorf("mode %q is not kafka, nats or redis", o.mode)
}

// meter measures the wall time, CPU time and peak RSS of a timed part.
type meter struct {
	t0   time.Time
	cpu0 float64
}

func cpuNow() (float64, int64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), ru.Maxrss * 1024
}

func startMeter() meter {
	c, _ := cpuNow()
	return meter{t0: time.Now(), cpu0: c}
}

func (m meter) stop(events int64) result {
	c, rss := cpuNow()
	return result{Events: events, Seconds: time.Since(m.t0).Seconds(), CPUSeconds: c - m.cpu0, MaxRSS: rss}
}
