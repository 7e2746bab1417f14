package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// DomainDiff is one domain whose count differs from the ground truth.
type DomainDiff struct {
	// Domain is the meta.domain.
	Domain string `json:"domain"`
	// Expected is the ground truth's count.
	Expected int64 `json:"expected"`
	// Counted is the count in Redis's legacy hash.
	Counted int64 `json:"counted"`
	// Difference is Counted - Expected.
	Difference int64 `json:"difference"`
}

// Second is the outcome of a second bridge or aggregate that ran beside the first.
type Second struct {
	// Name is bridge or aggregate.
	Name string `json:"name"`
	// Ran is how long it ran.
	Ran string `json:"ran"`
	// Metrics are its counters just before it was stopped.
	Metrics map[string]int64 `json:"metrics"`
	// Outcome sums it up.
	Outcome string `json:"outcome"`
}

// Report is the result of a run.
type Report struct {
	// Topology is single or cluster.
	Topology string `json:"topology"`
	// Seed is the seed of the schedule and of the generator.
	Seed int64 `json:"seed"`
	// Date is when the run started (RFC 3339, UTC).
	Date string `json:"date"`
	// Machine is the architecture (uname -m) and CPUs the number of CPUs (nproc).
	Machine string `json:"machine"`
	CPUs    int    `json:"cpus"`
	// Duration is the run's wall time.
	Duration string `json:"duration"`
	// Speed, GenCount and GenRate repeat the sources' configuration.
	Speed    float64 `json:"speed"`
	GenCount int     `json:"gen_count"`
	GenRate  float64 `json:"gen_rate"`
	// RecordingPhase is the recording's duration at the emulator's pace.
	RecordingPhase string `json:"recording_phase"`
	// Home is the run folder (logs).
	Home string `json:"home"`
	// Schedule is the fault schedule the seed gave.
	Schedule []Action `json:"schedule"`
	// RecordingEvents and GeneratedEvents are the ground truth's two parts.
	RecordingEvents int64 `json:"recording_events"`
	GeneratedEvents int64 `json:"generated_events"`
	// Expected is the number of distinct events; Counted the sum of the legacy hash.
	Expected int64 `json:"expected"`
	Counted  int64 `json:"counted"`
	// Lost sums the domains counted less than expected; Twice those counted more.
	Lost  int64 `json:"lost"`
	Twice int64 `json:"counted_twice"`
	// Domains is how many domains the ground truth has.
	Domains int `json:"domains"`
	// Diffs lists every domain whose count differs.
	Diffs []DomainDiff `json:"diffs"`
	// Kills counts the SIGKILLs per process.
	Kills map[string]int `json:"kills"`
	// LeaderKills counts, with Topology cluster, the SIGKILLs per kind of leader
	// (LeaderNATS, LeaderMirror, LeaderPartitions, LeaderController, LeaderRedis).
	LeaderKills map[string]int `json:"leader_kills,omitempty"`
	// FloorReplays counts the aggregate's log lines saying that its watermark in
	// Redis was behind the consumer's ack floor (Redis lost applies, as a
	// failover before replication loses them) and that it replayed the range.
	FloorReplays int `json:"floor_replays"`
	// FailoverLost sums, over the Redis faults whose replica was cut off first,
	// how far the shard's watermark moved on the master meanwhile: the applies
	// the failover took away, to be counted again.
	FailoverLost int64 `json:"failover_lost_applies,omitempty"`
	// PeakRSSMB is the largest sum of the resident memory of every process of
	// the run (brokers and pipeline), sampled every second, in MiB.
	PeakRSSMB int64 `json:"peak_rss_mb"`
	// SelfExits lists, per process, the exits the run did not cause.
	SelfExits map[string][]string `json:"self_exits,omitempty"`
	// BrokerRestarts lists the broker faults done.
	BrokerRestarts []string `json:"broker_restarts"`
	// Seconds are the second bridge and aggregate.
	Seconds []Second `json:"seconds"`
	// Repairs are the times the aggregate stopped counting after the stream lost
	// messages it had counted, and the rebuilds that followed.
	Repairs []Repair `json:"repairs,omitempty"`
	// DeadLetters is the number of records in the dead-letter topic.
	DeadLetters int64 `json:"dead_letters"`
	// KafkaRecords is the number of records in the events topic (duplicates included).
	KafkaRecords int64 `json:"kafka_records"`
	// StreamLastSeq is the stream's last sequence; Watermark the aggregate's.
	StreamLastSeq uint64 `json:"stream_last_seq"`
	Watermark     uint64 `json:"watermark"`
	// Counters sums, per process, counters of its GET /metrics over all its
	// lifetimes, sampled every second (the last second before each SIGKILL is
	// missing).
	Counters map[string]map[string]int64 `json:"counters,omitempty"`
	// Error is why the run failed before or during the comparison ("" when it did not).
	Error string `json:"error,omitempty"`
}

// OK reports whether the run completed and every domain's count is exact.
func (r Report) OK() bool {
	return r.Error == "" && len(r.Diffs) == 0 && r.Lost == 0 && r.Twice == 0 && r.Expected > 0
}

