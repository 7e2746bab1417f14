package bench

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Measured names a report that another run writes (a browser test, a separate
// benchmark program) and that BENCHMARKS.md carries beside the harness's own figures.
type Measured struct {
	Title string // section title in BENCHMARKS.md
	Path  string // the report's Markdown file, relative to the repository root
	By    string // the command that writes it
}

// MeasuredElsewhere lists the reports BENCHMARKS.md carries from other runs.
var MeasuredElsewhere = []Measured{
	{Title: "Web dashboard in headless Chromium", Path: "docs/web-measurements.md",
		By: "WIKIFLOW_WEB_OUT=$PWD/docs go test -count=1 -run TestWebDashboard ./lab/e2e/"},
	{Title: "/v2/stream/recentchange with 1,000 clients", Path: "lab/bench/eventstream.md",
		By: "go run ./lab/bench/cmd/eventstreambench -clients 1000"},
	{Title: "Cost per event per aggregate shard", Path: "docs/shard-cost.md",
		By: "go run ./lab/bench/cmd/shardcost --shards 1,3 --events 200000 --out docs/shard-cost.md"},
}

// AppendMeasured returns md followed by a section holding each report of ms that
// exists under root, each with the command that wrote it; a missing report is named
// as not measured yet. Headings inside a report are moved below the section's.
func AppendMeasured(md, root string, ms []Measured) (string, error) {
	if len(ms) == 0 {
		return md, nil
	}
	var b strings.Builder
	b.WriteString(md)
	b.WriteString("\n## Measured by other runs\n\nThese figures come from their own runs, not from this harness; each names the command that rewrites it.\n")
	for _, m := range ms {
		fmt.Fprintf(&b, "\n### %s\n\nFrom [%s](%s), written by `%s`.\n\n", m.Title, m.Path, m.Path, m.By)
		body, err := os.ReadFile(root + "/" + m.Path)
		if errors.Is(err, fs.ErrNotExist) {
			b.WriteString("Not measured yet.\n")
			continue
		}
		if err != nil {
			return "", fmt.Errorf("measured report %s: %w", m.Path, err)
		}
		b.WriteString(demote(string(body)))
	}
	return b.String(), nil
}

// demote puts every Markdown heading of s three levels deeper, so that a report's
// own headings sit below the section that holds it.
func demote(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "#") {
			lines[i] = "###" + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}
