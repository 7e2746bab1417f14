package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Stack runs the detached processes of one [Config]: each in its own session
// (so that it never holds the caller's terminal or pipes open), with a pid file
// <name>.pid and a log <name>.log in RunDir (the previous run's log is kept as
// <name>.log.1). Every start is idempotent: a component whose pid file names a
// live process with the expected command line is left alone, a stale pid file is
// removed, and a port held by another process is an error that names the port.
type Stack struct {
	Config
	// Out receives progress lines; Err warnings and the ends of logs.
	Out, Err io.Writer
}

// PidFile is the pid file of a component.
func (c Config) PidFile(name string) string { return filepath.Join(c.RunDir(), name+".pid") }

// LogFile is the log of a component.
func (c Config) LogFile(name string) string { return filepath.Join(c.RunDir(), name+".log") }

func (s *Stack) say(format string, a ...any) { fmt.Fprintf(s.Out, format+"\n", a...) }

func (s *Stack) warn(format string, a ...any) { fmt.Fprintf(s.Err, "stack: "+format+"\n", a...) }

// RunningPid returns the pid of a component whose pid file names a live process
// with the component's command line; a stale pid file is removed.
func (c Config) RunningPid(name string) (int, bool) {
	f := c.PidFile(name)
	b, err := os.ReadFile(f)
	if err != nil {
		return 0, false
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
		if args, ok := processArgs(pid); ok && c.matches(name, args) {
			return pid, true
		}
	}
	os.Remove(f)
	return 0, false
}

// processArgs returns the command line of a live process; a zombie (an exited
// child its parent has not reaped yet) is not alive.
func processArgs(pid int) (string, bool) {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return "", false
	}
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// pid (comm) state ...: comm may hold spaces and parentheses.
		if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
			return "", false
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return "", false
		}
		return strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))), true
	}
	out, err := exec.Command("ps", "-o", "stat=,args=", "-p", strconv.Itoa(pid)).Output()
	st, args, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if err != nil || st == "" || strings.HasPrefix(st, "Z") {
		return "", false
	}
	return strings.TrimSpace(args), true
}

// PortOpen reports whether something accepts TCP connections on 127.0.0.1:port.
func PortOpen(port int) bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// portOwner returns " (pid N: command)" for the listener on port when ss or
// lsof can tell.
func portOwner(port int) string {
	var pid string
	if _, err := exec.LookPath("ss"); err == nil {
		out, _ := exec.Command("ss", "-Hltnp", fmt.Sprintf("sport = :%d", port)).Output()
		if _, rest, ok := strings.Cut(string(out), "pid="); ok {
			pid, _, _ = strings.Cut(rest, ",")
		}
	} else if _, err := exec.LookPath("lsof"); err == nil {
		out, _ := exec.Command("lsof", "-nP", fmt.Sprintf("-iTCP:%d", port), "-sTCP:LISTEN", "-t").Output()
		pid, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	}
	n, err := strconv.Atoi(pid)
	if err != nil {
		return ""
	}
	args, _ := processArgs(n)
	if len(args) > 100 {
		args = args[:100]
	}
	return fmt.Sprintf(" (pid %d: %s)", n, args)
}

// launch starts args as component name in its own session in the background,
// stdout and stderr appended to the component's log.
func (s *Stack) launch(name string, args []string) error {
	for _, p := range s.PortsOf(name) {
		if PortOpen(p) {
			return fmt.Errorf("%s: port %d is already in use by another process%s; stop it or free the port", name, p, portOwner(p))
		}
	}
	log, pidf := s.LogFile(name), s.PidFile(name)
	if _, err := os.Stat(log); err == nil {
		os.Rename(log, log+".1")
	}
	os.Remove(pidf)
	f, err := os.OpenFile(log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = s.RunDir(), f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start %s: %w", name, args[0], err)
	}
	pid := cmd.Process.Pid
	// Reap the child if it exits while this command still runs (else it stays a
	// zombie until then); once this command ends, init adopts it.
	go cmd.Wait()
	if err := os.WriteFile(pidf, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		signalGroup(pid, syscall.SIGKILL)
		return fmt.Errorf("%s: pid file: %w", name, err)
	}
	s.say("%s: started (pid %d, log %s)", name, pid, log)
	return nil
}

// alreadyRunning reports (and says) whether the component runs already.
func (s *Stack) alreadyRunning(name string) bool {
	if pid, ok := s.RunningPid(name); ok {
		s.say("%s: already running (pid %d)", name, pid)
		return true
	}
	return false
}

// healthy reports whether a running component answers its health check; Kafka
// must also have logged that it started (its listener answers earlier).
func (s *Stack) healthy(ctx context.Context, name string) bool {
	if s.Check(ctx, name) != nil {
		return false
	}
	if kind, _ := node(name); kind == "kafka" {
		b, err := os.ReadFile(s.LogFile(name))
		return err == nil && bytes.Contains(b, []byte("Kafka Server started"))
	}
	return true
}

// waitHealthy waits until every named component is healthy; a component that
// exits or stays unhealthy past Timeout fails with the end of its log.
func (s *Stack) waitHealthy(ctx context.Context, names ...string) error {
	start := time.Now()
	deadline := start.Add(s.Timeout)
	pending := names
	for len(pending) > 0 {
		var next []string
		for _, name := range pending {
			if _, ok := s.RunningPid(name); !ok {
				s.warn("%s exited while starting; last lines of %s:", name, s.LogFile(name))
				fmt.Fprintln(s.Err, Tail(s.LogFile(name), 40))
				return fmt.Errorf("%s did not start", name)
			}
			if s.healthy(ctx, name) {
				s.say("%s: healthy after %s (port %s)", name, seconds(time.Since(start)), joinPorts(s.PortsOf(name)))
			} else {
				next = append(next, name)
			}
		}
		pending = next
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, name := range pending {
				s.warn("%s is not healthy after %s; last lines of %s:", name, s.Timeout, s.LogFile(name))
				fmt.Fprintln(s.Err, Tail(s.LogFile(name), 40))
			}
			return fmt.Errorf("timed out waiting for: %s (raise STACK_TIMEOUT to wait longer)", strings.Join(pending, " "))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", strings.Join(pending, " "), ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

func joinPorts(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}
