package tui

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/uniseg"
)

// harness runs a dashboard on a simulation screen against a fake API.
type harness struct {
	t    *testing.T
	d    *Dashboard
	scr  tcell.SimulationScreen
	api  *fakeAPI
	done chan error
}

func startDashboard(t *testing.T, f *fakeAPI, w, h int) *harness {
	t.Helper()
	scr := tcell.NewSimulationScreen("UTF-8")
	cfg := DefaultConfig()
	cfg.API = f.srv.URL
	cfg.Refresh = time.Second
	cfg.LogFile = filepath.Join(t.TempDir(), "tui.log")
	d, err := NewWithScreen(cfg, nil, scr)
	if err != nil {
		t.Fatal(err)
	}
	scr.SetSize(w, h)
	hs := &harness{t: t, d: d, scr: scr, api: f, done: make(chan error, 1)}
	go func() { hs.done <- d.Run(context.Background()) }()
	t.Cleanup(func() {
		d.quit()
		select {
		case err := <-hs.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after quit")
		}
	})
	return hs
}

// screen returns the screen's lines as drawn, wide characters once.
func (h *harness) screen() []string {
	ch := make(chan []string, 1)
	h.d.app.QueueUpdate(func() {
		cells, w, ht := h.scr.GetContents()
		out := make([]string, ht)
		for y := 0; y < ht; y++ {
			var b strings.Builder
			for x := 0; x < w; x++ {
				c := cells[y*w+x]
				s := string(c.Runes)
				if s == "" {
					s = " "
				}
				b.WriteString(s)
				if uniseg.StringWidth(s) == 2 {
					x++
				}
			}
			out[y] = b.String()
		}
		ch <- out
	})
	return <-ch
}

// styleAt returns the style of one screen cell.
func (h *harness) styleAt(x, y int) tcell.Style {
	ch := make(chan tcell.Style, 1)
	h.d.app.QueueUpdate(func() {
		cells, w, _ := h.scr.GetContents()
		ch <- cells[y*w+x].Style
	})
	return <-ch
}