// compare fills the totals and differences from the truth and the counts.
func (r *Report) compare(expected, counted map[string]int64) {
	r.Expected, r.Counted, r.Lost, r.Twice, r.Diffs = 0, 0, 0, 0, nil
	domains := map[string]bool{}
	for d, n := range expected {
		domains[d] = true
		r.Expected += n
	}
	for d, n := range counted {
		domains[d] = true
		r.Counted += n
	}
	r.Domains = len(expected)
	names := make([]string, 0, len(domains))
	for d := range domains {
		names = append(names, d)
	}
	sort.Strings(names)
	for _, d := range names {
		e, c := expected[d], counted[d]
		if e == c {
			continue
		}
		r.Diffs = append(r.Diffs, DomainDiff{Domain: d, Expected: e, Counted: c, Difference: c - e})
		if c < e {
			r.Lost += e - c
		} else {
			r.Twice += c - e
		}
	}
}

// Summary is the plain-text result printed at the end of a run.
func (r Report) Summary() string {
	var b strings.Builder
	verdict := "PASS: every domain counted exactly once"
	if !r.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "chaos run %s (seed %d, %s)\n", verdict, r.Seed, r.Duration)
	if r.Error != "" {
		fmt.Fprintf(&b, "error: %s\n", r.Error)
	}
	if len(r.Diffs) > 0 {
		w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "domain\texpected\tcounted\tdifference\t")
		for _, d := range r.Diffs {
			fmt.Fprintf(w, "%s\t%d\t%d\t%+d\t\n", d.Domain, d.Expected, d.Counted, d.Difference)
		}
		w.Flush()
	}
	fmt.Fprintf(&b, "events expected %d (recording %d + generated %d, %d domains), counted %d, lost %d, counted twice %d\n",
		r.Expected, r.RecordingEvents, r.GeneratedEvents, r.Domains, r.Counted, r.Lost, r.Twice)
	fmt.Fprintf(&b, "topology %s; kills: %s; broker restarts: %s\n", r.Topology, kills(r.Kills), strings.Join(r.BrokerRestarts, ", "))
	if len(r.LeaderKills) > 0 {
		fmt.Fprintf(&b, "leader kills: %s\n", leaderKills(r.LeaderKills))
	}
	fmt.Fprintf(&b, "watermark behind the ack floor, replayed: %d times (Redis failovers lost %d sequences of applies); peak RSS of all processes %d MiB\n", r.FloorReplays, r.FailoverLost, r.PeakRSSMB)
	for _, s := range r.Seconds {
		fmt.Fprintf(&b, "second %s: %s\n", s.Name, s.Outcome)
	}
	for _, p := range r.Repairs {
		fmt.Fprintf(&b, "stream tail lost: %s\n", p)
	}
	for name, exits := range r.SelfExits {
		fmt.Fprintf(&b, "%s exited by itself %d times\n", name, len(exits))
	}
	for _, n := range []string{"ingest", "bridge", "aggregate"} {
		if m := r.Counters[n]; len(m) > 0 {
			fmt.Fprintf(&b, "%s counters: %s\n", n, counterLine(m))
		}
	}
	fmt.Fprintf(&b, "dead letters %d, Kafka records %d, stream last seq %d, watermark %d\n",
		r.DeadLetters, r.KafkaRecords, r.StreamLastSeq, r.Watermark)
	return b.String()
}

func kills(m map[string]int) string {
	names := []string{"ingest", "bridge"}
	var aggs []string
	for n := range m {
		if strings.HasPrefix(n, "aggregate") {
			aggs = append(aggs, n)
		}
	}
	sort.Strings(aggs)
	if len(aggs) == 0 {
		aggs = []string{"aggregate"}
	}
	var parts []string
	for _, n := range append(names, aggs...) {
		parts = append(parts, fmt.Sprintf("%s %d", n, m[n]))
	}
	return strings.Join(parts, ", ")
}

func leaderKills(m map[string]int) string {
	var parts []string
	for _, n := range []string{LeaderNATS, LeaderMirror, LeaderPartitions, LeaderController, LeaderRedis} {
		parts = append(parts, fmt.Sprintf("%s %d", leaderNames[n], m[n]))
	}
	return strings.Join(parts, ", ")
}

