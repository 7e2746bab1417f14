// Package promtooltest checks Prometheus text expositions with Prometheus's own
// promtool (`promtool check metrics`: the text parser and the lint rules of the
// Prometheus client libraries), an implementation wikiflow did not write, and
// finds the other external programs tests check wikiflow against.
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

// Tool returns the path of the external program name. Without it the test
// skips with hint (how to install it), or fails under CI=true, where every
// independent checker must run.
func Tool(t testing.TB, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testenv.InCI() {
			t.Fatalf("CI=true: %s not found: %s", name, hint)
		}
		t.Skipf("%s not found: %s", name, hint)
	}
	return p
}

// Path returns promtool's path (see Tool).
func Path(t testing.TB) string {
	t.Helper()
	return Tool(t, "promtool", installHint)
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
