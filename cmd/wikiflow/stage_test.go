package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is a wikiflow command run in-process by startCommand.
type running struct {
	stdout, stderr syncBuffer
	addr           string // where it serves /healthz (empty when it does not)
	cancel         context.CancelFunc
	done           chan error
	once           sync.Once
	err            error // what the command returned, set by stop
}

// startCommand runs `wikiflow <args>` with the environment env until stop or
// the end of the test. With health set, it adds --health-addr on a free port and
// waits until /healthz answers.
func startCommand(t *testing.T, args []string, env map[string]string, health bool) *running {
	t.Helper()
	if !health {
		return startServing(t, args, env, "")
	}
	addr := freeAddr(t)
	return startServing(t, append(append([]string(nil), args...), "--health-addr", addr), env, addr)
}

// startServing runs `wikiflow <args>` like startCommand; when addr is not empty,
// it waits until GET addr/healthz gets an HTTP answer (the command serves there).
func startServing(t *testing.T, args []string, env map[string]string, addr string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), addr: addr}
	go func() { r.done <- run(ctx, args, func(k string) string { return env[k] }, &r.stdout, &r.stderr) }()
	t.Cleanup(func() { r.stop() })
	if addr == "" {
		return r
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := r.get(t, "/healthz"); code != 0 {
			return r
		}
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("%v ended before serving /healthz: %v\n%s", args, err, r.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v: /healthz does not answer\n%s", args, r.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get fetches a page of the command's health server; code 0 when it does not answer.
func (r *running) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + r.addr + path)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return resp.StatusCode, b
}

// waitMetric waits until the command's /metrics shows name at min or more.
func (r *running) waitMetric(t *testing.T, name string, min float64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		_, page := r.get(t, "/metrics")
		for _, line := range strings.Split(string(page), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == name {
				last = f[1]
				if v, err := strconv.ParseFloat(f[1], 64); err == nil && v >= min {
					return
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s = %q after %s, want %v or more\n%s", name, last, within, min, r.stderr.String())
}

// stop cancels the command and returns what it returned.
func (r *running) stop() error {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(20 * time.Second):
			r.err = context.DeadlineExceeded
		}
	})
	return r.err
}
