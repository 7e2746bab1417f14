package e2e

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// timeseriesBody is the part of a /stats/timeseries body the chart draws.
type timeseriesBody struct {
	Times  []string           `json:"times"`
	Total  []int64            `json:"total"`
	Series map[string][]int64 `json:"series"`
}

// chartSeries is what the chart says it draws (its data-series).
type chartSeries struct {
	Times  []int64            `json:"times"`
	Total  []int64            `json:"total"`
	Groups map[string][]int64 `json:"groups"`
}

// splitGroups are the groups each split of the chart shows at most.
var splitGroups = map[string][]string{
	"type": {"edit", "new", "log", "categorize", "external"},
	"bot":  {"bot", "human"},
	"who":  {"bot", "registered", "anonymous", "temporary"},
}

// wantChart reads /stats/timeseries for window and split and sums its minutes
// into the chart's buckets (whole UTC hours for 24h).
func wantChart(t *testing.T, s *webStack, window, split string) chartSeries {
	var body timeseriesBody
	s.getJSON("/stats/timeseries?window="+window+"&by="+split, &body)
	step := int64(60)
	if window == "24h" {
		step = 3600
	}
	out := chartSeries{Groups: map[string][]int64{}}
	for i, ts := range body.Times {
		at, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			t.Fatalf("times[%d] = %q: %v", i, ts, err)
		}
		b := at.Unix() / step * step
		if n := len(out.Times); n == 0 || out.Times[n-1] != b {
			out.Times = append(out.Times, b)
			out.Total = append(out.Total, 0)
			for g := range body.Series {
				out.Groups[g] = append(out.Groups[g], 0)
			}
		}
		k := len(out.Times) - 1
		out.Total[k] += body.Total[i]
		for g, row := range body.Series {
			out.Groups[g][k] += row[i]
		}
	}
	return out
}

// checkSplit clicks the chart's split button, expects it in the URL, and
// compares every point of every group the chart draws with /stats/timeseries.
func checkSplit(t *testing.T, b *browser, s *webStack, window, split string) {
	b.do("split the chart by "+split, chromedp.Click(chromedp.CSS(`#split [data-split="`+split+`"]`)))
	if split != "type" {
		b.waitFor("split="+split+" in the URL", `location.search.includes("split=`+split+`")`, 5*time.Second)
	}
	b.waitFor("the "+split+" split pressed", `document.querySelector("#split [aria-pressed=true]").dataset.split === "`+split+`"`, 5*time.Second)
	want := wantChart(t, s, window, split)
	names := make([]string, 0, len(want.Groups))
	for g := range want.Groups {
		if !slices.Contains(splitGroups[split], g) {
			t.Errorf("/stats/timeseries?by=%s has a group %q", split, g)
		}
		names = append(names, g)
	}
	slices.Sort(names)
	if len(names) < 2 {
		t.Fatalf("/stats/timeseries?by=%s has the groups %v: too few to check a split", split, names)
	}
	b.waitFor("the chart split by "+split, fmt.Sprintf(`(() => { const s = document.querySelector("#chart").dataset.series; if (!s) return false;
	  const g = Object.keys(JSON.parse(s).groups).sort().join(","); return g === %q && document.querySelector("#chart").dataset.sum === "%d"; })()`,
		strings.Join(names, ","), sum(want.Total)), 15*time.Second)
	got := eval[chartSeries](b, `JSON.parse(document.querySelector("#chart").dataset.series)`)
	if fmt.Sprint(got.Times) != fmt.Sprint(want.Times) || fmt.Sprint(got.Total) != fmt.Sprint(want.Total) {
		t.Errorf("split %s: the chart draws times %v totals %v; /stats/timeseries gives %v %v", split, got.Times, got.Total, want.Times, want.Total)
	}
	for _, g := range names {
		if fmt.Sprint(got.Groups[g]) != fmt.Sprint(want.Groups[g]) {
			t.Errorf("split %s, group %s: the chart draws %v, /stats/timeseries gives %v (sums %d, %d)", split, g, got.Groups[g], want.Groups[g], sum(got.Groups[g]), sum(want.Groups[g]))
		}
	}
	legend := eval[[]string](b, `[...document.querySelectorAll("#legend .item[data-group]")].map(e => e.dataset.group).sort()`)
	if strings.Join(legend, ",") != strings.Join(names, ",") {
		t.Errorf("split %s: the legend lists %v, want %v", split, legend, names)
	}
}

