package bench

import (
	"fmt"
	"math"
	"strings"
)

// Peers is the comparison of wikiflow with other ways of computing the same counts
// from the same Kafka backlog, and with the floors (what the brokers alone allow).
type Peers struct {
	// Run and Date identify the run that measured the peers, which can be a run
	// of its own (--only peers) merged into the results of an earlier full run.
	Run  string `json:"run,omitempty"`
	Date string `json:"date,omitempty"`
	// Events is the size of the backlog every system read.
	Events int64 `json:"events"`
	// Partitions is the number of partitions of the backlog's topic.
	Partitions int `json:"partitions"`
	// Rounds is the number of rounds; each round runs every system once, in turn.
	Rounds int `json:"rounds"`
	// Systems are the measured systems and floors, in the order of a round.
	Systems []PeerResult `json:"systems"`
}

// Kinds of PeerResult.
const (
	// PeerWikiflow is wikiflow's own entry, the reference of the ratios.
	PeerWikiflow = "wikiflow"
	// PeerSystem is another system computing the counts.
	PeerSystem = "peer"
	// PeerFloor is a raw broker operation without any processing.
	PeerFloor = "floor"
)

// PeerWikiflowB is the Key of a second wikiflow binary measured in the same
// rounds (wfbench --ab-bin), for old-against-new comparisons.
const PeerWikiflowB = "wikiflow-b"

// FloorKafkaKey is the Key of the Kafka read floor, the reference of "÷ floor".
const FloorKafkaKey = "floor_kafka"

// PeerResult is what one system measured over the rounds.
type PeerResult struct {
	// Key identifies the system (wikiflow, python, benthos, benthos_t8, kstreams, floor_kafka, ...).
	Key string `json:"key"`
	// Name describes it.
	Name string `json:"name"`
	// Kind is PeerWikiflow, PeerSystem or PeerFloor.
	Kind string `json:"kind"`
	// Guarantee is its delivery guarantee as configured (exactly once, at least once, —).
	Guarantee string `json:"guarantee"`
	// Rates are the events/s of each round; Rate summarises them.
	Rates []float64 `json:"rates"`
	Rate  Summary   `json:"rate"`
	// CPUmsPer1k is the CPU time of the system's own processes per 1,000 events, ms.
	CPUmsPer1k Summary `json:"cpu_ms_per_1k_events"`
	// KafkaCPUmsPer1k, RedisCPUmsPer1k and NATSCPUmsPer1k are the brokers' CPU time
	// during the system's run per 1,000 events, ms (N = 0: not sampled).
	KafkaCPUmsPer1k Summary `json:"kafka_cpu_ms_per_1k_events"`
	RedisCPUmsPer1k Summary `json:"redis_cpu_ms_per_1k_events"`
	NATSCPUmsPer1k  Summary `json:"nats_cpu_ms_per_1k_events"`
	// PeakRSSMB is the largest peak RSS of its processes, MiB.
	PeakRSSMB Summary `json:"peak_rss_mb"`
	// Checks are the count checks of each round against the generator's truth.
	Checks []CountCheck `json:"checks,omitempty"`
	// Note says why the system was not measured, or anything else of note.
	Note string `json:"note,omitempty"`
}

// CountCheck compares the counts of one run with the generator's ground truth.
type CountCheck struct {
	// What names the counted table (per domain, per wiki, type and minute).
	What string `json:"what"`
	// Expected and Counted are the totals; Over and Under sum the keys' excess and
	// shortfall (both zero when every key is exact).
	Expected int64 `json:"expected"`
	Counted  int64 `json:"counted"`
	Over     int64 `json:"over"`
	Under    int64 `json:"under"`
}

// Compare returns the check of counted against expected, key by key.
func Compare(what string, expected, counted map[string]int64) CountCheck {
	c := CountCheck{What: what}
	for k, e := range expected {
		c.Expected += e
		if d := counted[k] - e; d > 0 {
			c.Over += d
		} else {
			c.Under -= d
		}
	}
	for k, n := range counted {
		c.Counted += n
		if _, ok := expected[k]; !ok {
			c.Over += n
		}
	}
	return c
}

// String says "exact", "over-count by N", "under-count by N" or both.
func (c CountCheck) String() string {
	var parts []string
	if c.Over > 0 {
		parts = append(parts, "over-count by "+num(float64(c.Over)))
	}
	if c.Under > 0 {
		parts = append(parts, "under-count by "+num(float64(c.Under)))
	}
	if len(parts) == 0 {
		return "exact"
	}
	return strings.Join(parts, ", ")
}

// Verdict summarises the checks of every round: "exact (3/3 runs)" or the worst run.
func (p PeerResult) Verdict() string {
	if len(p.Checks) == 0 {
		return "—"
	}
	byWhat := map[string][]CountCheck{}
	var order []string
	for _, c := range p.Checks {
		if _, ok := byWhat[c.What]; !ok {
			order = append(order, c.What)
		}
		byWhat[c.What] = append(byWhat[c.What], c)
	}
	var out []string
	for _, w := range order {
		cs := byWhat[w]
		worst := cs[0]
		bad := 0
		for _, c := range cs {
			if c.Over+c.Under > 0 {
				bad++
			}
			if c.Over+c.Under > worst.Over+worst.Under {
				worst = c
			}
		}
		s := fmt.Sprintf("%s: %s (%d/%d runs exact)", w, worst, len(cs)-bad, len(cs))
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// ratio formats a/b as "2.50×" ("—" when either is missing).
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func (p *Peers) find(key string) (PeerResult, bool) {
	for _, s := range p.Systems {
		if s.Key == key {
			return s, true
		}
	}
	return PeerResult{}, false
}

func cpuCell(s Summary) string {
	if s.N == 0 {
		return "—"
	}
	c := dec(s.Median, 1)
	if s.N > 1 {
		c += " (" + dec(s.Min, 1) + " – " + dec(s.Max, 1) + ")"
	}
	return c
}
