package bench

import (
	"sort"
)

// Visibility records that the projection's event count was Count when the poller
// read it at At (Unix nanoseconds). A poller appends one whenever the count changes.
type Visibility struct {
	// At is the wall-clock time of the read, Unix nanoseconds.
	At int64
	// Count is the number of events the projection had applied.
	Count int64
}

// Freshness returns, for every event i (0-based, in stream order, received[i] its
// receipt time in Unix nanoseconds), the delay in milliseconds until it was visible:
// the first observation whose count is at least i+1. Events never seen visible, and
// the first skip events (warm-up), are left out. vis must be in time order with
// non-decreasing counts.
func Freshness(received []int64, vis []Visibility, skip int) []float64 {
	out := make([]float64, 0, len(received))
	for i, r := range received {
		if i < skip || r == 0 {
			continue
		}
		need := int64(i + 1)
		j := sort.Search(len(vis), func(k int) bool { return vis[k].Count >= need })
		if j == len(vis) {
			break
		}
		out = append(out, float64(vis[j].At-r)/1e6)
	}
	return out
}
