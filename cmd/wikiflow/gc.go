package main

import "runtime/debug"

// softMemoryLimit is the soft memory limit of the stages that allocate fast
// (ingest, bridge, aggregate, rebuild) unless GOMEMLIMIT is set: as the heap nears it
// the collector works harder, instead of letting the heap double past 100 MiB.
const softMemoryLimit = 80 << 20

// copyGCPercent is the GOGC of ingest and the bridge unless GOGC or GOMEMLIMIT is
// set: their live heap is small (the events in flight), so collecting at 5× rather
// than 2× of it costs 25-30 MiB of resident memory and saves CPU per event
// (alone, medians of 2-3 rounds: the bridge bridging 600,000 events 8.8 → 7.4 µs,
// peak RSS 40 → 66 MiB; ingest reading 300,000 generated events 13.6 → 11.3 µs,
// 44 → 74 MiB).
const copyGCPercent = 400

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
