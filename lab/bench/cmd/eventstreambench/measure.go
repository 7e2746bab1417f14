package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wikiflow/wikiflow/lab/bench"
)

// measure runs the phases: the API alone, N clients connected and idle, N
// clients while events are published, and after the clients left.
func measure(ctx context.Context, o options, e *env) (*results, error) {
	r := &results{Date: time.Now().UTC().Format(time.RFC3339), Clients: o.clients, Rate: o.rate, Seconds: o.duration.Seconds(),
		RecordedEvents: len(e.raws), CPUs: runtime.NumCPU()}
	pid := e.api.Pid()
	statsURL := e.apiURL + "/stats?window=1h&by=wiki&top=10"
	if _, err := statsLatency(ctx, statsURL, time.Second); err != nil { // warm-up
		return nil, err
	}
	var err error
	if r.StatsAlone, err = statsLatency(ctx, statsURL, 5*time.Second); err != nil {
		return nil, err
	}
	r.RSSAloneMB = rssMB(pid)

	info, err := e.js.Stream(ctx, "WIKIMEDIA")
	if err != nil {
		return nil, err
	}
	total := int(o.rate * o.duration.Seconds())
	pub := newPubTimes(info.CachedInfo().State.LastSeq+1, total)
	start := time.Now()
	clients, err := openClients(ctx, e.apiURL+"/v2/stream/recentchange", o.clients, pub.at)
	if err != nil {
		return nil, fmt.Errorf("open %d clients: %w", o.clients, err)
	}
	defer closeClients(clients)
	r.ConnectSeconds = time.Since(start).Seconds()
	logf("%d clients connected in %.1f s", o.clients, r.ConnectSeconds)
	time.Sleep(2 * time.Second)
	r.RSSIdleMB = rssMB(pid)
	r.ExtraClientStatus = extraClient(e.apiURL + "/v2/stream/recentchange")

	cpu0, self0, t0 := cpuSeconds(pid), cpuSeconds(os.Getpid()), time.Now()
	stopSampling := sampleRSS(pid)
	var wg sync.WaitGroup
	var pubErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		pubErr = publishPaced(ctx, e, pub, o.rate, total)
	}()
	r.StatsWith, err = statsLatency(ctx, statsURL, o.duration)
	wg.Wait()
	if err == nil {
		err = pubErr
	}
	if err != nil {
		stopSampling()
		return nil, err
	}
	r.Published = total
	r.waitDelivered(clients, total, 60*time.Second)
	r.RSSPeakMB = stopSampling()
	r.APICPUSeconds, r.CPUWallSeconds = cpuSeconds(pid)-cpu0, time.Since(t0).Seconds()
	r.BenchCPUSeconds = cpuSeconds(os.Getpid()) - self0
	r.LoadAverage = loadAverage()
	r.collectDelays(clients)

	closeClients(clients)
	r.ClientsLeftSeconds = waitGauge(e.apiURL+"/metrics", "wikiflow_api_events_clients 0", 60*time.Second)
	time.Sleep(2 * time.Second)
	r.RSSAfterMB = rssMB(pid)
	return r, nil
}

// pubTimes remembers when each event of the measurement was published.
type pubTimes struct {
	first uint64
	ns    []atomic.Int64
}

func newPubTimes(first uint64, n int) *pubTimes {
	return &pubTimes{first: first, ns: make([]atomic.Int64, n)}
}

func (p *pubTimes) at(seq uint64) time.Time {
	if seq < p.first || seq-p.first >= uint64(len(p.ns)) {
		return time.Time{}
	}
	if n := p.ns[seq-p.first].Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// publishPaced publishes total events (the recording, again and again) at rate.
func publishPaced(ctx context.Context, e *env, p *pubTimes, rate float64, total int) error {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := 0; i < total; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		p.ns[i].Store(time.Now().UnixNano())
		if _, err := e.publish(ctx, e.raws[i%len(e.raws):i%len(e.raws)+1], false); err != nil {
			return err
		}
	}
	return nil
}

// statsLatency requests GET url one after another for d and returns the
// latencies; any failure ends the measurement.
func statsLatency(ctx context.Context, url string, d time.Duration) (latency, error) {
	var ms []float64
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		t0 := time.Now()
		resp, err := http.Get(url)
		if err != nil {
			return latency{}, fmt.Errorf("GET %s: %w", url, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return latency{}, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
		}
		ms = append(ms, float64(time.Since(t0).Microseconds())/1000)
		time.Sleep(20 * time.Millisecond)
	}
	return summarize(ms), nil
}

// extraClient opens one client beyond the limit and returns its HTTP status.
func extraClient(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// sampleRSS samples the process's RSS every 250 ms until stop, which returns the peak.
func sampleRSS(pid int) (stop func() float64) {
	var peak float64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, rssMB(pid))
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 { close(done); wg.Wait(); return peak }
}

func rssMB(pid int) float64 {
	s, err := bench.ReadProc(pid)
	if err != nil {
		return 0
	}
	return float64(s.RSS) / (1 << 20)
}

func cpuSeconds(pid int) float64 {
	s, _ := bench.ReadProc(pid)
	return s.CPUSeconds
}

// waitGauge polls a metrics page until it has the line; it returns the seconds
// it took (-1 when it never did).
func waitGauge(url, line string, d time.Duration) float64 {
	start := time.Now()
	for time.Since(start) < d {
		if resp, err := http.Get(url); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains("\n"+string(b), "\n"+line+"\n") {
				return time.Since(start).Seconds()
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return -1
}

// loadAverage is the machine's one-minute load average ("" when unknown).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
