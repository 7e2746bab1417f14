package e2e

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestWebDashboard drives the dashboard at / in headless Chromium against the
// real pipeline (the bundled recording published into JetStream and applied by
// the live aggregate into Redis): the numbers it shows equal /stats, the chart
// has its points, the ticker receives events and holds to its filters, it can
// be used with the keyboard, the URL brings back the same view, and the page
// recovers when the API restarts. It measures the page weight, the time to the
// first full render and the browser's CPU at 100 events/s, and takes the
// screenshots (see webArtifacts).
func TestWebDashboard(t *testing.T) {
	s := newWebStack(t)
	tk := newTickerLog(s)
	now := time.Now()
	s.publish(s.recordedAt(wavy(2500, now.Add(-24*time.Hour), now.Add(-time.Hour), time.Hour)))
	s.publish(s.recordedAt(wavy(6000, now.Add(-time.Hour), now.Add(-5*time.Second), time.Minute)))
	s.waitApplied()
	s.startAPI("127.0.0.1:0")
	t.Cleanup(s.stopAPI)
	b := newBrowser(t)
	var res webResults

	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"FirstLoad", func(t *testing.T) { res.firstLoad(t, b, s) }},
		{"NumbersEqualStats", func(t *testing.T) { checkNumbers(t, b, s, "1h", ""); checkChart(t, b, s, "1h") }},
		{"ChartSplits", func(t *testing.T) { checkChartSplits(t, b, s) }},
		{"TopLists", func(t *testing.T) { checkTopLists(t, b, s) }},
		{"Screenshots", func(t *testing.T) { res.screenshots(t, b, s) }},
		{"TickerReceivesEvents", func(t *testing.T) { tk.check(t, b, tickerFilter{}) }},
		{"TickerFiltersHold", func(t *testing.T) { checkTickerFilters(t, b, tk) }},
		{"Keyboard", func(t *testing.T) { checkKeyboard(t, b, s) }},
		{"URLKeepsTheView", func(t *testing.T) { checkURLState(t, b, s) }},
		{"Theme", func(t *testing.T) { checkTheme(t, b) }},
		{"CPUAt100EventsPerSecond", func(t *testing.T) { res.cpu(t, b, s, tk) }},
		{"RecoversAfterAPIRestart", func(t *testing.T) { checkRestart(t, b, s, tk) }},
	}
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			b.t, s.t = t, t
			start := time.Now()
			st.fn(t)
			t.Logf("%s took %s", st.name, time.Since(start).Round(time.Millisecond))
		})
		b.t, s.t = t, t
		if !ok {
			break
		}
	}
	res.write(t)
}

// pageView is what the page shows, read from its DOM.
type pageView struct {
	Total     string    `json:"total"`
	BotShare  string    `json:"bot_share"`
	Wikis     string    `json:"wikis"`
	EPM       string    `json:"epm"`
	Freshness string    `json:"freshness"`
	Rows      []pageRow `json:"rows"`
	Conn      string    `json:"conn"`
	// TotalText and WikisText are the digits of what the headline shows.
	TotalText string `json:"total_text"`
	WikisText string `json:"wikis_text"`
}

type pageRow struct {
	Domain string `json:"domain"`
	Count  string `json:"count"`
	Text   string `json:"text"` // the digits of the count cell
}

const viewJS = `(() => {
  const m = (k) => document.querySelector('[data-metric="' + k + '"]').dataset.value ?? "";
  return {
    total: m("total"), bot_share: m("bot_share"), wikis: m("wikis"), epm: m("epm"), freshness: m("freshness"),
    rows: [...document.querySelectorAll("#wikis tbody tr[data-domain]")].map(r => ({domain: r.dataset.domain, count: r.dataset.count, text: r.cells[2].textContent.replace(/\D/g, "")})),
    conn: document.querySelector("#conn").dataset.state,
    total_text: document.querySelector('[data-metric="total"]').textContent.replace(/\D/g, ""),
    wikis_text: document.querySelector('[data-metric="wikis"]').textContent.replace(/\D/g, ""),
  };
})()`

// showAllWikis expands the table to every wiki that passes its filter.
const showAllWikis = `(() => { const b = document.querySelector("#wikis-more"); if (!b.hidden && b.textContent.startsWith("show all")) b.click(); return true; })()`

func num(t *testing.T, what, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%s: the page shows %q, not a number", what, s)
	}
	return f
}

