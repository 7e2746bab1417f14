package replay

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/gen"
	"github.com/wikiflow/wikiflow/internal/recording"
)

// benchRebuildEvents is how many generated events BenchmarkRebuild replays.
const benchRebuildEvents = 200_000

// BenchmarkRebuild measures a whole rebuild (replay, apply, verify, switch, the old
// namespace kept) of a stream of benchRebuildEvents generated events dated at 100
// events/s, against the projection the live aggregate built from it.
func BenchmarkRebuild(b *testing.B) {
	f := newFixture(b, 0)
	g := gen.New(gen.DefaultProfile(), 11)
	g.SetClock(gen.DefaultStart, 100)
	evs := make([]recording.Event, benchRebuildEvents)
	for i := range evs {
		evs[i] = recording.Event{Line: i + 1, Data: append([]byte(nil), g.Next()...)}
	}
	f.countLive(b, evs)
	b.ResetTimer()
	for b.Loop() {
		cfg := DefaultRebuildConfig()
		cfg.Base = f.base
		cfg.Keep = true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		res, err := NewRebuilder(cfg, f.log, nil).RunWith(ctx, f.nc, f.rc)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		if !res.Switched || res.Events != int64(len(evs)) {
			b.Fatalf("result %+v", res)
		}
		time.Sleep(time.Second) // namespaces are named by the second
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}

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
