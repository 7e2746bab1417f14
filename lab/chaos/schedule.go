package chaos

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/wikiflow/wikiflow/internal/recording"
)

// Fault kinds of an Action.
const (
	// KindKill kills a pipeline process with SIGKILL; it is restarted after Delay.
	KindKill = "kill"
	// KindRestart restarts a broker: with SIGKILL when Hard, else cleanly.
	KindRestart = "restart"
	// KindSecond runs a second bridge or aggregate for Delay.
	KindSecond = "second"
	// KindCrash crashes the machine of NATS, Redis, bridge and aggregate: all
	// killed at once, each broker losing the tail of its files (see crash.go);
	// bridge and aggregate are restarted after Delay.
	KindCrash = "crash"
)

// Action is one fault of the schedule.
type Action struct {
	// At is when the fault happens, from the start of the pipeline.
	At time.Duration `json:"at"`
	// Kind is KindKill, KindRestart, KindSecond, KindCrash or KindLeader.
	Kind string `json:"kind"`
	// Target is ingest, bridge, aggregate (aggregate1-3 with Topology cluster),
	// kafka, nats, redis, nats+redis for a crash, or a leader (LeaderNATS, ...).
	Target string `json:"target"`
	// Hard is true for a broker killed with SIGKILL.
	Hard bool `json:"hard,omitempty"`
	// LoseAOF (Redis only) also drops the last second of Redis's AOF, as a
	// machine crash would with appendfsync everysec.
	LoseAOF bool `json:"lose_aof,omitempty"`
	// Delay is the restart delay of a kill, or how long a second instance runs.
	Delay time.Duration `json:"delay,omitempty"`
}

// String describes the action.
func (a Action) String() string {
	switch a.Kind {
	case KindKill:
		return fmt.Sprintf("SIGKILL %s, restart after %s", a.Target, a.Delay.Round(time.Millisecond))
	case KindRestart:
		if a.LoseAOF {
			return fmt.Sprintf("SIGKILL %s and drop the last second of its AOF, restart", a.Target)
		}
		if a.Hard {
			return fmt.Sprintf("SIGKILL %s, restart", a.Target)
		}
		return fmt.Sprintf("restart %s cleanly (SIGTERM)", a.Target)
	case KindLeader:
		return fmt.Sprintf("SIGKILL the %s, restart after %s", leaderNames[a.Target], a.Delay.Round(time.Millisecond))
	case KindCrash:
		return fmt.Sprintf("crash: SIGKILL nats, redis, bridge and aggregate; drop JetStream's and Redis's unsynced tails; restart (bridge and aggregate after %s)",
			a.Delay.Round(time.Millisecond))
	default:
		return fmt.Sprintf("second %s for %s", a.Target, a.Delay.Round(time.Millisecond))
	}
}

// recordingDuration is how long the emulator takes to serve the recording at speed 1.
func recordingDuration() time.Duration {
	evs := recording.Events()
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Offset
}

// Phases estimates the two phases of a run: the recording through ingest, then
// the generated events written to Kafka.
func Phases(cfg Config) (recordingPhase, genPhase time.Duration) {
	recordingPhase = 3 * time.Second
	if cfg.Speed > 0 {
		recordingPhase = time.Duration(float64(recordingDuration()) / cfg.Speed)
	}
	genPhase = 10 * time.Second
	if cfg.GenRate > 0 {
		genPhase = time.Duration(float64(cfg.GenCount) / cfg.GenRate * float64(time.Second))
	}
	return recordingPhase, genPhase
}

// Schedule returns the fault schedule of cfg, in time order; the same
// configuration (seed included) gives the same schedule. Ingest is killed while
// it reads the recording; bridge and aggregate kills, broker restarts and the
// second instances are spread over both phases. With Topology cluster it is
// clusterSchedule's.
func Schedule(cfg Config) []Action {
	if cfg.Topology == "cluster" {
		return clusterSchedule(cfg)
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed))
	p1, p2 := Phases(cfg)
	window := p1 + p2
	between := func(from, to time.Duration) time.Duration {
		if to <= from {
			return from
		}
		return from + time.Duration(rng.Int64N(int64(to-from)))
	}
	delay := func() time.Duration {
		if cfg.MaxRestartDelay <= 0 {
			return 0
		}
		return between(100*time.Millisecond, cfg.MaxRestartDelay)
	}
	var out []Action
	for i := 0; i < cfg.Kills; i++ {
		out = append(out, Action{At: between(p1/10, p1*9/10), Kind: KindKill, Target: "ingest", Delay: delay()})
	}
	for _, t := range []string{"bridge", "aggregate"} {
		for i := 0; i < cfg.Kills; i++ {
			out = append(out, Action{At: between(time.Second, window), Kind: KindKill, Target: t, Delay: delay()})
		}
	}
	if cfg.BrokerRestarts {
		out = append(out,
			Action{At: between(window/10, window*9/10), Kind: KindRestart, Target: "kafka"},
			Action{At: between(window/10, window*9/10), Kind: KindRestart, Target: "nats"},
			Action{At: between(window/10, window*9/10), Kind: KindRestart, Target: "redis", Hard: true},
			Action{At: between(window/10, window*9/10), Kind: KindRestart, Target: "redis"},
			Action{At: between(window/10, window*9/10), Kind: KindRestart, Target: "redis", Hard: true, LoseAOF: true},
			// While events flow, so that the stream's lost tail holds counted events.
			Action{At: between(window*3/10, window*8/10), Kind: KindCrash, Target: "nats+redis", Delay: delay()},
		)
	}
	if cfg.Seconds {
		out = append(out,
			Action{At: between(window/10, window*6/10), Kind: KindSecond, Target: "bridge", Delay: cfg.SecondFor},
			Action{At: between(window/10, window*6/10), Kind: KindSecond, Target: "aggregate", Delay: cfg.SecondFor},
		)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}
