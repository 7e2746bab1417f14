package ingest

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/lab/emulator"
)

// TestGapPastTheRetention starts an empty topic from a since older than the
// feed's retention. The emulator, like Wikimedia, then starts at the end without
// saying so; ingest must log the span it could not recover and count it.
func TestGapPastTheRetention(t *testing.T) {
	ecfg := emulator.DefaultConfig()
	ecfg.Loop, ecfg.Rebase = true, true
	ecfg.Retention = time.Hour
	ecfg.ConnLifetime = 300 * time.Millisecond
	emu, err := emulator.New(ecfg, emulator.RecordingSource(), quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		since string
		gap   time.Duration // 0: none
	}{
		{"5s", 0},
		{"2h", 2 * time.Hour},
	} {
		t.Run(tc.since, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.URL = srv.URL + ecfg.Path
			var logs bytes.Buffer
			in, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			since, err := parseSince(tc.since, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			f := &feed{in: in, out: make(chan item, 1000), seen: newRecentIDs(1000), since: since}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if a := f.connect(ctx); !a.progress {
				t.Fatalf("connection brought no event: %v", a.err)
			}
			st := in.Stats()
			if tc.gap == 0 {
				if st.Gaps.Load() != 0 || strings.Contains(logs.String(), "gap") {
					t.Errorf("gap reported for since %s: %d\n%s", tc.since, st.Gaps.Load(), logs.String())
				}
				return
			}
			if st.Gaps.Load() != 1 {
				t.Errorf("Gaps %d, want 1", st.Gaps.Load())
			}
			if d := time.Duration(st.GapSeconds.Load())*time.Second - tc.gap; d < -15*time.Second || d > 15*time.Second {
				t.Errorf("GapSeconds %d, want about %.0f", st.GapSeconds.Load(), tc.gap.Seconds())
			}
			if !strings.Contains(logs.String(), "msg=\"gap: ") || !regexp.MustCompile(`missing=(1h59m|2h0m)`).MatchString(logs.String()) {
				t.Errorf("no gap line with the missing span in the log:\n%s", logs.String())
			}
			if emu.Stats().SinceTooOld.Load() != 1 {
				t.Errorf("the emulator did not see a since past its retention")
			}
		})
	}
}
