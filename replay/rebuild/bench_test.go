package rebuild

import (
	"context"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/lab/gen"
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
		cfg := DefaultConfig()
		cfg.Base = f.base
		cfg.Keep = true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		res, err := New(cfg, f.log, nil).RunWith(ctx, f.nc, f.rc)
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
