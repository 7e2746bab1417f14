package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/wikiflow/wikiflow/lab/bench"
)

// proc is one child process of the harness.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// start runs the program with args, its output going to <tmp>/<name>.log.
func (h *harness) start(name string, program string, args ...string) (*proc, error) {
	h.seq++
	logPath := filepath.Join(h.tmp, fmt.Sprintf("%02d-%s.log", h.seq, name))
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(program, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	h.procs = append(h.procs, p)
	h.logf("started %s (pid %d): %s %v", name, cmd.Process.Pid, filepath.Base(program), args)
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// sample reads the process's /proc figures (zero when it is gone).
func (p *proc) sample() bench.ProcSample {
	s, _ := bench.ReadProc(p.cmd.Process.Pid)
	return s
}

// stop sends SIGTERM and waits for the exit, killing the process after grace.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail returns the last bytes of the process's log, for error messages.
func (p *proc) tail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	return string(b)
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// waitTCP waits until something accepts connections on port.
func waitTCP(ctx context.Context, port int, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr(port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: port %d not open after %s", p.name, port, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var httpc = &http.Client{Timeout: 3 * time.Second}

// waitHealthy waits until GET http://127.0.0.1:port/healthz answers 200.
func waitHealthy(ctx context.Context, port int, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	url := "http://" + addr(port) + "/healthz"
	for {
		resp, err := httpc.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: %s not healthy after %s", p.name, url, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metric reads one gauge from GET http://127.0.0.1:port/metrics.
func metric(port int, name string) (float64, error) {
	resp, err := httpc.Get("http://" + addr(port) + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	v, ok := bench.MetricValue(string(b), name)
	if !ok {
		return 0, fmt.Errorf("metric %s missing", name)
	}
	return v, nil
}

// progress is the outcome of watching a counter grow to a target.
type progress struct {
	// first is when the counter was first seen above zero, with its value then.
	first  time.Time
	firstV int64
	// end is when it was first seen at or above the target, with its value.
	end  time.Time
	endV int64
}

// rate returns the events per second between the first and the last observation.
func (p progress) rate() float64 {
	d := p.end.Sub(p.first).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(p.endV-p.firstV) / d
}

var errStalled = errors.New("no progress")

// watch polls read every interval until it returns at least target. It fails when
// the value does not change for stall, or when a watched process exits.
func watch(ctx context.Context, interval, stall time.Duration, target int64, read func() (int64, error), procs ...*proc) (progress, error) {
	var pr progress
	last, lastChange := int64(-1), time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		v, err := read()
		now := time.Now()
		if err == nil {
			if v > 0 && pr.first.IsZero() {
				pr.first, pr.firstV = now, v
			}
			if v != last {
				last, lastChange = v, now
			}
			if v >= target {
				pr.end, pr.endV = now, v
				return pr, nil
			}
		}
		for _, p := range procs {
			if p.exited() {
				return pr, fmt.Errorf("%s exited at %d of %d: %v\n%s", p.name, last, target, p.err, p.tail())
			}
		}
		if now.Sub(lastChange) > stall {
			pr.end, pr.endV = now, last
			return pr, fmt.Errorf("%w for %s at %d of %d (last error: %v)", errStalled, stall, last, target, err)
		}
		select {
		case <-ctx.Done():
			return pr, ctx.Err()
		case <-t.C:
		}
	}
}
