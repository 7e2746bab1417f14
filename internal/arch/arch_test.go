package arch

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/wikiflow/wikiflow"

// stages are the top-level pipeline packages (with their subpackages).
var stages = []string{"ingest", "bridge", "aggregate", "api", "tui", "replay"}

// contracts are packages of one stage that another stage may import because they
// are its published wire types and import nothing of the module themselves.
var contracts = map[string]bool{"api/apitypes": true}

type pkg struct {
	ImportPath string
	Imports    []string
}

// listPackages runs `go list -json ./...` from the repository root and returns
// every package of the module with its non-test imports, paths relative to it.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		p.ImportPath = rel(p.ImportPath)
		var own []string
		for _, imp := range p.Imports {
			if r := rel(imp); r != imp {
				own = append(own, r)
			}
		}
		p.Imports = own
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// rel strips the module path; a path outside the module is returned unchanged.
func rel(path string) string {
	if path == module {
		return "."
	}
	if r, ok := strings.CutPrefix(path, module+"/"); ok {
		return r
	}
	return path
}

// area names the top-level part a module package belongs to: a stage's name,
// "internal", "lab", "cmd" or another top-level folder.
func area(path string) string {
	first, _, _ := strings.Cut(path, "/")
	return first
}

func isStage(a string) bool {
	for _, s := range stages {
		if a == s {
			return true
		}
	}
	return false
}

// violation says why from may not import to, or "" when it may.
func violation(from, to string) string {
	fa, ta := area(from), area(to)
	switch {
	case isStage(fa) && ta == "lab":
		return "a stage never imports the lab (emulator, generator, bench, chaos, e2e)"
	case isStage(fa) && isStage(ta) && fa != ta && !contracts[to]:
		return "a stage never imports another stage; share the piece through internal/"
	case isStage(fa) && ta == "cmd":
		return "a stage never imports the binary"
	case fa == "internal" && (isStage(ta) || ta == "lab" || ta == "cmd"):
		return "internal/ holds what stages share and imports no stage, lab or cmd package"
	}
	return ""
}

func TestImportRules(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range listPackages(t) {
		seen[area(p.ImportPath)] = true
		for _, imp := range p.Imports {
			if why := violation(p.ImportPath, imp); why != "" {
				t.Errorf("%s imports %s: %s", p.ImportPath, imp, why)
			}
		}
	}
	for _, want := range append([]string{"internal", "lab", "cmd"}, stages...) {
		if !seen[want] {
			t.Errorf("no package under %s/: the layout changed, update this test and ARCHITECTURE.md", want)
		}
	}
}

func TestViolationRules(t *testing.T) {
	cases := []struct {
		from, to string
		bad      bool
	}{
		{"ingest", "internal/wire", false},
		{"tui", "api/apitypes", false},
		{"api", "api/web", false},
		{"replay/rebuild", "internal/projection", false},
		{"lab/chaos", "aggregate", false},
		{"cmd/wikiflow", "lab/gen", false},
		{"tui", "api", true},
		{"bridge", "aggregate", true},
		{"ingest", "lab/gen", true},
		{"internal/projection", "aggregate", true},
		{"internal/wire", "lab/emulator", true},
		{"api", "cmd/wikiflow", true},
	}
	for _, c := range cases {
		if got := violation(c.from, c.to) != ""; got != c.bad {
			t.Errorf("violation(%q, %q) = %v, want %v", c.from, c.to, got, c.bad)
		}
	}
}