// Markdown renders the report for lab/chaos/results.md.
func (r Report) Markdown() string {
	var b strings.Builder
	verdict := "**PASS**: every domain counted exactly once"
	if !r.OK() {
		verdict = "**FAIL**"
	}
	title, cmd := "", "go tool task chaos"
	if r.Topology == "cluster" {
		title, cmd = " on a cluster", "go tool task chaos -- --topology cluster"
	}
	fmt.Fprintf(&b, "# Chaos run%s: exactly-once end to end\n\n", title)
	fmt.Fprintf(&b, "Written by `%s` (lab/chaos/cmd/chaos). Result: %s.\n\n", cmd, verdict)
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	row := func(k string, v any) { fmt.Fprintf(&b, "| %s | %v |\n", k, v) }
	row("topology", r.Topology)
	row("seed", r.Seed)
	row("date", r.Date)
	row("machine (uname -m)", r.Machine)
	row("CPUs (nproc)", r.CPUs)
	row("duration", r.Duration)
	row("sources", fmt.Sprintf("the recording at speed %g + %d generated events at %g/s", r.Speed, r.GenCount, r.GenRate))
	row("events expected", r.Expected)
	row("events counted", r.Counted)
	row("lost", r.Lost)
	row("counted twice", r.Twice)
	row("domains", r.Domains)
	row("kills (SIGKILL)", kills(r.Kills))
	if len(r.LeaderKills) > 0 {
		row("leader kills (SIGKILL)", leaderKills(r.LeaderKills))
	}
	row("watermark behind the ack floor, range replayed", fmt.Sprintf("%d times", r.FloorReplays))
	if r.Topology == "cluster" {
		row("applies lost by Redis failovers (sequences the watermark went back)", r.FailoverLost)
	}
	row("peak RSS of all processes", fmt.Sprintf("%d MiB", r.PeakRSSMB))
	if r.Topology != "cluster" {
		row("broker restarts", strings.Join(r.BrokerRestarts, "; "))
	}
	row("dead letters", r.DeadLetters)
	row("Kafka records (duplicates included)", r.KafkaRecords)
	row("stream last sequence / watermark", fmt.Sprintf("%d / %d", r.StreamLastSeq, r.Watermark))
	if r.Error != "" {
		row("error", strings.ReplaceAll(r.Error, "\n", " "))
	}
	fmt.Fprintf(&b, "\n## Differences\n\n")
	if r.Expected == 0 {
		fmt.Fprintf(&b, "Not compared: the run stopped before the comparison (see the error above).\n")
	} else if len(r.Diffs) == 0 {
		fmt.Fprintf(&b, "None: every one of the %d domains matches the ground truth.\n", r.Domains)
	} else {
		fmt.Fprintf(&b, "| domain | expected | counted | difference |\n|---|--:|--:|--:|\n")
		for _, d := range r.Diffs {
			fmt.Fprintf(&b, "| %s | %d | %d | %+d |\n", d.Domain, d.Expected, d.Counted, d.Difference)
		}
	}
	if r.Topology == "cluster" {
		fmt.Fprintf(&b, "\n## Leader faults\n\n")
		for _, f := range r.BrokerRestarts {
			fmt.Fprintf(&b, "- %s\n", f)
		}
	}
	fmt.Fprintf(&b, "\n## Second instances\n\n")
	for _, s := range r.Seconds {
		fmt.Fprintf(&b, "- second %s: %s\n", s.Name, s.Outcome)
	}
	fmt.Fprintf(&b, "\n## Stream tail lost\n\n")
	if len(r.Repairs) == 0 {
		fmt.Fprintf(&b, "The aggregate never stopped counting: no crash left its watermark above what the stream kept.\n")
	}
	for _, p := range r.Repairs {
		fmt.Fprintf(&b, "- %s\n", p)
	}
	if len(r.Counters) > 0 {
		fmt.Fprintf(&b, "\n## Counters of the processes\n\nSummed over every lifetime of each process, sampled every second from its `/metrics`\n(what a process counted in its last second before a SIGKILL is missing).\n\n")
		for _, n := range []string{"ingest", "bridge", "aggregate"} {
			fmt.Fprintf(&b, "- %s: %s\n", n, counterLine(r.Counters[n]))
		}
	}
	if len(r.SelfExits) > 0 {
		fmt.Fprintf(&b, "\n## Exits the run did not cause\n\n")
		names := make([]string, 0, len(r.SelfExits))
		for n := range r.SelfExits {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			for _, e := range r.SelfExits[n] {
				fmt.Fprintf(&b, "- %s: %s\n", n, e)
			}
		}
	}
	fmt.Fprintf(&b, "\n## Fault schedule (seed %d)\n\n", r.Seed)
	if r.Topology == "cluster" {
		fmt.Fprintf(&b, "Times from the pipeline's start; a fault after the recording phase (%s at the emulator's pace) happens that long after the generator started instead. Faults of one broker kind run one after the other.\n\n", r.RecordingPhase)
	}
	fmt.Fprintf(&b, "| at | fault |\n|--:|---|\n")
	for _, a := range r.Schedule {
		fmt.Fprintf(&b, "| %s | %s |\n", a.At.Round(100*time.Millisecond), a)
	}
	return b.String()
}

// Files returns the names of the report's files: results.md and results.json,
// or results-cluster.md and results-cluster.json for Topology cluster.
func (r Report) Files() (md, js string) {
	if r.Topology == "cluster" {
		return "results-cluster.md", "results-cluster.json"
	}
	return "results.md", "results.json"
}

// Write writes the report's files (see Files) into dir.
func (r Report) Write(dir string) error {
	mdName, jsName := r.Files()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, mdName), []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, jsName), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// counterLine renders counters as "name value" pairs in name order.
func counterLine(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", strings.ReplaceAll(k, "_", " "), m[k]))
	}
	return strings.Join(parts, ", ")
}
