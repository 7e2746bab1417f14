package replay

import (
	"io"
	"testing"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/recording"
)

// BenchmarkWrite measures writing one recorded event as an NDJSON line and as an
// SSE frame: the scan for control characters and the copy into the output buffer.
func BenchmarkWrite(b *testing.B) {
	evs := recording.Events()
	for _, format := range []string{FormatNDJSON, FormatSSE} {
		b.Run(format, func(b *testing.B) {
			w := newWriter(io.Discard, format, "WIKIMEDIA")
			var ev event.Event
			b.SetBytes(int64(len(evs[0].Data)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := w.write(uint64(i), evs[i%len(evs)].Data, &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
