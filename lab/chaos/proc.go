package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is one process the run starts, in its own process group so that a signal
// reaches its children too, with stdout and stderr appended to its log file.
type proc struct {
	name string
	args []string
	dir  string
	log  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process has exited
	exitErr error
	starts  int
}

func newProc(name, dir, log string, args ...string) *proc {
	done := make(chan struct{})
	close(done)
	return &proc{name: name, args: args, dir: dir, log: log, done: done}
}

// start starts the process; it must not be running.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
	default:
		return fmt.Errorf("%s: already running (pid %d)", p.name, p.cmd.Process.Pid)
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", p.name, err)
	}
	defer f.Close()
	p.starts++
	fmt.Fprintf(f, "==== chaos: start #%d of %s at %s\n", p.starts, p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.exitErr = cmd, done, nil
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// running reports whether the process runs, with its exit channel.
func (p *proc) running() (bool, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return false, p.done
	default:
		return true, p.done
	}
}

// pid returns the pid of the current process (0 when none started).
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// exitError returns how the last process ended.
func (p *proc) exitError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// signal sends sig to the process group of the current process.
func (p *proc) signal(sig syscall.Signal) {
	if pid := p.pid(); pid > 0 {
		if err := syscall.Kill(-pid, sig); err != nil {
			_ = syscall.Kill(pid, sig)
		}
	}
}

// kill sends SIGKILL to the process group and waits until the process has exited.
func (p *proc) kill() {
	_, done := p.running()
	p.signal(syscall.SIGKILL)
	<-done
	p.signal(syscall.SIGKILL) // children that outlived the leader
}

// stop sends SIGTERM, waits up to grace, then kills; it reports whether the
// process stopped within grace.
func (p *proc) stop(grace time.Duration) bool {
	up, done := p.running()
	if !up {
		return true
	}
	p.signal(syscall.SIGTERM)
	select {
	case <-done:
		p.signal(syscall.SIGKILL)
		return true
	case <-time.After(grace):
		p.kill()
		return false
	}
}

// tail returns the last n lines of the log.
func (p *proc) tail(n int) string {
	return tailFile(p.log, n)
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	b = bytes.TrimRight(b, "\n")
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// service is a pipeline process that is restarted whenever it exits, like a
// process supervisor would: after the delay chosen by the kill that ended it,
// or after a second when it exited by itself.
type service struct {
	*proc
	mu      sync.Mutex
	delay   time.Duration // delay before the next restart; set by kill
	killing bool          // the next exit is a kill of the run's
	kills   int
	crashes []string // exits the run did not cause
	stopped chan struct{}
	loop    chan struct{} // closed when the supervisor has returned
}

func newService(p *proc) *service {
	return &service{proc: p, stopped: make(chan struct{}), loop: make(chan struct{})}
}

// supervise runs the service until halt is called.
func (s *service) supervise(progress func(string, ...any)) {
	defer close(s.loop)
	for {
		if err := s.start(); err != nil {
			progress("%s: %v", s.name, err)
		}
		_, done := s.running()
		select {
		case <-done:
		case <-s.stopped:
			return
		}
		s.mu.Lock()
		wait := time.Second
		if s.killing {
			wait, s.killing = s.delay, false
		} else {
			reason := "exit"
			if err := s.exitError(); err != nil {
				reason = err.Error()
			}
			s.crashes = append(s.crashes, fmt.Sprintf("%s: %s", time.Now().Format("15:04:05"), reason))
			progress("%s exited by itself (%s); restarting it in 1s", s.name, reason)
		}
		s.mu.Unlock()
		select {
		case <-time.After(wait):
		case <-s.stopped:
			return
		}
	}
}

// killNow kills the service with SIGKILL; the supervisor restarts it after delay.
// It waits up to 15 s for the service to be running first and reports whether
// a kill happened.
func (s *service) killNow(delay time.Duration) bool {
	deadline := time.Now().Add(15 * time.Second)
	for {
		if up, _ := s.running(); up {
			break
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.mu.Lock()
	s.killing, s.delay = true, delay
	s.kills++
	s.mu.Unlock()
	s.kill()
	return true
}

// halt stops the supervisor and the service (SIGTERM, then SIGKILL after grace).
func (s *service) halt(grace time.Duration) {
	select {
	case <-s.stopped:
	default:
		close(s.stopped)
	}
	<-s.loop
	s.stop(grace)
}

// crashList returns the exits the run did not cause.
func (s *service) crashList() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.crashes...)
}

var errNotHealthy = errors.New("not healthy")
