package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/cli"
)

func TestTruncate(t *testing.T) {
	long := strings.Repeat("Ab", 150)
	tests := []struct {
		in   string
		w    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 4, "hel…"},
		{"hello", 1, "…"},
		{"hello", 0, ""},
		{long, 6, "AbAbA…"},
		{"日本語の題名", 7, "日本語…"},                    // wide runes: 2 cells each
		{"👍🏽👍🏽👍🏽", 5, "👍🏽👍🏽…"},                   // emoji with skin tone stays whole
		{"🇩🇪🇫🇷🇮🇹", 4, "🇩🇪…"},                     // flags are one cluster
		{"مرحبا بالعالم", 6, "مرحبا…"},           // right-to-left, kept in logical order
		{"שלום עולם", 5, "שלום…"},                // Hebrew
		{"e\u0301e\u0301e\u0301", 2, "e\u0301…"}, // combining accent stays with its letter
	}
	for _, tt := range tests {
		got := truncate(tt.in, tt.w)
		if got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.w, got, tt.want)
		}
		if width(got) > tt.w {
			t.Errorf("truncate(%q, %d) is %d cells wide", tt.in, tt.w, width(got))
		}
	}
	if got := padRight("日本", 5); got != "日本 " {
		t.Errorf("padRight = %q", got)
	}
	if got := padLeft("7", 3); got != "  7" {
		t.Errorf("padLeft = %q", got)
	}
}

func TestSanitize(t *testing.T) {
	tests := map[string]string{
		"plain":                   "plain",
		"tab\there\nnewline\r":    "tab here newline ",
		"bell\a esc\x1b[31m":      "bell esc[31m",
		"c1\u0085x":               "c1x",
		"rtl \u202Eevil\u202C ok": "rtl evil ok",
		"\u200Fמימין\u200E":       "מימין",
		"zwj 👩‍💻 kept":            "zwj 👩‍💻 kept",
	}
	for in, want := range tests {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSparkline(t *testing.T) {
	tests := []struct {
		pts  []int64
		w    int
		want string
	}{
		{[]int64{0, 1, 2, 3, 4, 5, 6, 7, 8}, 20, " ▁▂▃▄▅▆▇█"},
		{[]int64{0, 0, 0}, 5, "   "},
		{[]int64{5, 10}, 5, "▄█"},
		{[]int64{1, 2, 3, 100}, 2, "▁█"}, // only the last w points
		{nil, 5, ""},
	}
	for _, tt := range tests {
		if got := sparkline(tt.pts, tt.w); got != tt.want {
			t.Errorf("sparkline(%v, %d) = %q, want %q", tt.pts, tt.w, got, tt.want)
		}
	}
}

func TestHumanFormats(t *testing.T) {
	counts := map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4200: "-4,200"}
	for n, want := range counts {
		if got := humanCount(n); got != want {
			t.Errorf("humanCount(%d) = %q, want %q", n, got, want)
		}
	}
	ages := map[time.Duration]string{800 * time.Millisecond: "0.8s", 42 * time.Second: "42s", 190 * time.Second: "3m10s", 125 * time.Minute: "2h05m", -time.Second: "0.0s"}
	for d, want := range ages {
		if got := humanAge(d); got != want {
			t.Errorf("humanAge(%s) = %q, want %q", d, got, want)
		}
	}
	if got := bar(0.5, 4); got != "██" {
		t.Errorf("bar(0.5, 4) = %q", got)
	}
	if got := bar(1.0/32, 4); got != "▏" {
		t.Errorf("bar(1/32, 4) = %q", got)
	}
}

func TestConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if c.API != "http://127.0.0.1:8080" || c.Refresh != 10*time.Second || c.Window != "5m" || !c.Stream || !strings.HasSuffix(c.LogFile, "wikiflow-tui.log") {
		t.Errorf("defaults %+v", c)
	}
	bad := Config{API: "ftp://x", Refresh: 500 * time.Millisecond, Window: "7m"}
	err := bad.Validate()
	for _, want := range []string{"api:", "refresh:", "window:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%+v) = %v, want a %q problem", bad, err, want)
		}
	}

	env := map[string]string{"WIKIFLOW_API_URL": "http://api:9000", "WIKIFLOW_TUI_WINDOW": "1h"}
	var got Config
	f := cli.New("tui", "dashboard", "", func(k string) string { return env[k] }, &strings.Builder{})
	Flags(f, &got)
	if err := f.Parse([]string{"--refresh=2s", "--stream=false"}); err != nil {
		t.Fatal(err)
	}
	if got.API != "http://api:9000" || got.Window != "1h" || got.Refresh != 2*time.Second || got.Stream || got.LogFile != c.LogFile {
		t.Errorf("flags+env: %+v", got)
	}
}
