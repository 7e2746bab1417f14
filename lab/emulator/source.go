package emulator

import (
	"time"

	"github.com/wikiflow/wikiflow/internal/recording"
)

// Source is the sequence of events the emulator serves, indexable so that any
// position can be resumed. The bundled recording is one (RecordingSource); a load
// generator is another.
type Source interface {
	// Len returns the number of events; it must be at least 1 and must not change.
	Len() int
	// Event returns event i, 0 <= i < Len(): its raw JSON payload (one object on one
	// line, with meta.id and meta.dt like a recentchange event) and when it happens
	// relative to event 0, which sets the pacing (offsets should not decrease; an
	// event whose offset is earlier than its predecessor's is served without delay).
	// Calls with the same i must return the same bytes. The emulator never modifies
	// the returned slice, and New reads every event once to index its meta.dt.
	Event(i int) (data []byte, offset time.Duration)
}

// RecordingSource returns the bundled real recording (recording.Events()): 2,723
// events, paced at their recorded arrival times.
func RecordingSource() Source {
	return recordingSource(recording.Events())
}

type recordingSource []recording.Event

func (r recordingSource) Len() int { return len(r) }

func (r recordingSource) Event(i int) ([]byte, time.Duration) { return r[i].Data, r[i].Offset }
