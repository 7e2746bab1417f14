package stack

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Proc is one child process of the calling program, in its own process group so
// that a signal reaches its children too, with stdout and stderr appended to its
// log. It can be started again once it has exited; each start writes a line
// "==== start #N of <name> at <time>" ([StartMark]) to the log first.
type Proc struct {
	// Name names the process in errors and in the log.
	Name string
	// Args is the command line.
	Args []string
	// Dir is the working directory.
	Dir string
	// Log is the log file.
	Log string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process has exited
	exitErr error
	starts  int
}

// StartMark begins the line each start of a Proc writes to its log.
const StartMark = "==== start #"

// NewProc returns a process that is not started yet.
func NewProc(name, dir, log string, args ...string) *Proc {
	done := make(chan struct{})
	close(done)
	return &Proc{Name: name, Args: args, Dir: dir, Log: log, done: done}
}

// Start starts the process; it must not be running.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
	default:
		return fmt.Errorf("%s: already running (pid %d)", p.Name, p.cmd.Process.Pid)
	}
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", p.Name, err)
	}
	defer f.Close()
	p.starts++
	fmt.Fprintf(f, "%s%d of %s at %s\n", StartMark, p.starts, p.Name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.Args[0], p.Args[1:]...)
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start: %w", p.Name, err)
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

// Running reports whether the process runs, with the channel closed at its exit.
func (p *Proc) Running() (bool, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return false, p.done
	default:
		return true, p.done
	}
}

// Starts returns how many times the process was started.
func (p *Proc) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// Pid returns the pid of the current process (0 when none started).
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// ExitError returns how the last process ended.
func (p *Proc) ExitError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// Signal sends sig to the process group of the current process.
func (p *Proc) Signal(sig syscall.Signal) {
	if pid := p.Pid(); pid > 0 {
		signalGroup(pid, sig)
	}
}

// Kill sends SIGKILL to the process group and waits until the process has exited.
func (p *Proc) Kill() {
	_, done := p.Running()
	p.Signal(syscall.SIGKILL)
	<-done
	p.Signal(syscall.SIGKILL) // children that outlived the leader
}

// Stop sends SIGTERM, waits up to grace, then kills; it reports whether the
// process stopped within grace.
func (p *Proc) Stop(grace time.Duration) bool {
	up, done := p.Running()
	if !up {
		return true
	}
	p.Signal(syscall.SIGTERM)
	select {
	case <-done:
		p.Signal(syscall.SIGKILL)
		return true
	case <-time.After(grace):
		p.Kill()
		return false
	}
}

// Tail returns the last n lines of the log.
func (p *Proc) Tail(n int) string { return Tail(p.Log, n) }

// signalGroup sends sig to the process group pid leads, or to pid alone when
// it leads none.
func signalGroup(pid int, sig syscall.Signal) {
	if err := syscall.Kill(-pid, sig); err != nil {
		_ = syscall.Kill(pid, sig)
	}
}
