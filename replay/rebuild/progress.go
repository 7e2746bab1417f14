package rebuild

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a one-line progress bar with rate and ETA.
type progress struct {
	w      io.Writer
	label  string
	start  time.Time
	total  uint64
	events int64
	seq    uint64
	last   time.Time
}

func (p *progress) add(n int, seq uint64) {
	p.events += int64(n)
	p.seq = seq
	if p.w == nil || time.Since(p.last) < 500*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw("\r")
}

func (p *progress) draw(end string) {
	el := time.Since(p.start).Seconds()
	rate := float64(p.events) / max(el, 1e-9)
	frac := 1.0
	if p.total > 0 {
		frac = min(float64(p.seq)/float64(p.total), 1)
	}
	const width = 30
	filled := int(frac * width)
	eta := "--"
	if rate > 0 && p.total > p.seq {
		eta = (time.Duration(float64(p.total-p.seq) / rate * float64(time.Second))).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "%s [%s%s] %3.0f%%  %d events  %.0f events/s  ETA %s%s",
		p.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), frac*100, p.events, rate, eta, end)
}

func (p *progress) done() {
	if p.w != nil {
		p.draw("\n")
	}
}
