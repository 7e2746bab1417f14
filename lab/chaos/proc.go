package chaos

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wikiflow/wikiflow/internal/stack"
)

// service is a pipeline process that is restarted whenever it exits, like a
// process supervisor would: after the delay chosen by the kill that ended it,
// or after a second when it exited by itself.
type service struct {
	*stack.Proc
	mu      sync.Mutex
	delay   time.Duration // delay before the next restart; set by kill
	killing bool          // the next exit is a kill of the run's
	kills   int
	crashes []string // exits the run did not cause
	stopped chan struct{}
	loop    chan struct{} // closed when the supervisor has returned
}

func newService(p *stack.Proc) *service {
	return &service{Proc: p, stopped: make(chan struct{}), loop: make(chan struct{})}
}

// supervise runs the service until halt is called.
func (s *service) supervise(progress func(string, ...any)) {
	defer close(s.loop)
	for {
		if err := s.Start(); err != nil {
			progress("%s: %v", s.Name, err)
		}
		_, done := s.Running()
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
			if err := s.ExitError(); err != nil {
				reason = err.Error()
			}
			s.crashes = append(s.crashes, fmt.Sprintf("%s: %s", time.Now().Format("15:04:05"), reason))
			progress("%s exited by itself (%s); restarting it in 1s", s.Name, reason)
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
		if up, _ := s.Running(); up {
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
	s.Kill()
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
	s.Stop(grace)
}

// crashList returns the exits the run did not cause.
func (s *service) crashList() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.crashes...)
}

var errNotHealthy = errors.New("not healthy")