func sum(v []int64) int64 {
	var n int64
	for _, x := range v {
		n += x
	}
	return n
}

// legendColorsJS maps each legend group to its swatch's colour, with the chart
// card's background under "".
const legendColorsJS = `(() => {
  const out = {"": getComputedStyle(document.querySelector(".chart-card")).backgroundColor};
  for (const e of document.querySelectorAll("#legend .item[data-group]")) out[e.dataset.group] = getComputedStyle(e.querySelector(".sw")).backgroundColor;
  return out;
})()`

// checkSplitColors expects the who split's four groups in four colours, each
// with a contrast of at least 3:1 (WCAG's for graphics) against the chart's
// background, in the light and the dark theme.
func checkSplitColors(t *testing.T, b *browser) {
	var previous map[string]string
	for _, scheme := range []string{"light", "dark"} {
		b.colorScheme(scheme)
		if previous != nil {
			b.waitFor("the legend in the "+scheme+" theme", `((prev) => { const now = `+legendColorsJS+`;
			  return Object.keys(prev).every(g => now[g] !== prev[g]); })(`+jsonString(t, previous)+`)`, 5*time.Second)
		}
		colors := eval[map[string]string](b, legendColorsJS)
		seen := map[string]string{}
		for _, g := range splitGroups["who"] {
			c, ok := colors[g]
			if !ok {
				t.Errorf("%s theme: the legend has no %s", scheme, g)
				continue
			}
			if other, dup := seen[c]; dup {
				t.Errorf("%s theme: %s and %s share the colour %s", scheme, g, other, c)
			}
			seen[c] = g
			if r := contrast(t, c, colors[""]); r < 3 {
				t.Errorf("%s theme: %s's colour %s has a contrast of %.2f:1 against %s", scheme, g, c, r, colors[""])
			}
		}
		previous = colors
	}
	b.colorScheme("light")
}

// contrast is the WCAG 2 contrast ratio of two CSS rgb() colours.
func contrast(t *testing.T, a, b string) float64 {
	la, lb := luminance(t, a), luminance(t, b)
	return (math.Max(la, lb) + 0.05) / (math.Min(la, lb) + 0.05)
}

// luminance is the WCAG 2 relative luminance of an rgb()/rgba() colour.
func luminance(t *testing.T, c string) float64 {
	inner := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(c, "rgba("), "rgb("), ")")
	parts := strings.Split(inner, ",")
	if len(parts) < 3 {
		t.Fatalf("colour %q is not rgb()", c)
	}
	var l float64
	for i, w := range []float64{0.2126, 0.7152, 0.0722} {
		v, err := strconv.ParseFloat(strings.TrimSpace(parts[i]), 64)
		if err != nil {
			t.Fatalf("colour %q: %v", c, err)
		}
		v /= 255
		if v <= 0.04045 {
			v /= 12.92
		} else {
			v = math.Pow((v+0.055)/1.055, 2.4)
		}
		l += w * v
	}
	return l
}

// checkChartSplits compares each split of the 1 h chart, and the who split of
// the 24 h one, with /stats/timeseries; the who split's URL brings it back, in
// colours told apart in both themes. It ends on the default view.
func checkChartSplits(t *testing.T, b *browser, s *webStack) {
	for _, split := range []string{"bot", "who", "type"} {
		checkSplit(t, b, s, "1h", split)
	}
	b.do("the 24 h window", chromedp.Click(chromedp.CSS(`#window [data-window="24h"]`)))
	checkSplit(t, b, s, "24h", "who")
	href := eval[string](b, `location.href`)
	b.do("load the URL afresh", chromedp.Navigate("about:blank"), chromedp.Navigate(href))
	b.waitReady(20 * time.Second)
	if split := eval[string](b, `document.querySelector("#split [aria-pressed=true]").dataset.split`); split != "who" {
		t.Errorf("%s opens with the %s split", href, split)
	}
	checkSplit(t, b, s, "24h", "who")
	checkSplitColors(t, b)
	b.do("back to the default view", chromedp.Navigate(s.url("/")))
	b.waitReady(20 * time.Second)
}
