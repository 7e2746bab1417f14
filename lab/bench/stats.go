// Package bench holds the measurement helpers of wikiflow's end-to-end benchmark
// (lab/bench/cmd/wfbench): percentiles and summaries, /proc parsing, Prometheus text
// parsing, freshness computation, HTTP load generation, and the rendering of the
// results as JSON and Markdown. The harness itself lives in the wfbench command, so
// `go test ./...` never runs it.
package bench

import (
	"math"
	"sort"
)

// Summary is the median and the spread of repeated measurements of one figure.
type Summary struct {
	// N is the number of measurements.
	N int `json:"n"`
	// Median is the median (the mean of the two middle values for an even N).
	Median float64 `json:"median"`
	// Min is the smallest measurement.
	Min float64 `json:"min"`
	// Max is the largest measurement.
	Max float64 `json:"max"`
}

// Summarize returns the summary of xs; the zero Summary when xs is empty.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Summary{N: n, Median: med, Min: s[0], Max: s[n-1]}
}

// Percentile returns the p-th percentile (0 <= p <= 100) of xs by the nearest-rank
// method: the smallest value such that at least p % of the values are at or below
// it. xs need not be sorted; it is not modified. NaN when xs is empty.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return PercentileSorted(s, p)
}

// PercentileSorted is Percentile for an already sorted slice.
func PercentileSorted(s []float64, p float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	if p <= 0 {
		return s[0]
	}
	if p >= 100 {
		return s[len(s)-1]
	}
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	return s[rank-1]
}
