package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"
)

// LoadResult is the outcome of an HTTP load test of one URL.
type LoadResult struct {
	// Tool names what generated the load ("wrk" or "go").
	Tool string `json:"tool"`
	// Connections is the number of concurrent keep-alive connections.
	Connections int `json:"connections"`
	// Seconds is the measured duration.
	Seconds float64 `json:"seconds"`
	// Requests is the number of completed requests.
	Requests int64 `json:"requests"`
	// Errors counts transport errors and non-2xx answers.
	Errors int64 `json:"errors"`
	// RPS is Requests / Seconds.
	RPS float64 `json:"rps"`
	// P50ms and P99ms are latency percentiles in milliseconds.
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
}

var (
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkTotal    = regexp.MustCompile(`(?m)^\s*([0-9]+) requests in ([0-9.]+)(us|ms|s|m)\b`)
	wrkPct      = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.0+)?%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+([0-9]+)`)
	wrkSockErrs = regexp.MustCompile(`(?m)Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)`)
)

func wrkDuration(v, unit string) (float64, error) {
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, err
	}
	switch unit {
	case "us":
		return x / 1000, nil
	case "ms":
		return x, nil
	case "s":
		return x * 1000, nil
	case "m":
		return x * 60000, nil
	}
	return 0, fmt.Errorf("unit %q", unit)
}

// ParseWrk reads the output of `wrk --latency`: throughput, total requests,
// p50/p99 latency and errors (socket errors plus non-2xx answers).
func ParseWrk(out string) (LoadResult, error) {
	r := LoadResult{Tool: "wrk"}
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return r, errors.New("wrk output: no Requests/sec line")
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkTotal.FindStringSubmatch(out); m != nil {
		r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
		ms, err := wrkDuration(m[2], m[3])
		if err == nil {
			r.Seconds = ms / 1000
		}
	}
	for _, m := range wrkPct.FindAllStringSubmatch(out, -1) {
		ms, err := wrkDuration(m[2], m[3])
		if err != nil {
			return r, fmt.Errorf("wrk output: percentile %s: %w", m[1], err)
		}
		if m[1] == "50" {
			r.P50ms = ms
		} else {
			r.P99ms = ms
		}
	}
	if r.P50ms == 0 && r.P99ms == 0 {
		return r, errors.New("wrk output: no latency distribution (run wrk with --latency)")
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		r.Errors += n
	}
	if m := wrkSockErrs.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.Errors += n
		}
	}
	return r, nil
}

// Load sends GET url over conns keep-alive connections, each waiting for its
// answer before the next request, for d, and reports throughput and latency.
func Load(ctx context.Context, url string, conns int, d time.Duration) (LoadResult, error) {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu      sync.Mutex
		lat     []float64
		nErr    int64
		wg      sync.WaitGroup
		started = time.Now()
	)
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]float64, 0, 4096)
			var errs int64
			for ctx.Err() == nil {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if err != nil {
					errs++
					break
				}
				t0 := time.Now()
				resp, err := cl.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					errs++
					continue
				}
				local = append(local, float64(time.Since(t0))/1e6)
			}
			mu.Lock()
			lat = append(lat, local...)
			nErr += errs
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(started).Seconds()
	sort.Float64s(lat)
	r := LoadResult{Tool: "go", Connections: conns, Seconds: el, Requests: int64(len(lat)), Errors: nErr}
	if el > 0 {
		r.RPS = float64(len(lat)) / el
	}
	if len(lat) == 0 {
		return r, fmt.Errorf("load %s: no successful request (%d errors)", url, nErr)
	}
	r.P50ms = PercentileSorted(lat, 50)
	r.P99ms = PercentileSorted(lat, 99)
	return r, nil
}

// WrkArgs returns the arguments of a wrk run equivalent to Load.
func WrkArgs(url string, conns int, d time.Duration, threads int) []string {
	return []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns),
		"-d" + strconv.Itoa(int(d.Round(time.Second)/time.Second)) + "s", "--latency", url}
}
