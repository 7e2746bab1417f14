package emulator

import (
	"time"
)

// This file places events in time: the Rebase shifts, how far each Loop pass
// moves event times, the pacing offset of a position and the position of a time.
//
// With Rebase an event is never dated after the moment the recorded pace serves
// it: inside a pass each block's shift is the smallest that any of its events
// needs, and each pass moves event times by the pass's pacing length (rounded
// down to a second), so the feed keeps to the clock pass after pass.

// floorSecond rounds d down (towards minus infinity) to a whole second.
func floorSecond(d time.Duration) time.Duration {
	f := d.Truncate(time.Second)
	if f > d {
		f -= time.Second
	}
	return f
}

// ceilSecond rounds d up to a whole second.
func ceilSecond(d time.Duration) time.Duration { return -floorSecond(-d) }

// rebase computes the per-event shifts for events served from now on at the
// recorded pace. Events are grouped in blocks: a jump of more than gapLimit
// between neighbours starts one (the bundled recording joins blocks recorded years
// apart), and so does an event whose exact shift (its serving moment minus its
// time) differs by more than rebaseDrift from another of the block's (the older
// blocks of the recording have no arrival times and are paced faster than their
// event times advance). Every event of a block gets the block's smallest exact
// shift, rounded down to a second, so no event is dated after it is served and
// none more than about rebaseDrift before. Undated events take the shift of the
// block they sit in.
func (s *Server) rebase(dts []time.Time, now time.Time) {
	s.shifts = make([]time.Duration, s.n)
	start := 0
	var lo, hi time.Duration
	var prev time.Time
	open := false
	flush := func(end int) {
		shift := floorSecond(lo)
		for j := start; j < end; j++ {
			s.shifts[j] = shift
			if !dts[j].IsZero() {
				s.dtMs[j] = dts[j].Add(shift).UnixMilli()
			}
		}
	}
	for i, t := range dts {
		if t.IsZero() {
			continue
		}
		v := now.Add(s.offs[i]).Sub(t)
		if open && (t.Sub(prev) > gapLimit || prev.Sub(t) > gapLimit || max(hi, v)-min(lo, v) > rebaseDrift) {
			flush(i)
			start, open = i, false
		}
		if !open {
			lo, hi, open = v, v, true
		}
		lo, hi, prev = min(lo, v), max(hi, v), t
	}
	flush(s.n)
}

// passStep is how far one Loop pass moves event times on average: the pacing
// length of a pass with Rebase (times follow the clock), else the span of the
// source's times rounded up to a second (passes never overlap in time).
func (s *Server) passStep() time.Duration {
	if s.cfg.Rebase && s.period > 0 {
		return s.period
	}
	return s.span
}

// passShift is how far Loop pass p moves event times (whole seconds).
func (s *Server) passShift(p int64) time.Duration {
	if s.cfg.Rebase && s.period > 0 {
		return floorSecond(time.Duration(p) * s.period)
	}
	return time.Duration(p) * s.span
}

// offset returns the pacing offset of position pos.
func (s *Server) offset(pos int64) time.Duration {
	pass, i := pos/int64(s.n), pos%int64(s.n)
	return time.Duration(pass)*s.period + s.offs[i]
}

// setEpoch fixes the epoch at the first request. When it resumes at position pos
// of a Rebase and Loop server (ingest resuming after the emulator restarted), the
// epoch dates that event now, or up to a second before, rather than ahead of the
// clock by the pacing since position 0.
func (s *Server) setEpoch(pos int64) {
	if !s.cfg.Rebase || !s.cfg.Loop || pos <= 0 {
		return
	}
	pass, i := pos/int64(s.n), pos%int64(s.n)
	s.epoch = -ceilSecond(s.passShift(pass) + s.offs[i])
}

// firstAtOrAfter returns the position of the first event whose meta.dt (Unix ms) is
// at or after ms; past the end it returns the end of the sequence (Len without
// Loop, the start of the pass after the last one searched with Loop).
func (s *Server) firstAtOrAfter(ms int64) int64 {
	ms -= s.epoch.Milliseconds()
	var first, last int64
	if step := s.passStep().Milliseconds(); s.cfg.Loop && step > 0 && ms > s.minMs {
		est := (ms - s.minMs) / step
		back := (s.span.Milliseconds() + step - 1) / step
		first, last = max(est-back, 0), est+1
	}
	for p := first; p <= last; p++ {
		shift := s.passShift(p).Milliseconds()
		for i, dt := range s.dtMs {
			if dt != noTime && dt+shift >= ms {
				return p*int64(s.n) + int64(i)
			}
		}
	}
	if s.cfg.Loop {
		return (last + 1) * int64(s.n)
	}
	return int64(s.n)
}

// endPosition is where a stream starts at the end, as of now: with Rebase the
// position the recorded pace serves now (its events are dated up to now), else
// the first event dated now or later.
func (s *Server) endPosition(now time.Time) int64 {
	if s.rebased.IsZero() {
		return s.firstAtOrAfter(now.UnixMilli())
	}
	due := now.Sub(s.rebased) - s.epoch
	var pass int64
	if s.cfg.Loop && s.period > 0 && due > 0 {
		pass = int64(due / s.period)
		due -= time.Duration(pass) * s.period
	}
	for i, off := range s.offs {
		if off >= due {
			return pass*int64(s.n) + int64(i)
		}
	}
	if s.cfg.Loop {
		return (pass + 1) * int64(s.n)
	}
	return int64(s.n)
}

// eventAt returns the data served at position pos and its meta.dt in Unix ms (or
// noTime): the source's bytes, rewritten for later passes and Rebase.
func (s *Server) eventAt(pos int64) ([]byte, int64) {
	pass, i := pos/int64(s.n), int(pos%int64(s.n))
	data, _ := s.src.Event(i)
	var shift time.Duration
	if s.shifts != nil {
		shift = s.shifts[i]
	}
	move := s.passShift(pass) + s.epoch
	shift += move
	ms := s.dtMs[i]
	if ms != noTime {
		ms += move.Milliseconds()
	}
	var id string
	if pass > 0 {
		id = uuidFor("loop", pass, int64(i))
	}
	if id == "" && shift == 0 {
		return data, ms
	}
	f, ok := locate(data)
	if !ok {
		return data, ms
	}
	return rewrite(data, f, id, shift), ms
}
