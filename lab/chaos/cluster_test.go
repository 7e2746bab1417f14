package chaos

import (
	"reflect"
	"testing"
	"time"
)

func TestClusterSchedule(t *testing.T) {
	for _, cfg := range []Config{ClusterConfig(), ClusterSmallConfig()} {
		cfg.Seed = 7
		s := Schedule(cfg)
		if !reflect.DeepEqual(s, Schedule(cfg)) {
			t.Fatal("the same seed gave two schedules")
		}
		p1, p2 := Phases(cfg)
		got := map[string]int{}
		for i, a := range s {
			if i > 0 && a.At < s[i-1].At {
				t.Fatalf("schedule not in time order at %d", i)
			}
			if a.At > p1+p2 || a.Delay < 100*time.Millisecond || a.Delay > cfg.MaxRestartDelay {
				t.Errorf("%s at %s: outside the window %s or the delays", a, a.At, p1+p2)
			}
			got[a.Kind+" "+a.Target]++
		}
		k, l := cfg.Kills, cfg.LeaderKills
		want := map[string]int{
			"kill ingest": k, "kill bridge": k, "kill aggregate1": k, "kill aggregate2": k, "kill aggregate3": k,
			"leader " + LeaderNATS: (l + 1) / 2, "leader " + LeaderMirror: l / 2,
			"leader " + LeaderPartitions: l, "leader " + LeaderController: l, "leader " + LeaderRedis: l,
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("schedule has %v, want %v", got, want)
		}
	}
}

func TestClusterPortsStayInTheBlock(t *testing.T) {
	for _, base := range []int{23000, 24000} {
		seen := map[int]bool{}
		for _, p := range append(portsFrom(base).list(), clusterPortList(base)...) {
			if p < base || p >= base+blockSize || seen[p] {
				t.Errorf("base %d: port %d outside the block or twice", base, p)
			}
			seen[p] = true
		}
	}
}

// TestChaosClusterSmall is the short version of the cluster chaos run: the
// recording and 4,000 generated events through 3 Kafka nodes, 3 nats-servers, a
// Redis Cluster of 6 and 3 aggregate shards, each process killed twice and each
// kind of leader (stream or mirror, partitions, controller, Redis master)
// killed twice; nothing may be lost or counted twice.
func TestChaosClusterSmall(t *testing.T) {
	cfg := ClusterSmallConfig()
	rep := runSmall(t, cfg, "ingest", "bridge", "aggregate1", "aggregate2", "aggregate3")
	lk := rep.LeaderKills
	for kind, n := range map[string]int{
		"nats": lk[LeaderNATS] + lk[LeaderMirror], "kafka partitions": lk[LeaderPartitions],
		"kafka controller": lk[LeaderController], "redis": lk[LeaderRedis],
	} {
		if n < cfg.LeaderKills {
			t.Errorf("%s leaders killed %d times, want %d", kind, n, cfg.LeaderKills)
		}
	}
}
