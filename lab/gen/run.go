package gen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// Outputs of the generate command.
const (
	// OutKafka writes the events to the Kafka topic, as ingest would.
	OutKafka = "kafka"
	// OutNDJSON writes the events as NDJSON to a file or stdout.
	OutNDJSON = "ndjson"
	// OutSSE serves the events as an EventStreams endpoint (through the emulator;
	// Run does not handle it).
	OutSSE = "sse"
)

// Config configures a generation run.
type Config struct {
	// Count is the number of events to generate (default 100000).
	Count int
	// Rate is the output rate in events per second; 0 means as fast as possible
	// (default 0). Event times advance at this rate, or at the recorded feed's rate
	// (about 54/s) when it is 0.
	Rate float64
	// Seed makes the run reproducible: the same seed gives the same events
	// (default 1).
	Seed int64
	// Out is where the events go: "kafka", "ndjson" or "sse" (default "kafka").
	Out string
	// File is the NDJSON output file for out=ndjson; empty or "-" is stdout
	// (default "").
	File string
	// TruthFile is where the ground truth is written as JSON; empty disables it
	// (default "gen-truth.json").
	TruthFile string
	// Start is the event time (RFC 3339) of the first event; empty means the time
	// the run starts (default "").
	Start string
	// Kafka is the Kafka connection and topic for out=kafka (default brokers
	// 127.0.0.1:9092, topic wire.DefaultTopic).
	Kafka brokers.Kafka
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Count:     100000,
		Seed:      1,
		Out:       OutKafka,
		TruthFile: "gen-truth.json",
		Kafka:     brokers.Kafka{Brokers: []string{brokers.DefaultKafka}, Topic: wire.DefaultTopic},
	}
}

// Flags registers the generator's flags (with WIKIFLOW_GEN_* environment
// fallbacks) and the Kafka flags on f, bound to c.
func Flags(f *cli.Flags, c *Config) {
	d := DefaultConfig()
	f.Int(&c.Count, "count", "WIKIFLOW_GEN_COUNT", d.Count, "number of events to generate")
	f.Float64(&c.Rate, "rate", "WIKIFLOW_GEN_RATE", d.Rate, "events per second (0 = as fast as possible)")
	f.Int64(&c.Seed, "seed", "WIKIFLOW_GEN_SEED", d.Seed, "random seed; the same seed gives the same events")
	f.String(&c.Out, "out", "WIKIFLOW_GEN_OUT", d.Out, "output: kafka, ndjson or sse")
	f.String(&c.File, "file", "WIKIFLOW_GEN_FILE", d.File, "NDJSON output file for --out=ndjson (empty or - = stdout)")
	f.String(&c.TruthFile, "truth-file", "WIKIFLOW_GEN_TRUTH_FILE", d.TruthFile, "where to write the ground-truth counts as JSON (empty = do not write)")
	f.String(&c.Start, "start", "WIKIFLOW_GEN_START", d.Start, "event time of the first event, RFC 3339 (empty = now)")
	brokers.KafkaFlags(f, &c.Kafka, wire.DefaultTopic)
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Count <= 0 {
		errs = append(errs, fmt.Errorf("count: must be positive, got %d", c.Count))
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		errs = append(errs, fmt.Errorf("rate: must be a finite number >= 0, got %v", c.Rate))
	}
	switch c.Out {
	case OutKafka:
		if err := c.Kafka.Validate(); err != nil {
			errs = append(errs, err)
		}
	case OutNDJSON, OutSSE:
	default:
		errs = append(errs, fmt.Errorf("out: %q is not one of kafka, ndjson, sse", c.Out))
	}
	if _, err := c.StartTime(time.Now()); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// StartTime returns the event time of the first event: Start parsed, or now when
// Start is empty.
func (c Config) StartTime(now time.Time) (time.Time, error) {
	if c.Start == "" {
		return now.UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, c.Start)
	if err != nil {
		return time.Time{}, fmt.Errorf("start: %q is not an RFC 3339 time: %w", c.Start, err)
	}
	return t.UTC(), nil
}

// Run generates cfg.Count events with the default profile and writes them to
// Kafka (out=kafka) or as NDJSON (out=ndjson, to cfg.File or stdout), logging
// progress every second, then writes the ground truth to cfg.TruthFile. On
// cancellation it stops, writes the truth of what was written, and returns nil.
// out=sse is served by the emulator, not by Run.
func Run(ctx context.Context, cfg Config, stdout io.Writer, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log = log.With("component", "gen")
	start, _ := cfg.StartTime(time.Now())
	g := New(DefaultProfile(), cfg.Seed)
	g.SetClock(start, cfg.Rate)

	var done atomic.Int64
	report := func(d int) { done.Store(int64(d)) }
	stopProgress := progressLoop(log, &done, cfg.Count)

	began := time.Now()
	var truth *Truth
	var err error
	switch cfg.Out {
	case OutKafka:
		w, werr := NewKafkaWriter(KafkaConfig{Kafka: cfg.Kafka})
		if werr != nil {
			stopProgress()
			return werr
		}
		log.Info("writing to Kafka", "brokers", cfg.Kafka.Brokers, "topic", cfg.Kafka.Topic, "count", cfg.Count, "rate", cfg.Rate, "seed", cfg.Seed)
		truth, err = WriteKafka(ctx, w, g, cfg.Count, cfg.Rate, report)
		if cerr := w.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close Kafka writer: %w", cerr)
		}
	case OutNDJSON:
		out, closeOut, oerr := openOutput(cfg.File, stdout)
		if oerr != nil {
			stopProgress()
			return oerr
		}
		log.Info("writing NDJSON", "file", cfg.File, "count", cfg.Count, "rate", cfg.Rate, "seed", cfg.Seed)
		truth, err = WriteNDJSON(ctx, out, g, cfg.Count, cfg.Rate, report)
		if cerr := closeOut(); cerr != nil && err == nil {
			err = cerr
		}
	default:
		stopProgress()
		return fmt.Errorf("out=%s is served by the EventStreams emulator, not by gen.Run", cfg.Out)
	}
	stopProgress()
	elapsed := time.Since(began)
	log.Info("generated", "events", truth.Events, "total", cfg.Count, "seconds", elapsed.Seconds(),
		"events_per_s", float64(truth.Events)/max(elapsed.Seconds(), 1e-9), "bot", truth.Bot, "human", truth.Human)
	if cfg.TruthFile != "" {
		if terr := truth.WriteTruth(cfg.TruthFile); terr != nil {
			return errors.Join(err, terr)
		}
		log.Info("truth written", "file", cfg.TruthFile)
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		log.Info("stopped", "reason", ctx.Err())
		return nil
	}
	return err
}

