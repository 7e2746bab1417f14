package gen

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Truth is the ground truth of a generation run: how many events were generated
// (or, for WriteKafka, acknowledged by Kafka) in total, per domain, per type and
// by bots and humans. Its JSON form is what end-to-end tests compare the
// pipeline's numbers with.
type Truth struct {
	// Events is the number of events.
	Events int64 `json:"events"`
	// PerDomain counts events per meta.domain.
	PerDomain map[string]int64 `json:"per_domain"`
	// PerType counts events per type.
	PerType map[string]int64 `json:"per_type"`
	// Bot and Human count events with bot true and false.
	Bot   int64 `json:"bot"`
	Human int64 `json:"human"`
	// Seed is the generator's seed.
	Seed int64 `json:"seed"`
}

// NewTruth returns an empty Truth for a run with the given seed.
func NewTruth(seed int64) *Truth {
	return &Truth{PerDomain: map[string]int64{}, PerType: map[string]int64{}, Seed: seed}
}

// Add counts one event.
func (t *Truth) Add(in *Info) {
	t.Events++
	t.PerDomain[in.Domain]++
	t.PerType[in.Type]++
	if in.Bot {
		t.Bot++
	} else {
		t.Human++
	}
}

// WriteTruth writes t as JSON to path, atomically (through a temporary file in
// the same directory).
func (t *Truth) WriteTruth(path string) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("encode truth: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".truth-*.json")
	if err != nil {
		return fmt.Errorf("write truth %s: %w", path, err)
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write truth %s: %w", path, err)
	}
	return nil
}

// ReadTruth reads a Truth written by WriteTruth.
func ReadTruth(path string) (*Truth, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read truth: %w", err)
	}
	t := NewTruth(0)
	if err := json.Unmarshal(b, t); err != nil {
		return nil, fmt.Errorf("read truth %s: %w", path, err)
	}
	if t.PerDomain == nil {
		t.PerDomain = map[string]int64{}
	}
	if t.PerType == nil {
		t.PerType = map[string]int64{}
	}
	return t, nil
}
