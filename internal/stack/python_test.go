package stack

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

// TestPythonCheckFindsWrongPins runs the version check on a pin that cannot
// hold (pip 0.0.1) and a package that does not exist: both are reported.
// EnsurePython on the repository's own pins installs nothing once they hold.
func TestPythonCheckFindsWrongPins(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if testenv.InCI() {
			t.Fatal("CI=true: python3 is needed")
		}
		t.Skip("python3 is not installed")
	}
	req := filepath.Join(t.TempDir(), "requirements.txt")
	if err := os.WriteFile(req, []byte("# pins\npip==0.0.1\nno-such-package-wikiflow==1.0  # comment\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", pythonCheck, req).Output()
	if err == nil {
		t.Fatalf("the check passed wrong pins: %s", out)
	}
	for _, want := range []string{"pip ", "(want 0.0.1)", "no-such-package-wikiflow missing (want 1.0)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	if err := EnsurePython(context.Background(), root, io.MultiWriter(&log)); err != nil {
		t.Fatalf("EnsurePython: %v\n%s", err, log.String())
	}
	if out, err := exec.Command(py, "-c", pythonCheck, filepath.Join(root, PythonRequirements)).Output(); err != nil {
		t.Errorf("after EnsurePython the pins still do not hold: %s", out)
	}
}
