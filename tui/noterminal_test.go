package tui

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

// TestRunWithoutTerminalFailsCleanly starts the dashboard where there is no
// terminal, with its context already cancelled (the race of Ctrl-C against a
// failing start): Run must return the terminal's error, never panic.
func TestRunWithoutTerminalFailsCleanly(t *testing.T) {
	if f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0); err == nil {
		f.Close()
		if !testenv.InCI() {
			t.Skip("a terminal is attached: the dashboard would start on it")
		}
	}
	f := newFakeAPI(t)
	for i := range 20 {
		cfg := DefaultConfig()
		cfg.API = f.srv.URL
		cfg.LogFile = filepath.Join(t.TempDir(), "tui.log")
		d, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := d.Run(ctx); err == nil {
			t.Fatalf("run %d: Run without a terminal returned nil", i)
		}
	}
}
