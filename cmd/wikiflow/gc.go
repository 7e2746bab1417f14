package main

import "runtime/debug"

// softMemoryLimit is the soft memory limit of the stages that allocate fast
// (aggregate, rebuild, bridge) unless GOMEMLIMIT is set: as the heap nears it
// the collector works harder, instead of letting the heap double past 100 MiB.
const softMemoryLimit = 80 << 20

// bridgeGCPercent is the bridge's GOGC unless GOGC or GOMEMLIMIT is set: its live
// heap is small (the records in flight), so collecting at 4× rather than 2× of
// it costs about 25 MiB of resident memory and saves 1-1.8 µs of CPU per event
// (600,000 events bridged alone: 8.8 → 7.1-7.8 µs, 40 → 64-67 MiB).
const bridgeGCPercent = 400

// tuneGC sets softMemoryLimit unless GOMEMLIMIT is set and, when percent > 0,
// the GC percent unless GOGC is set too, for the life of a command; the returned
// function restores what was there. Nothing changes when GOMEMLIMIT is set.
func tuneGC(getenv env, percent int) (restore func()) {
	if getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	oldLimit := debug.SetMemoryLimit(softMemoryLimit)
	oldPercent := -2
	if percent > 0 && getenv("GOGC") == "" {
		oldPercent = debug.SetGCPercent(percent)
	}
	return func() {
		debug.SetMemoryLimit(oldLimit)
		if oldPercent != -2 {
			debug.SetGCPercent(oldPercent)
		}
	}
}