// checkNumbers compares the headline and the table (every row, filtered by q)
// with /stats of the window and /stats?window=5m.
func checkNumbers(t *testing.T, b *browser, s *webStack, window, q string) {
	var want, five windowStats
	s.getJSON("/stats?window="+window+"&by=domain", &want)
	s.getJSON("/stats?window=5m", &five)
	b.waitFor("the page's total to equal /stats", fmt.Sprintf(`document.querySelector('[data-metric="total"]').dataset.value === "%d"`, want.Total), 15*time.Second)
	b.waitFor("edits per minute to equal /stats?window=5m", fmt.Sprintf(`Math.abs(Number(document.querySelector('[data-metric="epm"]').dataset.value) - %v) < 1e-9`, five.EditsPerMinute), 15*time.Second)
	eval[bool](b, showAllWikis)
	v := eval[pageView](b, viewJS)
	if v.TotalText != strconv.FormatInt(want.Total, 10) || v.WikisText != strconv.Itoa(len(want.Stats)) {
		t.Errorf("the headline reads %s edits and %s wikis, /stats says %d and %d", v.TotalText, v.WikisText, want.Total, len(want.Stats))
	}
	if got := num(t, "bot share", v.BotShare); math.Abs(got-want.BotShare) > 1e-12 {
		t.Errorf("bot share %v, /stats says %v", got, want.BotShare)
	}
	if got := num(t, "active wikis", v.Wikis); int(got) != len(want.Stats) {
		t.Errorf("active wikis %v, /stats lists %d", got, len(want.Stats))
	}
	if f := num(t, "freshness", v.Freshness); want.FreshnessSeconds == nil || f < 0 || math.Abs(f-*want.FreshnessSeconds) > 3 {
		t.Errorf("freshness %v s, /stats says %v", f, want.FreshnessSeconds)
	}
	shown := map[string]bool{}
	for i, r := range v.Rows {
		shown[r.Domain] = true
		if c, ok := want.Stats[r.Domain]; !ok || strconv.FormatInt(c, 10) != r.Count || r.Text != r.Count {
			t.Errorf("row %s: %s edits (reads %s), /stats says %d", r.Domain, r.Count, r.Text, c)
		}
		if q == "" && i > 0 && num(t, "count", v.Rows[i-1].Count) < num(t, "count", r.Count) {
			t.Errorf("rows %d and %d are not by count, largest first", i, i+1)
		}
	}
	for d := range want.Stats {
		if strings.Contains(d, q) && !shown[d] {
			t.Errorf("wiki %s (%d edits) is missing from the table", d, want.Stats[d])
		}
	}
	if len(v.Rows) == 0 {
		t.Error("the table shows no wiki")
	}
}

// chartPixelsJS counts the chart's canvas pixels painted in a series colour.
const chartPixelsJS = `(() => {
  const colors = new Set([...document.querySelectorAll("#legend .sw")].map(e => getComputedStyle(e).backgroundColor.replace(/\s/g, "")));
  const c = document.querySelector("#chart canvas");
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (colors.has("rgb(" + d[i] + "," + d[i+1] + "," + d[i+2] + ")")) n++;
  return n;
})()`

// checkChart compares the chart's points with the window's buckets and sum, and
// looks at its canvas for painted bars.
func checkChart(t *testing.T, b *browser, s *webStack, window string) {
	var want windowStats
	s.getJSON("/stats?window="+window, &want)
	asOf, err := time.Parse(time.RFC3339Nano, *want.AsOf)
	if err != nil {
		t.Fatal(err)
	}
	points := 60
	if window == "24h" {
		last := asOf.Unix() / 60
		points = int(last/60-(last-1439)/60) + 1
	}
	b.waitFor("the chart's sum to equal /stats", fmt.Sprintf(`document.querySelector("#chart").dataset.sum === "%d" && document.querySelector("#chart").dataset.points === "%d"`, want.Total, points), 15*time.Second)
	nonzero := int(num(t, "non-zero points", eval[string](b, `document.querySelector("#chart").dataset.nonzero`)))
	if nonzero < points/2 {
		t.Errorf("%d of the chart's %d points are non-zero, want at least half", nonzero, points)
	}
	if px := eval[int](b, chartPixelsJS); px < 2000 {
		t.Errorf("the chart's canvas has %d pixels in series colours: no bars drawn", px)
	}
}

type topItem struct {
	Domain string `json:"domain"`
	Title  string `json:"title"`
	User   string `json:"user"`
	Count  int64  `json:"count"`
	Href   string `json:"href"`
}

const topJS = `((sel) => [...document.querySelectorAll(sel + " li[data-domain]")].map(li => ({
  domain: li.dataset.domain, title: li.dataset.title ?? "", user: li.dataset.user ?? "", count: Number(li.dataset.count), href: li.querySelector("a")?.href ?? ""})))`

