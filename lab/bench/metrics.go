package bench

import (
	"strconv"
	"strings"
)

// MetricValue returns the value of the sample called name (without labels) in a
// Prometheus text exposition; ok is false when there is none.
func MetricValue(text, name string) (v float64, ok bool) {
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != name {
			continue
		}
		x, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return 0, false
		}
		return x, true
	}
	return 0, false
}
