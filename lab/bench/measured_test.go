package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAppendMeasured(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "docs", "a.md"), []byte("# A\n\n| x | 1 |\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ms := []Measured{{Title: "A run", Path: "docs/a.md", By: "make a"}, {Title: "B run", Path: "docs/b.md", By: "make b"}}
	got, err := AppendMeasured("# Report\n", root, ms)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Report\n", "## Measured by other runs", "### A run", "written by `make a`", "#### A\n", "| x | 1 |", "### B run", "Not measured yet."} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\n# A") {
		t.Errorf("a report's heading was not demoted:\n%s", got)
	}
}

func TestMeasuredElsewhereExist(t *testing.T) {
	for _, m := range MeasuredElsewhere {
		if _, err := os.Stat(filepath.Join("../..", m.Path)); err != nil {
			t.Errorf("%s: %v (run `%s`)", m.Title, err, m.By)
		}
	}
}
