package main

import (
	"strings"
	"testing"
	"time"
)

func TestDelayReadsTheOffset(t *testing.T) {
	p := newPubTimes(100, 3)
	p.ns[1].Store(time.Now().Add(-50 * time.Millisecond).UnixNano())
	c := &sseClient{sampled: true}
	c.delay([]byte(`id: [{"topic":"WIKIMEDIA","partition":0,"offset":101}]`+"\n"), p.at)
	c.delay([]byte(`id: [{"topic":"WIKIMEDIA","partition":0,"offset":99}]`+"\n"), p.at)  // before the measurement
	c.delay([]byte(`id: [{"topic":"WIKIMEDIA","partition":0,"offset":102}]`+"\n"), p.at) // not yet published
	if len(c.delays) != 1 || c.delays[0] < 50 || c.delays[0] > 5000 {
		t.Fatalf("delays %v, want one of about 50 ms", c.delays)
	}
}

func TestSummarize(t *testing.T) {
	l := summarize([]float64{5, 1, 3, 2, 4})
	if l.N != 5 || l.P50 != 3 || l.Max != 5 || l.P99 != 5 {
		t.Fatalf("%+v", l)
	}
	if (summarize(nil) != latency{}) {
		t.Fatal("empty input")
	}
}

func TestMarkdownNamesEveryFigure(t *testing.T) {
	r := &results{Clients: 1000, Rate: 50, Seconds: 30, RSSAloneMB: 23.5, RSSPeakMB: 200.25, ExtraClientStatus: 503, CPUWallSeconds: 1}
	md := r.markdown()
	for _, want := range []string{"1000 concurrent", "23.5 MiB", "200.2 MiB", "HTTP 503", "GET /stats"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
