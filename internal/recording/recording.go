// Package recording bundles real recordings of the Wikimedia EventStreams
// recentchange feed (see data/SOURCES.md for their origin and licences): 2,723 raw
// event payloads, the arrival times of the consecutive block for realistic pacing,
// and a verbatim SSE capture. The emulator serves them; tests count them.
package recording

import (
	"bufio"
	"bytes"
	_ "embed"
	"strconv"
	"strings"
	"time"
)

//go:embed data/recentchange.ndjson
var ndjson []byte

//go:embed data/recentchange.recv_ns.tsv
var recvTSV []byte

//go:embed data/recentchange-2022-12-11.sse
var sseCapture []byte

// Event is one recorded event: its raw payload and, where known, when it arrived
// relative to the start of its recording.
type Event struct {
	// Line is the 1-based line number in recentchange.ndjson.
	Line int
	// Data is the raw JSON payload, byte for byte as recorded.
	Data []byte
	// Offset is the arrival time relative to the recording's first event; events
	// without a recorded arrival time are spaced evenly (see Events).
	Offset time.Duration
}

// Events returns every recorded event in file order. Events of the consecutive block
// carry their recorded arrival offsets; the earlier blocks, recorded without arrival
// times, are spaced 20 ms apart before it.
func Events() []Event {
	recv := arrivals()
	var out []Event
	sc := bufio.NewScanner(bytes.NewReader(ndjson))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		out = append(out, Event{Line: line, Data: append([]byte(nil), b...)})
	}
	// Offsets: the untimed prefix is paced at 20 ms, then the timed block follows
	// with its own spacing.
	var base time.Duration
	var first time.Duration = -1
	for i := range out {
		ns, ok := recv[out[i].Line]
		if !ok {
			out[i].Offset = time.Duration(i) * 20 * time.Millisecond
			base = out[i].Offset + 20*time.Millisecond
			continue
		}
		if first < 0 {
			first = ns
		}
		out[i].Offset = base + ns - first
	}
	return out
}

func arrivals() map[int]time.Duration {
	m := map[int]time.Duration{}
	for i, row := range strings.Split(string(recvTSV), "\n") {
		if i == 0 || row == "" {
			continue
		}
		f := strings.Split(row, "\t")
		if len(f) != 2 {
			continue
		}
		line, err1 := strconv.Atoi(f[0])
		ns, err2 := strconv.ParseInt(strings.TrimSpace(f[1]), 10, 64)
		if err1 == nil && err2 == nil {
			m[line] = time.Duration(ns)
		}
	}
	return m
}

// NDJSON returns the raw recentchange.ndjson file.
func NDJSON() []byte { return ndjson }

// SSECapture returns the verbatim 2022 SSE capture (three frames, the last one
// unterminated).
func SSECapture() []byte { return sseCapture }
