// Package obs is wikiflow's observability plumbing shared by every stage process:
// the slog logger, and a small HTTP server per stage with /healthz (ok, or
// degraded with a reason from the stage's Degraded method), /readyz (ready, or
// 503 with the dependency the stage's Ready method found missing), /metrics
// serving the stage's Prometheus registry (NewRegistry: the stage's own
// collectors plus the Go runtime and process ones), and /debug/pprof/.
package obs

import (
	"fmt"
	"io"
	"log/slog"
)

// NewLogger returns a slog logger writing to w at level ("debug", "info", "warn",
// "error") in format "text" or "json".
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
}
