package tui

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wikiflow/wikiflow/internal/brokers"
	"github.com/wikiflow/wikiflow/internal/cli"
)

// Windows are the windows the dashboard cycles through with the w key, in order.
var Windows = []string{"1m", "5m", "15m", "1h", "24h", "all"}

// MinRefresh is the shortest polling interval Validate accepts.
const MinRefresh = time.Second

// Config configures the dashboard.
type Config struct {
	// API is the base URL of the wikiflow HTTP API.
	// Default "http://127.0.0.1:8080" (flag --api, $WIKIFLOW_API_URL).
	API string
	// Refresh is how often the dashboard polls the API for the table, the
	// sparklines and the side panels. Default 10s, minimum 1s
	// (flag --refresh, $WIKIFLOW_TUI_REFRESH).
	Refresh time.Duration
	// Window is the window shown at start: one of 1m, 5m, 15m, 1h, 24h, all.
	// Default "5m" (flag --window, $WIKIFLOW_TUI_WINDOW).
	Window string
	// LogFile is where the dashboard writes its logs (never to the terminal it
	// draws on); empty discards them. Default "wikiflow-tui.log" in os.TempDir()
	// (flag --log-file, $WIKIFLOW_TUI_LOG_FILE).
	LogFile string
	// Stream makes the dashboard follow GET /stats/stream for live figures every
	// second when the API offers it; polling goes on beside it and takes over when
	// the stream is missing or broken. Default true (flag --stream, $WIKIFLOW_TUI_STREAM).
	Stream bool
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		API:     "http://127.0.0.1:8080",
		Refresh: 10 * time.Second,
		Window:  "5m",
		LogFile: filepath.Join(os.TempDir(), "wikiflow-tui.log"),
		Stream:  true,
	}
}

// Flags registers the dashboard's flags, with environment fallbacks, on f.
func Flags(f *cli.Flags, c *Config) {
	d := DefaultConfig()
	f.String(&c.API, "api", "WIKIFLOW_API_URL", d.API, "base URL of the wikiflow API")
	f.Duration(&c.Refresh, "refresh", "WIKIFLOW_TUI_REFRESH", d.Refresh, "polling interval (minimum 1s)")
	f.String(&c.Window, "window", "WIKIFLOW_TUI_WINDOW", d.Window, "initial window: "+strings.Join(Windows, ", "))
	f.String(&c.LogFile, "log-file", "WIKIFLOW_TUI_LOG_FILE", d.LogFile, "log file (empty: no logs)")
	f.Bool(&c.Stream, "stream", "WIKIFLOW_TUI_STREAM", d.Stream, "follow /stats/stream for live figures when the API offers it")
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.API); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("api: want an http(s) URL such as http://127.0.0.1:8080, got %q", brokers.Redact(c.API)))
	}
	if c.Refresh < MinRefresh {
		errs = append(errs, fmt.Errorf("refresh: must be at least %s, got %s", MinRefresh, c.Refresh))
	}
	if !slices.Contains(Windows, c.Window) {
		errs = append(errs, fmt.Errorf("window: must be one of %s, got %q", strings.Join(Windows, ", "), c.Window))
	}
	return errors.Join(errs...)
}
