package chaos

import (
	"context"
	"fmt"
	"github.com/wikiflow/wikiflow/internal/stack"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Repair is one time the aggregate stopped counting because the stream lost
// messages it had counted, and what the run did about it.
type Repair struct {
	// Refusal is the aggregate's error log line.
	Refusal string `json:"refusal"`
	// Attempts counts the `wikiflow rebuild --force` runs; LastFailure is the
	// error of the last one that failed (most often: the stream did not yet hold
	// the watermark again while the bridge copied the lost events from Kafka).
	Attempts    int    `json:"attempts"`
	LastFailure string `json:"last_failure,omitempty"`
	// Rebuilt is what the rebuild that worked printed.
	Rebuilt string `json:"rebuilt,omitempty"`
	// Resumed is how long after the refusal was seen counting resumed ("" when
	// it had not by the end of the run).
	Resumed string `json:"resumed,omitempty"`
}

// String sums the repair up.
func (p Repair) String() string {
	out := fmt.Sprintf("the aggregate stopped counting: %s; %d rebuild run(s)", p.Refusal, p.Attempts)
	if p.LastFailure != "" {
		out += fmt.Sprintf(" (last failure: %s)", p.LastFailure)
	}
	if p.Rebuilt != "" {
		out += "; " + p.Rebuilt
	}
	if p.Resumed != "" {
		return out + "; counting resumed " + p.Resumed + " after the refusal"
	}
	return out + "; counting had not resumed at the end of the run"
}

// rebuildRetry is the pause after a failed rebuild, and rebuildSettle how long
// after one that worked the aggregate gets to notice the switch.
const (
	rebuildRetry  = 3 * time.Second
	rebuildSettle = 15 * time.Second
)

// repair does what the aggregate's error log says when it stops counting after
// the stream lost messages it had counted (wikiflow_aggregate_stream_tail_lost
// is 1): run `wikiflow rebuild --force` until a rebuild switched and the aggregate
// counts again. Each such episode goes into the report.
func (r *runner) repair(ctx context.Context) {
	var cur *Repair
	var since, rebuilt time.Time
	defer func() {
		if cur != nil {
			r.addRepair(*cur)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		m, err := scrape(ctx, r.b.ports.Aggregate)
		if err != nil {
			continue
		}
		lost := m["wikiflow_aggregate_stream_tail_lost"] == 1
		switch {
		case lost && cur == nil:
			cur, since, rebuilt = &Repair{Refusal: lastErrorLine(r.services["aggregate"].Log)}, time.Now(), time.Time{}
			r.say("the aggregate stopped counting: %s", cur.Refusal)
		case !lost && cur != nil:
			cur.Resumed = time.Since(since).Round(100 * time.Millisecond).String()
			r.say("the aggregate counts again, %s after it stopped", cur.Resumed)
			r.addRepair(*cur)
			cur = nil
			continue
		case !lost:
			continue
		}
		if !rebuilt.IsZero() && time.Since(rebuilt) < rebuildSettle {
			continue
		}
		if r.rebuild(ctx, cur) {
			rebuilt = time.Now()
		}
	}
}

func (r *runner) addRepair(p Repair) {
	r.mu.Lock()
	r.rep.Repairs = append(r.rep.Repairs, p)
	r.mu.Unlock()
}

// rebuild runs `wikiflow rebuild --force` once and reports whether it worked.
func (r *runner) rebuild(ctx context.Context, p *Repair) bool {
	run := filepath.Join(r.cfg.Home, "run")
	proc := stack.NewProc("rebuild", run, filepath.Join(run, "rebuild.log"), r.cfg.Bin, "rebuild",
		"--nats-url", r.b.natsURL(), "--redis-url", r.b.redisURL(), "--hash", r.cfg.Hash,
		"--force", "--drop-after", "2s", "--timeout", "2m")
	r.addProc(proc)
	p.Attempts++
	if err := proc.Start(); err != nil {
		p.LastFailure = err.Error()
		return false
	}
	_, done := proc.Running()
	select {
	case <-done:
	case <-ctx.Done():
		proc.Kill()
		return false
	}
	out := lastStart(proc.Log)
	if err := proc.ExitError(); err != nil {
		p.LastFailure = lastErrorLine(proc.Log)
		if p.LastFailure == "" {
			p.LastFailure = err.Error()
		}
		r.say("rebuild failed (%s); trying again in %s", p.LastFailure, rebuildRetry)
		select {
		case <-ctx.Done():
		case <-time.After(rebuildRetry):
		}
		return false
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "rebuilt ") || strings.HasPrefix(l, "switched ") || strings.HasPrefix(l, "verified ") {
			lines = append(lines, l)
		}
	}
	p.Rebuilt = strings.Join(lines, "; ")
	r.say("rebuild: %s", p.Rebuilt)
	return true
}

// lastStart returns what a proc's log holds since its last start.
func lastStart(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndex(s, stack.StartMark); i >= 0 {
		s = s[i:]
	}
	return s
}