// waitFor waits until cond holds for the screen, failing with the screen shown.
func (h *harness) waitFor(what string, cond func(lines []string) bool) []string {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines := h.screen()
		if cond(lines) {
			return lines
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("screen never showed %s:\n%s", what, strings.Join(lines, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) waitText(texts ...string) []string {
	h.t.Helper()
	return h.waitFor(strings.Join(texts, " + "), func(lines []string) bool {
		all := strings.Join(lines, "\n")
		for _, s := range texts {
			if !strings.Contains(all, s) {
				return false
			}
		}
		return true
	})
}

func (h *harness) key(r rune) { h.scr.InjectKey(tcell.KeyRune, r, tcell.ModNone) }

func (h *harness) special(k tcell.Key) { h.scr.InjectKey(k, 0, tcell.ModNone) }

// rowOrder returns the order in which the domains appear in the table column
// (left of the side panels).
func rowOrder(lines []string, doms []string) []string {
	var out []string
	for _, l := range lines {
		// Keep what is left of the table's right border, which touches the
		// side panels' left border.
		left := l
		for _, pair := range []string{"║│", "║┌", "║└", "││", "│┌", "│└"} {
			if i := strings.Index(l, pair); i > 0 && i < len(left) {
				left = l[:i]
			}
		}
		for _, d := range doms {
			if strings.Contains(left, " "+d+" ") {
				out = append(out, d)
			}
		}
	}
	return out
}

var fiveDomains = []string{"commons.wikimedia.org", "www.wikidata.org", "en.wikipedia.org", "de.wikipedia.org", "fr.wiktionary.org"}

func TestViewSortOrderAndFilter(t *testing.T) {
	h := startDashboard(t, newFakeAPI(t), 120, 30)
	lines := h.waitText(fiveDomains...)
	if got := rowOrder(lines, fiveDomains); !slices.Equal(got, fiveDomains) {
		t.Errorf("rank order on screen %v", got)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "# ▲") {
		t.Error("the rank column is not marked as the sort column")
	}

	h.key('2')
	alpha := slices.Sorted(slices.Values(fiveDomains))
	h.waitFor("rows by domain", func(l []string) bool { return slices.Equal(rowOrder(l, fiveDomains), alpha) })
	h.key('2')
	slices.Reverse(alpha)
	lines = h.waitFor("rows by domain, reversed", func(l []string) bool { return slices.Equal(rowOrder(l, fiveDomains), alpha) })
	if !strings.Contains(strings.Join(lines, "\n"), "domain ▼") {
		t.Error("the domain column does not show the descending arrow")
	}

	h.key('/')
	for _, r := range "PEDIA" {
		h.key(r)
	}
	h.special(tcell.KeyEnter)
	lines = h.waitFor("the filter applied and its input closed", func(l []string) bool {
		all := strings.Join(l, "\n")
		return strings.Contains(all, "wikis 2/5") && strings.Contains(all, "“PEDIA”") && !strings.Contains(all, "filter domain:")
	})
	if got := rowOrder(lines, fiveDomains); !slices.Equal(got, []string{"en.wikipedia.org", "de.wikipedia.org"}) {
		t.Errorf("filtered rows %v", got)
	}
	// Esc clears the filter.
	h.special(tcell.KeyEscape)
	h.waitFor("all rows again", func(l []string) bool { return len(rowOrder(l, fiveDomains)) == 5 })
}

func TestViewBannerWhenAPIDown(t *testing.T) {
	f := newFakeAPI(t)
	h := startDashboard(t, f, 120, 30)
	h.waitText("commons.wikimedia.org", "API ok")
	f.setDown(true)
	h.key('r')
	lines := h.waitText("API unreachable")
	var banner string
	for _, l := range lines {
		if strings.Contains(l, "API unreachable") {
			banner = l
		}
	}
	for _, want := range []string{"503 unavailable: redis unreachable", "last good data", "retrying in"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner %q lacks %q", banner, want)
		}
	}
	if got := rowOrder(lines, fiveDomains); !slices.Equal(got, fiveDomains) {
		t.Errorf("the last data should stay on screen, rows %v", got)
	}
	// The banner is red.
	for y, l := range lines {
		if strings.Contains(l, "API unreachable") {
			if _, bg, _ := h.styleAt(2, y).Decompose(); bg != tcell.ColorMaroon {
				t.Errorf("banner background %v", bg)
			}
		}
	}

	f.setDown(false)
	h.waitFor("the banner gone after recovery", func(l []string) bool {
		all := strings.Join(l, "\n")
		return !strings.Contains(all, "API unreachable") && strings.Contains(all, "API ok")
	})
}

func TestViewDetailAndBack(t *testing.T) {
	h := startDashboard(t, newFakeAPI(t), 120, 36)
	h.waitText(fiveDomains...)
	h.special(tcell.KeyDown)
	h.special(tcell.KeyDown)
	h.special(tcell.KeyEnter)
	lines := h.waitText("en.wikipedia.org  rank 3", "top editors", "ExampleEditor", "AnotherOne", "Main Page", "≈123 unique editors")
	all := strings.Join(lines, "\n")
	if !strings.Contains(all, "█") {
		t.Error("the detail chart draws no bars")
	}
	if strings.Contains(all, "# ▲") {
		t.Error("the table is still visible in the detail view")
	}
	h.special(tcell.KeyEscape)
	lines = h.waitText("# ▲", "last 15m")
	if strings.Contains(strings.Join(lines, "\n"), "top editors") {
		t.Error("the detail view is still visible after Esc")
	}
}

func TestViewHelpWindowPause(t *testing.T) {
	h := startDashboard(t, newFakeAPI(t), 100, 30)
	h.waitText("commons.wikimedia.org", "window 5m")
	h.key('?')
	h.waitText("wikiflow dashboard — keys", "filter wikis by domain")
	h.special(tcell.KeyEscape)
	h.waitFor("help closed", func(l []string) bool { return !strings.Contains(strings.Join(l, "\n"), "dashboard — keys") })

	h.key('w')
	h.waitText("window 15m", "window-15m.example.org")
	h.key('p')
	h.waitText("PAUSED")
	h.key('p')
	h.waitFor("resumed", func(l []string) bool { return !strings.Contains(strings.Join(l, "\n"), "PAUSED") })
}

// TestViewUnicodeNeverOverflows checks that huge titles, right-to-left text and
// emoji stay inside their columns: no line is wider than the screen and the
// borders of every box stay in place, before and after a resize.
func TestViewUnicodeNeverOverflows(t *testing.T) {
	f := newFakeAPI(t)
	huge := strings.Repeat("Extremely long title ", 15)[:300]
	f.pages = []pageItem{
		{Domain: "en.wikipedia.org", Title: huge, Count: 99},
		{Domain: "ar.wikipedia.org", Title: "مقالة عن تاريخ الحوسبة في العالم العربي والإسلامي", Count: 50},
		{Domain: "he.wikipedia.org", Title: "ויקיפדיה: ערך מומלץ על היסטוריה של ירושלים", Count: 40},
		{Domain: "commons.wikimedia.org", Title: "File:👩‍💻🎉🇩🇪👍🏽 emoji 日本語 [red]not a tag[-] \u202Eevil", Count: 30},
	}
	f.counts["5m"]["مثال.ويكيبيديا.example"] = 3
	f.counts["5m"]["😀-emoji-🎉.example.org"] = 2
	f.counts["5m"][strings.Repeat("very-long-subdomain.", 10)+"example.org"] = 1
	f.mu.Lock()
	f.series["😀-emoji-🎉.example.org"] = []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	f.mu.Unlock()

	for _, size := range [][2]int{{120, 30}, {80, 24}} {
		h := startDashboard(t, f, size[0], size[1])
		lines := h.waitText("99  Extremely long title", "ויקיפדיה", "مقالة", "File:👩‍💻🎉🇩🇪👍🏽 emoji", "😀-emoji-🎉")
		checkLayout(t, lines, size[0])
		all := strings.Join(lines, "\n")
		if size[0] >= 120 && !strings.Contains(all, "[red]not a") {
			t.Error("a title's [red] was taken for a style tag")
		}
		if strings.Contains(all, "\u202E") {
			t.Error("a bidi override reached the screen")
		}
		// The huge title is cut with an ellipsis right before the border.
		for _, l := range lines {
			if strings.Contains(l, "Extremely long title") && !strings.Contains(l, "…│") {
				t.Errorf("huge title not truncated at the border: %q", l)
			}
		}

		// Resize: everything is redrawn within the new bounds.
		h.scr.SetSize(size[0]-17, size[1]-5)
		h.d.app.QueueUpdateDraw(func() {})
		lines = h.waitFor("the resized screen", func(l []string) bool {
			return len(l) == size[1]-5 && strings.Contains(strings.Join(l, "\n"), "Extremely")
		})
		checkLayout(t, lines, size[0]-17)
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "q quit") {
			t.Errorf("footer not on the last line after resize: %q", last)
		}
	}
}

// boxChars are the corners and sides of a box border.
type boxChars struct{ tr, bl, br, v string }

var (
	single = boxChars{"┐", "└", "┘", "│"}
	double = boxChars{"╗", "╚", "╝", "║"}
)

// checkLayout asserts that no line is wider than w and that every box drawn on
// the screen has its left and right borders in the same columns on every row.
func checkLayout(t *testing.T, lines []string, w int) {
	t.Helper()
	grid := make([][]string, len(lines))
	for y, l := range lines {
		if lw := uniseg.StringWidth(l); lw > w {
			t.Errorf("line %d is %d cells wide on a %d-cell screen: %q", y, lw, w, l)
		}
		// Cells by column.
		state := -1
		for rest := l; rest != ""; {
			var g string
			var gw int
			g, rest, gw, state = uniseg.FirstGraphemeClusterInString(rest, state)
			grid[y] = append(grid[y], g)
			for i := 1; i < gw; i++ {
				grid[y] = append(grid[y], "")
			}
		}
	}
	at := func(x, y int) string {
		if y < len(grid) && x < len(grid[y]) {
			return grid[y][x]
		}
		return ""
	}
	boxes := 0
	for y := range grid {
		for x := range grid[y] {
			var b boxChars
			switch grid[y][x] {
			case "┌":
				b = single
			case "╔":
				b = double
			default:
				continue
			}
			right := -1
			for x2 := x + 1; x2 < len(grid[y]); x2++ {
				if grid[y][x2] == b.tr {
					right = x2
					break
				}
			}
			if right < 0 {
				t.Errorf("box at %d,%d has no top-right corner: %q", x, y, lines[y])
				continue
			}
			boxes++
			for y2 := y + 1; y2 < len(grid); y2++ {
				if at(x, y2) == b.bl {
					if at(right, y2) != b.br {
						t.Errorf("box at %d,%d: bottom-right corner missing on row %d: %q", x, y, y2, lines[y2])
					}
					break
				}
				if at(x, y2) != b.v || at(right, y2) != b.v {
					t.Errorf("box at %d,%d: border broken on row %d (cols %d and %d): %q", x, y, y2, x, right, lines[y2])
					break
				}
			}
		}
	}
	if boxes < 3 {
		t.Errorf("found %d boxes, want the table, types and top pages", boxes)
	}
}

func TestNewRejectsBadConfigAndLogsToFile(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Window = "7m"
	if _, err := NewWithScreen(cfg, nil, tcell.NewSimulationScreen("UTF-8")); err == nil {
		t.Error("NewWithScreen accepted window 7m")
	}
	f := newFakeAPI(t)
	h := startDashboard(t, f, 100, 25)
	h.waitText("commons.wikimedia.org")
	h.d.quit()
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
	h.done <- nil // for the cleanup
	b, err := os.ReadFile(h.d.cfg.LogFile)
	if err != nil || !strings.Contains(string(b), "component=tui") || !strings.Contains(string(b), "dashboard stopped") {
		t.Errorf("log file: %v %q", err, b)
	}
	if h.d.Stats().Polls.Load() == 0 || h.d.Stats().Renders.Load() == 0 {
		t.Errorf("stats: polls %d renders %d", h.d.Stats().Polls.Load(), h.d.Stats().Renders.Load())
	}
}
