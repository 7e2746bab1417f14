package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wikiflow/wikiflow/lab/bench"
)

// peerStall is how long a peer's count may stay unchanged before its run ends
// (short of the backlog: an under-count); a variable so that tests on a loaded
// machine can wait longer.
var peerStall = 20 * time.Second

// endsArg formats end offsets as "partition:offset,...".
func endsArg(ends map[int]int64) string {
	var parts []string
	for p := 0; p < len(ends); p++ {
		parts = append(parts, strconv.Itoa(p)+":"+strconv.FormatInt(ends[p], 10))
	}
	return strings.Join(parts, ",")
}

// brokerCPU is the CPU seconds the brokers spent during one run.
type brokerCPU struct {
	kafka, redis, nats float64
	hasNATS            bool
}

// brokerPIDs are the processes of the brokers the bench uses (0: not found).
type brokerPIDs struct{ kafka, redis, nats int }

func cpuOf(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	s, _ := bench.ReadProc(pid)
	return s.CPUSeconds
}

// brokerMark is the brokers' CPU time at one moment.
type brokerMark struct {
	pids brokerPIDs
	cpu  [3]float64
}

func markBrokers(p brokerPIDs) brokerMark {
	return brokerMark{pids: p, cpu: [3]float64{cpuOf(p.kafka), cpuOf(p.redis), cpuOf(p.nats)}}
}

// since returns the CPU the brokers spent since m.
func (m brokerMark) since() brokerCPU {
	now := markBrokers(m.pids)
	return brokerCPU{kafka: now.cpu[0] - m.cpu[0], redis: now.cpu[1] - m.cpu[1], nats: now.cpu[2] - m.cpu[2], hasNATS: m.pids.nats > 0}
}

// findBrokers finds the Kafka broker listening on the bench's Kafka port and the
// Redis server (INFO's process_id).
func (h *harness) findBrokers(ctx context.Context) brokerPIDs {
	var p brokerPIDs
	if info, err := h.rdb.Info(ctx, "server").Result(); err == nil {
		for _, line := range strings.Split(info, "\n") {
			if s, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
				p.redis, _ = strconv.Atoi(s)
			}
		}
	}
	if _, port, err := splitPort(h.o.kafka); err == nil {
		p.kafka = listenerPID(port)
	}
	if p.kafka == 0 || p.redis == 0 {
		h.note("peers: broker processes not all found in /proc (Kafka pid %d, Redis pid %d): their CPU is not counted", p.kafka, p.redis)
	}
	return p
}

func splitPort(hostport string) (string, int, error) {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 {
		return "", 0, errors.New("no port")
	}
	port, err := strconv.Atoi(hostport[i+1:])
	return hostport[:i], port, err
}

// listenerPID returns the process that owns a socket listening on port (0 when
// none is found, for instance because it runs in another container).
func listenerPID(port int) int {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" {
				continue
			}
			if _, hexPort, ok := strings.Cut(fs[1], ":"); ok {
				if v, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(v) == port {
					inodes["socket:["+fs[9]+"]"] = true
				}
			}
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*/fd")
	for _, d := range dirs {
		fds, _ := os.ReadDir(d)
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(d, fd.Name())); err == nil && inodes[l] {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
				return pid
			}
		}
	}
	return 0
}

// usage returns the CPU seconds and peak RSS of p: from /proc while it runs, from
// its rusage once it exited.
func usage(p *proc) (cpu float64, rss int64) {
	if p.exited() {
		if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), ru.Maxrss * 1024
		}
		return 0, 0
	}
	s := p.sample()
	return s.CPUSeconds, s.PeakRSS
}

// usageOf adds up the usage of procs into r.
func (r *peerRun) usageOf(procs ...*proc) {
	for _, p := range procs {
		c, m := usage(p)
		r.cpu += c
		r.rss += m
	}
}

// peerWatch polls read every 10 ms until it returns at least target. A count that
// stays unchanged for stall, or a process of procs that exits, ends the watch
// with the progress up to the last change and an error saying so.
func peerWatch(ctx context.Context, target int64, read func() (int64, error), procs ...*proc) (progress, error) {
	var pr progress
	last, lastAt := int64(-1), time.Now()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		v, err := read()
		now := time.Now()
		if err == nil && v != last {
			last, lastAt = v, now
			if v > 0 && pr.first.IsZero() {
				pr.first, pr.firstV = now, v
			}
			pr.end, pr.endV = now, v
		}
		if err == nil && v >= target {
			return pr, nil
		}
		for _, p := range procs {
			if p.exited() {
				if v2, err := read(); err == nil && v2 >= target {
					pr.end, pr.endV = time.Now(), v2
					return pr, nil
				}
				return pr, fmt.Errorf("%s exited at %d of %d: %v\n%s", p.name, last, target, p.err, p.tail())
			}
		}
		if now.Sub(lastAt) > peerStall {
			return pr, fmt.Errorf("%w for %s at %d of %d (last error: %v)", errStalled, peerStall, last, target, err)
		}
		select {
		case <-ctx.Done():
			return pr, ctx.Err()
		case <-t.C:
		}
	}
}

// hashCounts reads a Redis hash of field -> count.
func (h *harness) hashCounts(ctx context.Context, key string) (map[string]int64, error) {
	m, err := h.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(m))
	for k, v := range m {
		if out[k], err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, fmt.Errorf("%s[%s]: %w", key, k, err)
		}
	}
	return out, nil
}

// hashSum returns the sum of a Redis hash's counts.
func (h *harness) hashSum(ctx context.Context, key string) (int64, error) {
	vals, err := h.rdb.HVals(ctx, key).Result()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, v := range vals {
		x, _ := strconv.ParseInt(v, 10, 64)
		n += x
	}
	return n, nil
}

// committed returns the sum of a consumer group's committed offsets on topic.
func (h *harness) committed(ctx context.Context, group, topic string, partitions int) (int64, error) {
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	resp, err := h.kcl.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		return 0, err
	}
	if resp.Error != nil {
		return 0, resp.Error
	}
	var n int64
	for _, p := range resp.Topics[topic] {
		if p.CommittedOffset > 0 {
			n += p.CommittedOffset
		}
	}
	return n, nil
}
