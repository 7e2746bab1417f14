package main

import (
	"runtime/debug"
	"testing"
)

// gcSettings reads the memory limit and GC percent without changing them.
func gcSettings() (limit int64, percent int) {
	limit = debug.SetMemoryLimit(-1)
	percent = debug.SetGCPercent(100)
	debug.SetGCPercent(percent)
	return limit, percent
}

func TestTuneGC(t *testing.T) {
	limit0, percent0 := gcSettings()
	tests := []struct {
		name          string
		env           map[string]string
		percent       int
		limit         int64
		wantGCPercent int
	}{
		{"bridge", nil, copyGCPercent, softMemoryLimit, copyGCPercent},
		{"limit only", nil, 0, softMemoryLimit, percent0},
		{"GOGC set", map[string]string{"GOGC": "50"}, copyGCPercent, softMemoryLimit, percent0},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "1GiB"}, copyGCPercent, limit0, percent0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			restore := tuneGC(func(k string) string { return tt.env[k] }, tt.percent)
			limit, percent := gcSettings()
			restore()
			if limit != tt.limit || percent != tt.wantGCPercent {
				t.Errorf("limit %d, GC percent %d; want %d, %d", limit, percent, tt.limit, tt.wantGCPercent)
			}
			if l, p := gcSettings(); l != limit0 || p != percent0 {
				t.Errorf("after restore: limit %d, GC percent %d; want %d, %d", l, p, limit0, percent0)
			}
		})
	}
}
