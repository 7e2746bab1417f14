package bench

import (
	"fmt"
	"strings"
)

// Markdown renders the section "wikiflow against the alternatives".
func (p *Peers) Markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("## wikiflow against the alternatives\n\n")
	w("Every system read the same backlog of %s generated events in a %d-partition Kafka topic, from the start, alone on the machine, "+
		"in %d round(s) that run each system once in turn; figures are the median and, over several rounds, the spread (min – max). "+
		"Counts are compared with the generator's ground truth. CPU is the system's own processes; the brokers' CPU during its run is shown apart "+
		"(Kafka, Redis and NATS are shared with whatever else runs on the machine).\n\n",
		num(float64(p.Events)), p.Partitions, p.Rounds)
	if p.Run != "" {
		w("Measured in run `%s` on %s.\n\n", p.Run, p.Date)
	}
	wf, hasWF := p.find(PeerWikiflow)
	fl, hasFL := p.find(FloorKafkaKey)
	w("| System | Guarantee | events/s (median) | spread | wikiflow ÷ this | this ÷ Kafka read floor | CPU ms / 1,000 events | Kafka CPU | Redis CPU | NATS CPU | peak RSS MiB (its processes together) | counts |\n")
	w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, s := range p.Systems {
		if s.Rate.N == 0 {
			note := s.Note
			if note == "" {
				note = "not measured"
			}
			w("| %s | %s | — | — | — | — | — | — | — | — | — | %s |\n", s.Name, dash(s.Guarantee), note)
			continue
		}
		vsWF, vsFloor := "—", "—"
		if hasWF && s.Key != PeerWikiflow && s.Kind != PeerFloor {
			vsWF = ratio(wf.Rate.Median, s.Rate.Median)
		}
		if hasFL && s.Key != FloorKafkaKey {
			vsFloor = ratio(s.Rate.Median, fl.Rate.Median)
		}
		counts := s.Verdict()
		if s.Note != "" {
			counts += " — " + s.Note
		}
		w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Name, dash(s.Guarantee), num(s.Rate.Median), spread(s.Rate, num),
			vsWF, vsFloor, cpuCell(s.CPUmsPer1k), cpuCell(s.KafkaCPUmsPer1k), cpuCell(s.RedisCPUmsPer1k), cpuCell(s.NATSCPUmsPer1k),
			cpuCell(s.PeakRSSMB), counts)
	}
	w("\n\"wikiflow ÷ this\" above 1 means wikiflow was faster; \"this ÷ Kafka read floor\" is the share of the rate at which kafka-go alone reads the topic. ")
	w("Rates run from the first count seen (Redis polled every 10 ms, or the consumer group's committed offsets for Kafka Streams) to the last, ")
	w("so start-up (a JVM, a consumer group join) is left out, as in the per-stage figures. ")
	w("The floors time their own reads or writes inside one process (getrusage for its CPU).\n\n")
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