// checkTopLists compares the top lists with /stats/top/* and checks that each
// links to its page or user on its own wiki.
func checkTopLists(t *testing.T, b *browser, s *webStack) {
	var pages, editors struct{ Items []topItem }
	s.getJSON("/stats/top/pages?window=1h&top=10", &pages)
	s.getJSON("/stats/top/editors?window=1h&top=10", &editors)
	b.waitFor("the top lists", `document.querySelectorAll("#top-pages li[data-domain]").length > 0 && document.querySelectorAll("#top-editors li[data-domain]").length > 0`, 15*time.Second)
	for _, l := range []struct {
		sel    string
		want   []topItem
		prefix string
	}{{"#top-pages", pages.Items, "/wiki/"}, {"#top-editors", editors.Items, "/wiki/Special:Contributions/"}} {
		got := eval[[]topItem](b, topJS+`("`+l.sel+`")`)
		if len(got) != len(l.want) || len(got) == 0 {
			t.Fatalf("%s: %d items, the API lists %d", l.sel, len(got), len(l.want))
		}
		for i, g := range got {
			w := l.want[i]
			name := w.Title + w.User
			if g.Domain != w.Domain || g.Title+g.User != name || g.Count != w.Count {
				t.Errorf("%s item %d: %+v, the API says %+v", l.sel, i+1, g, w)
			}
			u, err := url.Parse(g.Href)
			if err != nil || u.Scheme != "https" || u.Host != w.Domain || u.Path != l.prefix+strings.ReplaceAll(name, " ", "_") {
				t.Errorf("%s item %d links to %q, not to %s on https://%s", l.sel, i+1, g.Href, name, w.Domain)
			}
		}
	}
}

// checkKeyboard uses the page with keys only: "/" to the wiki filter, typing,
// Enter on a wiki for its detail, Escape to close it.
func checkKeyboard(t *testing.T, b *browser, s *webStack) {
	b.press("/", "Slash", 191)
	if id := eval[string](b, `document.activeElement.id`); id != "wiki-filter" {
		t.Fatalf("after /, the focus is on %q, not the wiki filter", id)
	}
	b.do("type a filter", chromedp.KeyEvent("wikipedia"))
	b.waitFor("q in the URL", `location.search.includes("q=wikipedia")`, 5*time.Second)
	checkNumbers(t, b, s, "1h", "wikipedia")
	domain := eval[string](b, `(() => { const b = document.querySelector("#wikis tbody td.domain button"); b.focus(); return b.textContent; })()`)
	b.do("press Enter on a wiki", chromedp.KeyEvent(kb.Enter))
	b.waitFor("the detail dialog", `document.querySelector("#detail").open && location.search.includes("wiki=")`, 5*time.Second)
	var want windowStats
	s.getJSON("/stats?window=1h&by=type&domain="+url.QueryEscape(domain), &want)
	b.waitFor("the wiki's own figures", fmt.Sprintf(`document.querySelector('[data-detail="total"]').dataset.value === "%d" && document.querySelector("#detail-chart").dataset.sum === "%d"`, want.Total, want.Total), 10*time.Second)
	var pages struct{ Items []topItem }
	s.getJSON("/stats/top/pages?window=1h&domain="+url.QueryEscape(domain), &pages)
	if got := eval[[]topItem](b, topJS+`("#detail-pages")`); len(got) != len(pages.Items) {
		t.Errorf("the detail of %s lists %d top pages, the API %d", domain, len(got), len(pages.Items))
	}
	b.do("press Escape", chromedp.KeyEvent(kb.Escape))
	b.waitFor("the dialog to close and leave the URL", `!document.querySelector("#detail").open && !location.search.includes("wiki=")`, 5*time.Second)
	b.do("clear the filter", chromedp.Evaluate[chromedp.Void](`(() => { const q = document.querySelector("#wiki-filter"); q.value = ""; q.dispatchEvent(new Event("input", {bubbles: true})); })()`))
}

// viewStateJS reads what the URL is meant to bring back.
const viewStateJS = `(() => ({
  window: document.querySelector("#window [aria-pressed=true]").dataset.window,
  split: document.querySelector("#split [aria-pressed=true]").dataset.split,
  sort: [...document.querySelectorAll("#wikis th")].map(th => th.getAttribute("aria-sort") ?? "").join(","),
  q: document.querySelector("#wiki-filter").value,
  filters: Object.fromEntries([...document.querySelector("#ticker-filters").elements].map(e => [e.name, e.value])),
  rows: [...document.querySelectorAll("#wikis tbody tr[data-domain]")].map(r => r.dataset.domain).join(","),
}))()`

type viewState struct {
	Window  string            `json:"window"`
	Split   string            `json:"split"`
	Sort    string            `json:"sort"`
	Q       string            `json:"q"`
	Filters map[string]string `json:"filters"`
	Rows    string            `json:"rows"`
}

