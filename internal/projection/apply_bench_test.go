package projection

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

// scriptCall is one encoded apply call.
type scriptCall struct {
	keys []string
	args []any
}

// catchUpCalls encodes total events of the recording (copy k of an event has
// its title prefixed by k, as lab/bench/cmd/shardcost publishes them, and, with
// shift, its time moved on by k times the recording's span, so that the copies
// follow one another as a live stream's hours do) in batches of batch, as the
// aggregate applies a backlog, for s.
func catchUpCalls(b *testing.B, s *Store, total, batch int, shift bool) []scriptCall {
	rec := recorded(b)
	first, last := rec[0].Time, rec[0].Time
	for _, e := range rec {
		if e.Time.Before(first) {
			first = e.Time
		}
		if e.Time.After(last) {
			last = e.Time
		}
	}
	span := last.Sub(first) + time.Second
	d := NewDelta()
	var calls []scriptCall
	var w uint64
	for i := 0; i < total; {
		d.Reset()
		for j := 0; j < batch && i < total; j, i = j+1, i+1 {
			e := rec[i%len(rec)]
			e.Title = "c" + strconv.Itoa(i/len(rec)) + " " + e.Title
			if shift {
				e.Time = e.Time.Add(time.Duration(i/len(rec)) * span)
			}
			d.Add(&e)
		}
		keys, args, err := s.encodeApply(DefaultNamespace, "bench", w, w+uint64(d.Len()), d, true, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		w += uint64(d.Len())
		calls = append(calls, scriptCall{keys, args})
	}
	return calls
}

// redisCPU is the Redis server's CPU time so far in seconds (INFO cpu).
func redisCPU(b *testing.B, c *redis.Client) float64 {
	info, err := c.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, l := range strings.Split(info, "\r\n") {
		name, v, _ := strings.Cut(l, ":")
		if name == "used_cpu_sys" || name == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			sum += f
		}
	}
	return sum
}

// BenchmarkApplyScriptCPU reports the Redis CPU time per event (INFO cpu) of the
// apply script catching up 60,000 events in batches of 3,000, the copies of the
// recording in the same minutes and hours (same) or one after the other
// (shifted). With
// WIKIFLOW_BENCH_OLD_SCRIPT naming a file holding another apply script (an older
// applySource), each call is applied by both scripts in alternation, into two
// namespaces, and both are reported ("old-µs/event"). Point WIKIFLOW_TEST_REDIS
// at a Redis of its own: INFO cpu counts every client's commands.
func BenchmarkApplyScriptCPU(b *testing.B) {
	c := testenv.Redis(b)
	scripts := []*redis.Script{redis.NewScript(applySource)}
	if path := os.Getenv("WIKIFLOW_BENCH_OLD_SCRIPT"); path != "" {
		src, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		scripts = append(scripts, redis.NewScript(string(src)))
	}
	for _, shift := range []bool{false, true} {
		name := "same"
		if shift {
			name = "shifted"
		}
		b.Run(name, func(b *testing.B) { benchScripts(b, c, scripts, shift) })
	}
}

func benchScripts(b *testing.B, c *redis.Client, scripts []*redis.Script, shift bool) {
	ctx := context.Background()
	const total = 60_000
	cpu := make([]float64, len(scripts))
	for b.Loop() {
		b.StopTimer()
		var calls [][]scriptCall
		for range scripts {
			calls = append(calls, catchUpCalls(b, NewStore(c, testenv.Prefix(b, c)), total, 3000, shift))
		}
		b.StartTimer()
		for i := range calls[0] {
			for o := range scripts {
				v := (o + i) % len(scripts)
				before := redisCPU(b, c)
				if err := scripts[v].Run(ctx, c, calls[v][i].keys, calls[v][i].args...).Err(); err != nil {
					b.Fatal(err)
				}
				cpu[v] += redisCPU(b, c) - before
			}
		}
	}
	events := float64(b.N * total)
	b.ReportMetric(cpu[0]*1e6/events, "redis-µs/event")
	if len(cpu) > 1 {
		b.ReportMetric(cpu[1]*1e6/events, "old-µs/event")
	}
}
