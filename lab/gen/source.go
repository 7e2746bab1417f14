package gen

import (
	"sync"
	"time"
)

// Source serves generated events by index, for the EventStreams emulator: event i
// is the same as the i-th event of a Generator with the same profile, seed and
// clock, and is due at offset i/rate from the start of serving. Nothing is stored:
// each event is regenerated on demand. A Source is safe for concurrent use.
type Source struct {
	p     *Profile
	seed  int64
	n     int
	rate  float64
	start time.Time
	pool  sync.Pool
}

// NewSource returns a source of n events drawn from p with seed, served at rate
// events per second (rate <= 0: all due at once). Event times start at
// DefaultStart and advance at rate (or at the profile's rate when rate <= 0); use
// WithStart to date them from another time. NewSource panics if p fails Check.
func NewSource(p *Profile, seed int64, n int, rate float64) *Source {
	if err := p.Check(); err != nil {
		panic("gen.NewSource: invalid profile: " + err.Error())
	}
	s := &Source{p: p, seed: seed, n: max(0, n), rate: rate, start: DefaultStart}
	s.pool.New = s.newGenerator
	return s
}

// WithStart sets the event time of event 0 and returns s. Call it before the
// first Event.
func (s *Source) WithStart(t time.Time) *Source {
	s.start = t
	return s
}

func (s *Source) newGenerator() any {
	g := New(s.p, s.seed)
	g.SetClock(s.start, s.rate)
	return g
}

// Len returns the number of events.
func (s *Source) Len() int { return s.n }

// Event returns event i (0 <= i < Len) as one line of JSON, in a new slice the
// caller owns, and when it is due relative to the start of serving.
func (s *Source) Event(i int) (data []byte, offset time.Duration) {
	g := s.pool.Get().(*Generator)
	data = append([]byte(nil), g.At(i)...)
	s.pool.Put(g)
	return data, s.Offset(i)
}

// Offset returns when event i is due relative to the start: i/rate, or 0 when the
// rate is not positive.
func (s *Source) Offset(i int) time.Duration {
	if s.rate <= 0 {
		return 0
	}
	return time.Duration(float64(i) / s.rate * float64(time.Second))
}