// checkURLState changes the view, loads its URL afresh and expects the same view.
func checkURLState(t *testing.T, b *browser, s *webStack) {
	b.do("change the view",
		chromedp.Click(chromedp.CSS(`#window [data-window="24h"]`)),
		chromedp.Click(chromedp.CSS(`#split [data-split="bot"]`)),
		chromedp.Click(chromedp.CSS(`#wikis th button[data-sort="domain"]`)),
		chromedp.SendKeys(chromedp.CSS("#wiki-filter"), "wik"),
	)
	setFilters(b, map[string]string{"ttype": "edit", "tmin": "10", "tkind": "human"})
	b.waitFor("the view in the URL", `["window=24h", "split=bot", "sort=domain", "q=wik", "ttype=edit", "tmin=10", "tkind=human"].every(p => location.search.includes(p))`, 5*time.Second)
	checkChart(t, b, s, "24h")
	eval[bool](b, showAllWikis)
	before := eval[viewState](b, viewStateJS)
	href := eval[string](b, `location.href`)
	b.do("load the URL afresh", chromedp.Navigate("about:blank"), chromedp.Navigate(href))
	b.waitReady(20 * time.Second)
	checkChart(t, b, s, "24h")
	checkNumbers(t, b, s, "24h", "wik")
	after := eval[viewState](b, viewStateJS)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("the URL %s brought back another view:\nbefore %+v\nafter  %+v", href, before, after)
	}
	if after.Window != "24h" || after.Split != "bot" || !strings.Contains(after.Sort, "ascending") || after.Filters["ttype"] != "edit" {
		t.Errorf("the view after loading %s: %+v", href, after)
	}
	b.do("back to the default view", chromedp.Navigate(s.url("/")))
	b.waitReady(20 * time.Second)
}

// checkTheme cycles the toggle auto → light → dark → auto under a dark system theme.
func checkTheme(t *testing.T, b *browser) {
	b.colorScheme("dark")
	bg := func() string { return eval[string](b, `getComputedStyle(document.body).backgroundColor`) }
	auto := bg()
	b.do("choose light", chromedp.Click(chromedp.CSS("#theme")))
	light := bg()
	b.do("choose dark", chromedp.Click(chromedp.CSS("#theme")))
	dark := bg()
	b.do("choose auto", chromedp.Click(chromedp.CSS("#theme")))
	if light == dark || auto != dark || bg() != auto {
		t.Errorf("backgrounds: auto (system dark) %s, light %s, dark %s, auto again %s", auto, light, dark, bg())
	}
	if th := eval[string](b, `document.documentElement.dataset.theme ?? "auto"`); th != "auto" {
		t.Errorf("after three clicks the theme is %q, not auto", th)
	}
	b.colorScheme("light")
	if bg() == dark {
		t.Error("the auto theme does not follow prefers-color-scheme: light")
	}
}

// setFilters sets ticker filters as a user would, field by field.
func setFilters(b *browser, f map[string]string) {
	b.t.Helper()
	js := `((f) => { const form = document.querySelector("#ticker-filters");
	  for (const [k, v] of Object.entries(f)) { const el = form.elements[k]; el.value = v; el.dispatchEvent(new Event("input", {bubbles: true})); }
	  form.dispatchEvent(new Event("submit", {cancelable: true})); return true; })(` + jsonString(b.t, f) + `)`
	eval[bool](b, js)
}

// checkRestart stops the API, expects the page to say so, publishes meanwhile,
// starts the API again on the same port and expects live, fresh numbers and
// the ticker to have caught up.
func checkRestart(t *testing.T, b *browser, s *webStack, tk *tickerLog) {
	addr := s.addr
	s.stopAPI()
	b.waitFor("the page to show it is disconnected", `document.querySelector("#conn").dataset.state === "reconnecting" && document.querySelector("#conn").textContent.includes("disconnected") && document.querySelector("#ticker-state").dataset.state === "reconnecting"`, 15*time.Second)
	batch := tk.publish(40)
	s.waitApplied()
	time.Sleep(2 * time.Second)
	if st := eval[string](b, `document.querySelector("#conn").dataset.state`); st != "reconnecting" {
		t.Errorf("with the API down the page says %q", st)
	}
	s.startAPI(addr)
	b.waitFor("the page to be live again", `document.querySelector("#conn").dataset.state === "live" && document.querySelector("#ticker-state").dataset.state === "live"`, 20*time.Second)
	checkNumbers(t, b, s, "1h", "")
	if f := num(t, "freshness", eval[string](b, `document.querySelector('[data-metric="freshness"]').dataset.value`)); f > 10 {
		t.Errorf("freshness %v s after the restart", f)
	}
	tk.expect(t, b, tickerFilter{}, batch)
}
