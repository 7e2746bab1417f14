package bridge

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wikiflow/wikiflow/internal/retry"
)

// future is a resolved or pending publish outcome.
type future struct {
	ok  chan *jetstream.PubAck
	err chan error
}

func (f *future) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *future) Err() <-chan error            { return f.err }
func (f *future) Msg() *nats.Msg               { return nil }

func pending() *future {
	return &future{ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
}

func acked(seq uint64, dup bool) *future {
	f := pending()
	f.ok <- &jetstream.PubAck{Sequence: seq, Duplicate: dup}
	return f
}

func failed(err error) *future {
	f := pending()
	f.err <- err
	return f
}

// queueOf builds a publisher whose queue holds one entry per spec: "b" published
// without an ack, "s" a skipped record, or a future.
func queueOf(t *testing.T, specs ...any) *publisher {
	t.Helper()
	b, err := New(DefaultConfig(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &publisher{b: b, queue: newRing(len(specs)), last: 1, backoff: retry.NewDoubling(time.Millisecond, time.Second)}
	for i, s := range specs {
		e := p.queue.push(&record{offset: int64(i), id: "id"})
		switch s := s.(type) {
		case string:
			e.bare = s == "b"
			e.r.skip = s == "s"
		case *future:
			e.f = s
		}
	}
	return p
}

func TestAnAckConfirmsThePublishesBeforeIt(t *testing.T) {
	wrongSeq := &jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}
	tests := []struct {
		name      string
		specs     []any
		err       error // what settleDone returns
		settled   int   // entries settled
		published int64
		last      uint64
	}{
		{"confirmed", []any{"b", "b", "s", "b", acked(9, false)}, nil, 5, 4, 9},
		{"ack in flight", []any{"b", "b", pending()}, nil, 0, 0, 1},
		{"chain broke", []any{"b", "b", failed(wrongSeq)}, wrongSeq, 0, 0, 1},
		{"duplicate proves nothing", []any{"b", acked(5, true)}, errUnconfirmed, 0, 0, 1},
		{"no ack after them", []any{"b", "b"}, errUnconfirmed, 0, 0, 1},
		{"send failed after them", []any{"b", errNotSent}, errNotSent, 0, 0, 1},
		{"two groups, second pending", []any{"b", acked(3, false), "b", pending()}, nil, 2, 2, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := queueOf(t, tt.specs...)
			for i, s := range tt.specs {
				if err, ok := s.(error); ok {
					p.queue.at(i).err = err
				}
			}
			err := p.settleDone()
			if !errors.Is(err, tt.err) {
				t.Errorf("settleDone = %v, want %v", err, tt.err)
			}
			if got := len(tt.specs) - p.queue.len(); got != tt.settled {
				t.Errorf("settled %d entries, want %d", got, tt.settled)
			}
			if got := p.b.stats.Published.Load(); got != tt.published {
				t.Errorf("published %d, want %d", got, tt.published)
			}
			if p.last != tt.last {
				t.Errorf("last sequence %d, want %d", p.last, tt.last)
			}
		})
	}
}

func TestAwaitedIsTheFirstAckInFlight(t *testing.T) {
	f := pending()
	p := queueOf(t, "b", "s", f, pending())
	if e := p.awaited(); e == nil || e.f != f {
		t.Errorf("awaited = %v, want the entry at 2", e)
	}
	if e := queueOf(t, "b", "s").awaited(); e != nil {
		t.Errorf("awaited without an ack in flight = %v, want nil", e)
	}
}
