package bridge

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

// BenchmarkBridge measures how fast a backlog of 8,169 events (the recording three
// times over, each copy with its own meta.ids) is bridged into a fresh stream; one
// op is the whole backlog, and the events/s metric is the throughput.
func BenchmarkBridge(b *testing.B) {
	addr := testenv.KafkaAddr(b)
	e := &env{t: b, addr: addr, topic: testenv.Topic(b, addr, 3), sent: map[string]sent{}}
	base := events(b)
	var all []sent
	for copyN := range 3 {
		for _, s := range base {
			newID := fmt.Sprintf("%d%s", copyN, s.ev.ID[1:])
			s.raw = bytes.Replace(s.raw, []byte(s.ev.ID), []byte(newID), 1)
			s.ev.ID = newID
			all = append(all, s)
		}
	}
	e.produce(all)
	for b.Loop() {
		b.StopTimer()
		url, _ := testenv.NATS(b)
		e.url = url
		js := jsFor(b, url)
		b.StartTimer()
		begin := time.Now()
		r := start(b, e.config())
		waitBridged(b, js, r, uint64(len(all)))
		b.StopTimer()
		b.ReportMetric(float64(len(all))/time.Since(begin).Seconds(), "events/s")
		if err := r.halt(b); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
