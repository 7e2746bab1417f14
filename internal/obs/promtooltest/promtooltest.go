// Package promtooltest checks Prometheus text expositions with Prometheus's own
// promtool (`promtool check metrics`: the text parser and the lint rules of the
// Prometheus client libraries), an implementation wikiflow did not write.
package promtooltest

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

// installHint says how to get promtool.
const installHint = "install it with `sudo apt-get install -y prometheus` (Debian/Ubuntu) or from https://prometheus.io/download/"

// Path returns promtool's path. Without it the test skips, or fails under CI=true.
func Path(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if testenv.InCI() {
			t.Fatalf("CI=true: promtool not found: %s", installHint)
		}
		t.Skipf("promtool not found: %s", installHint)
	}
	return p
}

// Check feeds text to `promtool check metrics` and fails the test unless it
// reports no problem at all (exit status 0, empty output). name says which page
// it was in the failure message.
func Check(t testing.TB, name string, text []byte) {
	t.Helper()
	cmd := exec.Command(Path(t), "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics on %s: %v\n%s\n--- the page:\n%s", name, err, strings.TrimSpace(string(out)), text)
	}
}