// progressLoop logs done/total and the rate once a second until the returned
// function is called.
func progressLoop(log *slog.Logger, done *atomic.Int64, total int) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		prev, prevAt := int64(0), time.Now()
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				d := done.Load()
				log.Info("progress", "done", d, "total", total,
					"events_per_s", float64(d-prev)/now.Sub(prevAt).Seconds())
				prev, prevAt = d, now
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); wg.Wait() }) }
}

func openOutput(path string, stdout io.Writer) (io.Writer, func() error, error) {
	if path == "" || path == "-" {
		return stdout, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open output: %w", err)
	}
	return f, func() error {
		if err := f.Close(); err != nil {
			return fmt.Errorf("close output %s: %w", path, err)
		}
		return nil
	}, nil
}

// WriteNDJSON writes the next n events of g to w, one per line, at rate events per
// second when rate > 0 (0 = as fast as possible), calling progress (when not nil)
// after each batch. The returned Truth counts the events written.
func WriteNDJSON(ctx context.Context, w io.Writer, g *Generator, n int, rate float64, progress func(done int)) (*Truth, error) {
	truth := NewTruth(g.Seed())
	bw := bufio.NewWriterSize(w, 1<<20)
	size := batchFor(rate)
	pace := pacer{start: time.Now(), rate: rate}
	pending := make([]Info, 0, size)
	for done := 0; done < n; {
		if err := pace.wait(ctx, done); err != nil {
			return truth, flushCount(bw, truth, pending, err)
		}
		k := min(size, n-done)
		for range k {
			bw.Write(g.Next())
			bw.WriteByte('\n')
			pending = append(pending, *g.Last())
		}
		// Flush per batch so that what is counted has been written.
		if err := flushCount(bw, truth, pending, nil); err != nil {
			return truth, err
		}
		pending = pending[:0]
		done += k
		if progress != nil {
			progress(done)
		}
	}
	return truth, nil
}

func flushCount(bw *bufio.Writer, truth *Truth, pending []Info, cause error) error {
	if err := bw.Flush(); err != nil {
		return errors.Join(cause, fmt.Errorf("write NDJSON: %w", err))
	}
	for i := range pending {
		truth.Add(&pending[i])
	}
	return cause
}
