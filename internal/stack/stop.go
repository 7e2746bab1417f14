package stack

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stop sends SIGTERM to each running component's process group, waits up to
// StopGrace for all of them, then sends SIGKILL to what is left.
func (s *Stack) stop(names ...string) {
	type running struct {
		name string
		pid  int
	}
	var list []running
	for _, name := range names {
		if pid, ok := s.RunningPid(name); ok {
			signalGroup(pid, syscall.SIGTERM)
			list = append(list, running{name, pid})
		}
	}
	for deadline := time.Now().Add(s.StopGrace); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		left := false
		for _, r := range list {
			if _, ok := processArgs(r.pid); ok {
				left = true
			}
		}
		if !left {
			break
		}
	}
	for _, r := range list {
		if _, ok := processArgs(r.pid); ok {
			s.warn("%s (pid %d) ignored SIGTERM for %s: sending SIGKILL", r.name, r.pid, s.StopGrace)
			signalGroup(r.pid, syscall.SIGKILL)
			time.Sleep(200 * time.Millisecond)
		}
		os.Remove(s.PidFile(r.name))
		s.say("%s: stopped (pid %d)", r.name, r.pid)
	}
}

// Leftovers lists the processes of this stack that still run: components whose
// pid file names a live process, and any process whose command line is that of
// this stack's Kafka, nats-server or stages (other than `wikiflow stack`
// commands, such as the one asking). A process is this stack's when it names
// its run folder or, for a stage, one of its ports: stacks that share binaries
// are told apart.
func (c Config) Leftovers() []string {
	var out []string
	for _, name := range c.ComponentNames() {
		if pid, ok := c.RunningPid(name); ok {
			out = append(out, fmt.Sprintf("%s pid %d", name, pid))
		}
	}
	for pid, args := range processes() {
		if pid == os.Getpid() || strings.HasPrefix(args, c.Wikiflow+" stack") || !c.ours(args) {
			continue
		}
		if len(args) > 100 {
			args = args[:100]
		}
		out = append(out, fmt.Sprintf("pid %d: %s", pid, args))
	}
	return out
}

// ours reports whether a command line is one of this stack's processes.
func (c Config) ours(args string) bool {
	switch {
	case strings.Contains(args, "kafka.Kafka "+c.RunDir()+"/"):
		return true
	case strings.Contains(args, c.NATSServer) && strings.Contains(args, " -c "+c.RunDir()+"/nats"):
		return true
	case !strings.Contains(args, c.Wikiflow+" "):
		return false
	}
	for _, name := range c.ServiceNames() {
		for _, p := range c.PortsOf(name) {
			if strings.Contains(args, fmt.Sprintf("127.0.0.1:%d", p)) {
				return true
			}
		}
	}
	return false
}

// processes returns the command line of every live process by pid.
func processes() map[int]string {
	m := map[int]string{}
	if entries, err := os.ReadDir("/proc"); err == nil {
		for _, e := range entries {
			if pid, err := strconv.Atoi(e.Name()); err == nil {
				if args, ok := processArgs(pid); ok && args != "" {
					m[pid] = args
				}
			}
		}
		return m
	}
	out, _ := exec.Command("ps", "-eo", "pid=,args=").Output()
	for _, line := range strings.Split(string(out), "\n") {
		pid, args, _ := strings.Cut(strings.TrimSpace(line), " ")
		if n, err := strconv.Atoi(pid); err == nil {
			m[n] = strings.TrimSpace(args)
		}
	}
	return m
}
