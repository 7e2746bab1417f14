package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
)

// PythonRequirements pins the Python clients the tests check wikiflow with,
// relative to the repository root.
const PythonRequirements = "tools/python/requirements.txt"

// pythonCheck prints each pinned package that is missing or at another version
// and exits 1 when there is one.
const pythonCheck = `import sys, importlib.metadata as md
bad = []
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        have = "missing"
    if want and have != want:
        bad.append(f"{name} {have} (want {want})")
print("\n".join(bad))
sys.exit(1 if bad else 0)
`

// EnsurePython installs the pinned Python packages with pip when one of them is
// missing or at another version, saying which and why.
func EnsurePython(ctx context.Context, root string, out io.Writer) error {
	py, err := exec.LookPath("python3")
	if err != nil {
		return errors.New("python3 is missing: the tests check wikiflow with Python clients; install Python 3 with pip (Debian/Ubuntu: sudo apt-get install -y python3 python3-pip)")
	}
	req := filepath.Join(root, PythonRequirements)
	check, err := exec.CommandContext(ctx, py, "-c", pythonCheck, req).Output()
	if err == nil {
		return nil
	}
	fmt.Fprintf(out, "stack: installing the Python clients the tests use (%s):\n  %s\n", PythonRequirements,
		strings.ReplaceAll(strings.TrimSpace(string(check)), "\n", "\n  "))
	cmd := exec.CommandContext(ctx, py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", req)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("python3 -m pip install -r %s: %w (in a Python that refuses system-wide installs, use a virtual environment: python3 -m venv .venv && . .venv/bin/activate)", PythonRequirements, err)
	}
	if out, err := exec.CommandContext(ctx, py, "-c", pythonCheck, req).Output(); err != nil {
		return fmt.Errorf("still not as pinned after pip install: %s", strings.TrimSpace(string(out)))
	}
	return nil
}
