package obs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Degrader is implemented by a stage that can report running but not making
// progress (for example ingest stuck at a feed position). A non-empty answer is
// the reason, shown by /healthz as status "degraded".
type Degrader interface {
	Degraded() string
}

// Readier is implemented by a stage whose work depends on other services. Ready
// returns nil when every dependency answers, otherwise an error naming the one
// that does not; /readyz answers 503 with that error as the reason. Ready must
// honour ctx, which ends after Stage.ReadyTimeout.
type Readier interface {
	Ready(ctx context.Context) error
}

// DefaultReadyTimeout bounds one Ready call when Stage.ReadyTimeout is zero.
const DefaultReadyTimeout = 2 * time.Second

// Stage is what HealthServer serves for one stage process.
//
// /healthz and /readyz ask Value first and then the value Stats returns (at
// each request): the first of them that implements Degrader (or Readier)
// answers. cmd/wikiflow passes the constructed stage (ingest.Ingester,
// bridge.Bridge, aggregate.Aggregate, the emulator) as Value and its Stats
// method as Stats, so a stage opts in by adding the method to either type.
type Stage struct {
	// Component names the stage in answers: ingest, bridge, …
	Component string
	// Value is the constructed stage, asked for Degrader and Readier.
	Value any
	// Stats returns the stage's counters, also asked for Degrader and Readier;
	// nil or a nil result adds nothing.
	Stats func() any
	// Metrics is what /metrics serves, usually a registry from NewRegistry;
	// nil serves the Go runtime and process metrics alone.
	Metrics prometheus.Gatherer
	// ReadyTimeout bounds one Ready call (DefaultReadyTimeout when zero).
	ReadyTimeout time.Duration
}

// healthAnswer is the body of /healthz and /readyz.
type healthAnswer struct {
	Status    string   `json:"status"`
	Component string   `json:"component"`
	Reason    string   `json:"reason,omitempty"`
	Uptime    *float64 `json:"uptime_seconds,omitempty"`
}

// candidates returns the values asked for Degrader and Readier, in order.
func (st Stage) candidates() []any {
	vs := []any{st.Value}
	if st.Stats != nil {
		vs = append(vs, st.Stats())
	}
	return vs
}

// degraded returns the reason of the first Degrader among the candidates, or
// "" when there is none or it reports nothing.
func (st Stage) degraded() string {
	for _, v := range st.candidates() {
		if d, ok := v.(Degrader); ok {
			return d.Degraded()
		}
	}
	return ""
}

// ready runs the first Readier among the candidates within the ready timeout.
func (st Stage) ready(ctx context.Context) error {
	for _, v := range st.candidates() {
		r, ok := v.(Readier)
		if !ok {
			continue
		}
		timeout := st.ReadyTimeout
		if timeout <= 0 {
			timeout = DefaultReadyTimeout
		}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- r.Ready(rctx) }()
		select {
		case err := <-done:
			if err != nil && rctx.Err() != nil && ctx.Err() == nil {
				return fmt.Errorf("readiness check gave no answer within %s: %w", timeout, err)
			}
			return err
		case <-rctx.Done():
			return fmt.Errorf("readiness check gave no answer within %s", timeout)
		}
	}
	return nil
}

func writeAnswer(w http.ResponseWriter, code int, a healthAnswer) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(a)
}

// Handler returns the stage's HTTP handler: GET /healthz, /readyz, /metrics and
// the Go profiles under /debug/pprof/.
func Handler(st Stage) http.Handler {
	mux := http.NewServeMux()
	start := time.Now()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		up := time.Since(start).Truncate(time.Second).Seconds()
		a := healthAnswer{Status: "ok", Component: st.Component, Uptime: &up}
		if reason := st.degraded(); reason != "" {
			a.Status, a.Reason = "degraded", reason
		}
		writeAnswer(w, http.StatusOK, a)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := st.ready(r.Context()); err != nil {
			writeAnswer(w, http.StatusServiceUnavailable, healthAnswer{Status: "unready", Component: st.Component, Reason: err.Error()})
			return
		}
		writeAnswer(w, http.StatusOK, healthAnswer{Status: "ready", Component: st.Component})
	})
	g := st.Metrics
	if g == nil {
		g = NewRegistry()
	}
	mux.Handle("GET /metrics", MetricsHandler(g))
	// Profiles of the running stage: go tool pprof http://<addr>/debug/pprof/profile
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// HealthServer serves Handler(st) on addr until ctx is cancelled. An empty addr
// serves nothing.
func HealthServer(ctx context.Context, addr string, st Stage, log *slog.Logger) error {
	if addr == "" {
		<-ctx.Done()
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("health server on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: Handler(st), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Debug("health server listening", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("health server: %w", err)
	}
	return nil
}
