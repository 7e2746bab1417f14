package api

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

// Pinned versions of the independent clients (tools/python/requirements.txt).
const (
	schemathesisVersion = "4.32.5"
	installPython       = "pip install -r tools/python/requirements.txt"
)

// external returns the path of a program that checks the API from outside.
// Under CI a missing program fails the test (CI installs it); elsewhere the test
// is skipped with how to install it.
func external(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if testenv.InCI() {
		t.Fatalf("%s is not installed, and CI must run this test (install: %s)", name, install)
	}
	t.Skipf("%s is not installed (install: %s)", name, install)
	return ""
}

// pythonWith returns python3 after checking that it imports module.
func pythonWith(t *testing.T, module string) string {
	t.Helper()
	py := external(t, "python3", "apt-get install python3")
	if out, err := exec.Command(py, "-c", "import "+module).CombinedOutput(); err != nil {
		if testenv.InCI() {
			t.Fatalf("python3 cannot import %s (install: %s): %s", module, installPython, out)
		}
		t.Skipf("python3 cannot import %s (install: %s)", module, installPython)
	}
	return py
}

// runTool runs a program with a deadline and returns its combined output.
func runTool(t *testing.T, timeout time.Duration, stdin []byte, name string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %s:\n%s", name, timeout, out)
	}
	return out, err
}

// schemathesisConfig reads one event of each event stream (the first comes at
// once) instead of waiting for 20 or the request timeout.
const schemathesisConfig = `max-stream-events = 1
request-timeout = 10
`

// TestSchemathesis runs schemathesis (every operation of /openapi.json, every
// check, examples, coverage and fuzzing phases, a bounded number of cases) against
// a real server on the real Redis holding the fixture, and wants 0 failures.
func TestSchemathesis(t *testing.T) {
	st := external(t, "schemathesis", installPython)
	if out, err := exec.Command(st, "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), schemathesisVersion) {
		t.Fatalf("schemathesis %s wanted, found %q (%v)", schemathesisVersion, out, err)
	}
	f := newFixture(t)
	s := newServer(t, f.base, func(c *Config) { c.Addr = "127.0.0.1:0" })
	base := startServer(t, s)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "schemathesis.toml")
	if err := os.WriteFile(cfg, []byte(schemathesisConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	// The document as the server serves it, read from a file: loaded from its URL,
	// schemathesis leaves the operation GET /openapi.json out.
	status, doc := fetch(t, base+"/openapi.json")
	if status != 200 {
		t.Fatalf("GET /openapi.json: %d", status)
	}
	docFile := filepath.Join(dir, "openapi.json")
	if err := os.WriteFile(docFile, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := runTool(t, 3*time.Minute, nil, st, "--config-file", cfg, "--no-color", "run", docFile,
		"--url", base,
		"--checks", "all",
		"--phases", "examples,coverage,fuzzing",
		"--max-examples", "100",
		"--workers", "2",
		"--suppress-health-check", "too_slow",
		"--report", "junit", "--report-dir", dir)
	t.Logf("schemathesis took %s", time.Since(start).Round(time.Second))
	text := string(out)
	if err != nil {
		t.Fatalf("schemathesis reports problems (%v):\n%s", err, text)
	}
	if !strings.Contains(text, "No issues found") {
		t.Errorf("schemathesis output does not say it found no issues:\n%s", text)
	}
	checkEveryOperationTested(t, dir, doc)
	t.Logf("%s", lastLines(text, 25))
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkEveryOperationTested reads schemathesis's JUnit report in dir and checks
// that it holds a passed test case for every operation of the document.
func checkEveryOperationTested(t *testing.T, dir string, doc []byte) {
	t.Helper()
	var spec struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(doc, &spec); err != nil {
		t.Fatal(err)
	}
	reports, _ := filepath.Glob(filepath.Join(dir, "junit*.xml"))
	if len(reports) != 1 {
		t.Fatalf("want one JUnit report in %s, found %v", dir, reports)
	}
	raw, err := os.ReadFile(reports[0])
	if err != nil {
		t.Fatal(err)
	}
	var junit struct {
		Suites []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(raw, &junit); err != nil {
		t.Fatalf("JUnit report: %v", err)
	}
	passed := map[string]bool{}
	for _, s := range junit.Suites {
		for _, c := range s.Cases {
			passed[c.Name] = c.Failure == nil && c.Error == nil && c.Skipped == nil
		}
	}
	n := 0
	for path, item := range spec.Paths {
		for method := range item {
			n++
			if op := strings.ToUpper(method) + " " + path; !passed[op] {
				t.Errorf("schemathesis did not test %s and pass (report: %v)", op, passed)
			}
		}
	}
	t.Logf("schemathesis tested and passed all %d operations", n)
}
