package tui

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"github.com/wikiflow/wikiflow/internal/brokers"
)

// Page names.
const (
	pageMain   = "main"
	pageDetail = "detail"
	pageHelp   = "help"
)

// Table columns.
const (
	colRank = iota
	colDomain
	colCount
	colShare
	colRate
	colSpark
	numCols
)

// domainWidth caps the domain column.
const domainWidth = 28

// helpText is the in-app help, also summarised in the package documentation.
var helpText = []string{
	"wikiflow dashboard — keys",
	"",
	"  s          next sort column        S   reverse the sort",
	"  1 … 5      sort by rank, domain, count, share, edits/min",
	"             (the same number again reverses it)",
	"  /          filter wikis by domain (Enter keeps it, Esc clears it)",
	"  w          next window: 1m 5m 15m 1h 24h all",
	"  p          pause / resume updates",
	"  r          refresh now",
	"  ↑ ↓ PgUp PgDn Home End   move in the table",
	"  Enter      details of the wiki: time series, top pages, top editors",
	"  Esc        back / clear the filter",
	"  ?          this help (? or Esc closes it)",
	"  q          quit",
	"",
	"edits/min averages the last 5 complete minutes; the sparkline shows the",
	"last 15 minutes, one block per minute.",
}

// footerKeys is the key summary at the bottom of the screen.
var footerKeys = line{
	{"q", styleBold}, {" quit  ", styleDim},
	{"?", styleBold}, {" help  ", styleDim},
	{"/", styleBold}, {" filter  ", styleDim},
	{"s S 1-5", styleBold}, {" sort  ", styleDim},
	{"w", styleBold}, {" window  ", styleDim},
	{"p", styleBold}, {" pause  ", styleDim},
	{"r", styleBold}, {" refresh  ", styleDim},
	{"⏎", styleBold}, {" details  ", styleDim},
	{"esc", styleBold}, {" back", styleDim},
}

var themeOnce sync.Once

// useTerminalColours makes tview's primitives use the terminal's own foreground
// and background, so the dashboard suits dark and light terminals alike.
func useTerminalColours() {
	themeOnce.Do(func() {
		tview.Styles = tview.Theme{
			PrimitiveBackgroundColor:    tcell.ColorDefault,
			ContrastBackgroundColor:     tcell.ColorDefault,
			MoreContrastBackgroundColor: tcell.ColorDefault,
			BorderColor:                 tcell.ColorDefault,
			TitleColor:                  tcell.ColorDefault,
			GraphicsColor:               tcell.ColorDefault,
			PrimaryTextColor:            tcell.ColorDefault,
			SecondaryTextColor:          tcell.ColorDefault,
			TertiaryTextColor:           tcell.ColorDefault,
			InverseTextColor:            tcell.ColorDefault,
			ContrastSecondaryTextColor:  tcell.ColorDefault,
		}
	})
}

// Dashboard is the terminal dashboard: a model that fetches from the API in its
// own goroutine and a tview view that changes only through QueueUpdateDraw.
type Dashboard struct {
	cfg      Config
	log      *slog.Logger
	outer    *slog.Logger
	logFile  io.Closer
	stats    *Stats
	model    *model
	app      *tview.Application
	cancel   atomic.Pointer[context.CancelFunc]
	latest   atomic.Pointer[snapshot]
	wake     chan struct{}
	appDone  chan struct{}
	quitOnce sync.Once

	// Primitives, touched only on the UI goroutine.
	root       *tview.Flex
	header     *textLines
	banner     *textLines
	pages      *tview.Pages
	table      *tview.Table
	types      *textLines
	top        *textLines
	filter     *tview.InputField
	footer     *textLines
	detailHead *textLines
	chart      *barChart
	dPages     *textLines
	dEditors   *textLines
	help       *textLines

	// UI state, touched only on the UI goroutine.
	last        snapshot
	cursor      string // domain under the table's cursor
	rendering   bool   // renderTable is moving rows: selection changes are not the user's
	inDetail    bool
	helpOpen    bool
	filterOpen  bool
	bannerShown bool
}

// New returns a dashboard for cfg drawing on the terminal. Its logs go to
// cfg.LogFile; log (may be nil) only receives a line saying so, before the
// screen is taken, and a summary after it is released.
func New(cfg Config, log *slog.Logger) (*Dashboard, error) {
	return newDashboard(cfg, log, nil)
}

// NewWithScreen is New drawing on screen, e.g. tcell.NewSimulationScreen in tests.
func NewWithScreen(cfg Config, log *slog.Logger, screen tcell.Screen) (*Dashboard, error) {
	if screen == nil {
		return nil, fmt.Errorf("tui: nil screen")
	}
	return newDashboard(cfg, log, screen)
}

func newDashboard(cfg Config, outer *slog.Logger, screen tcell.Screen) (*Dashboard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if outer == nil {
		outer = slog.New(slog.DiscardHandler)
	}
	d := &Dashboard{cfg: cfg, outer: outer, stats: &Stats{}, wake: make(chan struct{}, 1), appDone: make(chan struct{})}
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open log file: %w", err)
		}
		d.logFile = f
		d.log = slog.New(slog.NewTextHandler(f, nil)).With("component", "tui")
		outer.Info("dashboard logs go to a file", "component", "tui", "log_file", cfg.LogFile)
	} else {
		d.log = slog.New(slog.DiscardHandler)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = streamIdle // polls have their own, shorter deadline
	api, err := newClient(cfg.API, &http.Client{Transport: transport})
	if err != nil {
		d.closeLog()
		return nil, err
	}
	d.model = newModel(api, cfg.Window, cfg.Refresh, cfg.Stream, d.log, d.stats)
	d.model.addListener(d.onSnapshot)

	useTerminalColours()
	d.app = tview.NewApplication()
	if screen != nil {
		d.app.SetScreen(screen)
	}
	d.build()
	return d, nil
}

// Stats returns the dashboard's counters.
func (d *Dashboard) Stats() *Stats { return d.stats }

func (d *Dashboard) closeLog() {
	if d.logFile != nil {
		d.logFile.Close()
	}
}

// build creates the primitives once; later updates only change their content.
func (d *Dashboard) build() {
	d.header = newTextLines()
	d.banner = newTextLines()
	d.banner.setFill(styleBanner)
	d.footer = newTextLines()
	d.footer.setLines([]line{footerKeys})
	d.buildTable()
	d.buildFilter()

	d.pages = tview.NewPages().
		AddPage(pageMain, d.buildMain(), true, true).
		AddPage(pageDetail, d.buildDetail(), true, false).
		AddPage(pageHelp, d.buildHelp(), true, false)

	d.root = tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(d.header, 2, 0, false).
		AddItem(d.banner, 0, 0, false).
		AddItem(d.pages, 0, 1, true).
		AddItem(d.filter, 0, 0, false).
		AddItem(d.footer, 1, 0, false)
	d.app.SetRoot(d.root, true).SetFocus(d.table)
	d.app.SetInputCapture(d.onKey)
	d.render(snapshot{Window: d.cfg.Window, Now: time.Now()})
}

// buildTable creates the table of wikis with its header row.
func (d *Dashboard) buildTable() {
	d.table = tview.NewTable().
		SetFixed(1, 0).
		SetSelectable(true, false).
		SetSelectedStyle(tcell.StyleDefault.Reverse(true))
	d.table.SetBorder(true).SetTitle(" wikis ")
	d.table.SetSelectionChangedFunc(func(row, _ int) {
		if d.rendering {
			return // rows moved under the cursor; only the user moves it
		}
		if ref, ok := d.table.GetCell(row, colDomain).GetReference().(string); ok {
			d.cursor = ref
		}
	})
	d.table.SetSelectedFunc(func(row, _ int) {
		if ref, ok := d.table.GetCell(row, colDomain).GetReference().(string); ok {
			d.openDetail(ref)
		}
	})
	for c, h := range []string{"#", "domain", "count", "share", "/min", "last 15m"} {
		cell := tview.NewTableCell(h).SetSelectable(false).SetStyle(styleBold)
		if c != colDomain && c != colSpark {
			cell.SetAlign(tview.AlignRight)
		}
		d.table.SetCell(0, c, cell)
	}
}

// buildMain returns the main page: the table beside the types and top pages.
func (d *Dashboard) buildMain() tview.Primitive {
	d.types = newTextLines()
	d.types.SetBorder(true).SetTitle(" types ")
	d.top = newTextLines()
	d.top.SetBorder(true).SetTitle(" top pages ")
	side := tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(d.types, 8, 0, false).
		AddItem(d.top, 0, 1, false)
	return tview.NewFlex().
		AddItem(d.table, 0, 3, true).
		AddItem(side, 0, 2, false)
}

// buildDetail returns the page of one wiki: its chart and top lists.
func (d *Dashboard) buildDetail() tview.Primitive {
	d.detailHead = newTextLines()
	d.chart = newBarChart()
	d.chart.SetBorder(true).SetTitle(" edits per minute ")
	d.dPages = newTextLines()
	d.dPages.SetBorder(true).SetTitle(" top pages ")
	d.dEditors = newTextLines()
	d.dEditors.SetBorder(true).SetTitle(" top editors ")
	lists := tview.NewFlex().
		AddItem(d.dPages, 0, 3, false).
		AddItem(d.dEditors, 0, 2, false)
	return tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(d.detailHead, 2, 0, false).
		AddItem(d.chart, 0, 1, false).
		AddItem(lists, 0, 1, false)
}

// buildHelp returns the help overlay, centred and sized to its text.
func (d *Dashboard) buildHelp() tview.Primitive {
	d.help = newTextLines()
	d.help.SetBorder(true).SetTitle(" help ")
	hl := make([]line, len(helpText))
	helpW := 0
	for i, t := range helpText {
		st := styleText
		if i == 0 {
			st = styleBold
		}
		hl[i] = line{{t, st}}
		helpW = max(helpW, width(t))
	}
	d.help.setLines(hl)
	return tview.NewFlex().
		AddItem(nil, 0, 1, false).
		AddItem(tview.NewFlex().SetDirection(tview.FlexRow).
			AddItem(nil, 0, 1, false).
			AddItem(d.help, len(helpText)+2, 0, true).
			AddItem(nil, 0, 1, false), helpW+4, 0, true).
		AddItem(nil, 0, 1, false)
}

// buildFilter creates the domain filter's input field.
func (d *Dashboard) buildFilter() {
	d.filter = tview.NewInputField().
		SetLabel("filter domain: ").
		SetLabelStyle(styleBold).
		SetFieldStyle(tcell.StyleDefault.Underline(true))
	d.filter.SetChangedFunc(func(text string) { d.model.setFilter(text) })
	d.filter.SetDoneFunc(func(key tcell.Key) {
		if key == tcell.KeyEscape {
			d.filter.SetText("")
			d.model.setFilter("")
		}
		d.closeFilter()
	})
}

// Run shows the dashboard until q is pressed or ctx ends, then restores the
// terminal. It returns nil then, or the error that stopped the screen.
func (d *Dashboard) Run(ctx context.Context) error {
	defer d.closeLog()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.cancel.Store(&cancel)
	d.log.Info("dashboard started", "api", brokers.Redact(d.cfg.API), "window", d.cfg.Window, "refresh", d.cfg.Refresh, "stream", d.cfg.Stream)

	var wg sync.WaitGroup
	wg.Go(func() { d.model.run(ctx) })
	wg.Go(func() { d.paint(ctx) })
	// Stop the application only once the model and the painter are done, so
	// that no queued update can wait for a loop that no longer runs. The stop
	// runs inside the event loop: a screen that failed to start must never be
	// finalised (tcell panics), and then the loop never runs it.
	go func() {
		select {
		case <-ctx.Done():
		case <-d.appDone:
			return
		}
		wg.Wait()
		d.app.QueueUpdate(d.app.Stop)
	}()
	err := d.app.Run()
	close(d.appDone)
	cancel()
	wg.Wait()
	st := d.stats
	d.log.Info("dashboard stopped", "polls", st.Polls.Load(), "poll_errors", st.PollErrors.Load(),
		"stream_events", st.StreamEvents.Load(), "renders", st.Renders.Load())
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	return nil
}

// quit ends Run.
func (d *Dashboard) quit() {
	if c := d.cancel.Load(); c != nil {
		(*c)()
	}
}

// onSnapshot is the model listener: it keeps the newest snapshot and wakes the
// painter, never blocking the model.
func (d *Dashboard) onSnapshot(s snapshot) {
	d.latest.Store(&s)
	signal(d.wake)
}

// paint turns snapshots into screen updates on the UI goroutine, coalescing
// bursts: at most one update is queued at a time.
func (d *Dashboard) paint(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.appDone:
			return
		case <-d.wake:
		}
		done := make(chan struct{})
		go func() {
			d.app.QueueUpdateDraw(func() {
				if s := d.latest.Load(); s != nil {
					d.render(*s)
					d.stats.Renders.Add(1)
				}
			})
			close(done)
		}()
		select {
		case <-done:
		case <-d.appDone:
			return
		}
	}
}

// onKey handles the dashboard's keys before the focused primitive sees them.
func (d *Dashboard) onKey(ev *tcell.EventKey) *tcell.EventKey {
	if d.filterOpen {
		return ev // the filter input takes every key
	}
	if ev.Key() == tcell.KeyCtrlC {
		d.quit()
		return nil
	}
	if d.helpOpen {
		switch {
		case ev.Key() == tcell.KeyEscape, ev.Key() == tcell.KeyRune && ev.Rune() == '?':
			d.closeHelp()
		case ev.Key() == tcell.KeyRune && ev.Rune() == 'q':
			d.quit()
		}
		return nil
	}
	switch ev.Key() {
	case tcell.KeyEscape:
		switch {
		case d.inDetail:
			d.closeDetail()
		case d.last.Filter != "":
			d.filter.SetText("")
			d.model.setFilter("")
		}
		return nil
	case tcell.KeyRune:
	default:
		return ev
	}
	switch r := ev.Rune(); r {
	case 'q':
		d.quit()
	case '?':
		d.helpOpen = true
		d.pages.ShowPage(pageHelp)
	case '/':
		if d.inDetail {
			d.closeDetail()
		}
		d.filterOpen = true
		d.root.ResizeItem(d.filter, 1, 0)
		d.app.SetFocus(d.filter)
	case 'w':
		d.model.cycleWindow()
	case 'p':
		d.model.togglePause()
	case 'r':
		d.model.refreshNow()
	case 's':
		d.model.cycleSort()
	case 'S':
		d.model.reverseSort()
	case '1', '2', '3', '4', '5':
		d.model.setSort(sortKey(r - '1'))
	default:
		return ev
	}
	return nil
}

func (d *Dashboard) closeHelp() {
	d.helpOpen = false
	d.pages.HidePage(pageHelp)
	if d.inDetail {
		d.app.SetFocus(d.detailHead)
	} else {
		d.app.SetFocus(d.table)
	}
}

func (d *Dashboard) closeFilter() {
	d.filterOpen = false
	d.root.ResizeItem(d.filter, 0, 0)
	d.app.SetFocus(d.table)
}

func (d *Dashboard) openDetail(domain string) {
	d.inDetail = true
	d.model.selectDomain(domain)
	d.last.Selected, d.last.Detail = domain, nil
	d.renderDetail(d.last)
	d.pages.SwitchToPage(pageDetail)
	d.app.SetFocus(d.detailHead)
}

func (d *Dashboard) closeDetail() {
	d.inDetail = false
	d.model.selectDomain("")
	d.pages.SwitchToPage(pageMain)
	d.app.SetFocus(d.table)
}

// render shows s. It runs on the UI goroutine and only changes the content of
// existing primitives.
func (d *Dashboard) render(s snapshot) {
	d.last = s
	d.header.setLines(headerLines(s))
	if s.Err != nil {
		d.banner.setLines([]line{bannerLine(s)})
		if !d.bannerShown {
			d.root.ResizeItem(d.banner, 1, 0)
			d.bannerShown = true
		}
	} else if d.bannerShown {
		d.root.ResizeItem(d.banner, 0, 0)
		d.bannerShown = false
	}
	d.renderTable(s)
	d.types.SetTitle(" types (" + orDash(s.DataWindow) + ") ")
	d.types.setLines(typeLines(s))
	d.top.SetTitle(" top pages (" + orDash(s.PagesWindow) + ") ")
	d.top.setLines(pageLines(s.Pages, true))
	if d.inDetail {
		d.renderDetail(s)
	}
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// headerLines are the two header lines.
func headerLines(s snapshot) []line {
	l1 := line{{"wikiflow", styleBold}, {"  window ", styleDim}, {s.Window, styleBold}}
	if s.DataWindow != "" && s.DataWindow != s.Window {
		l1 = append(l1, seg{" (loading; showing " + s.DataWindow + ")", styleWarn})
	}
	if s.Stats == nil {
		l1 = append(l1, seg{"  waiting for data…", styleDim})
	} else {
		l1 = append(l1,
			seg{"  edits ", styleDim}, seg{humanCount(s.Total), styleBold},
			seg{"  now ", styleDim}, seg{rate(s.PerSec) + "/s", styleBold})
		if s.Stats.BotShare != nil {
			l1 = append(l1, seg{"  bots ", styleDim}, seg{fmt.Sprintf("%.1f%%", *s.Stats.BotShare*100), styleBold})
		}
		l1 = append(l1, seg{"  wikis ", styleDim}, seg{fmt.Sprint(s.Wikis), styleBold})
	}

	l2 := line{{"API ", styleDim}}
	switch {
	case s.Err != nil:
		l2 = append(l2, seg{"down", styleBad}) // the banner tells why
	case s.Stats == nil:
		l2 = append(l2, seg{"connecting…", styleDim})
	default:
		l2 = append(l2, seg{"ok", styleGood})
	}
	if s.Live {
		l2 = append(l2, seg{" · live", styleGood})
	} else {
		l2 = append(l2, seg{" · polling", styleDim})
	}
	if s.Stats != nil {
		l2 = append(l2, seg{"  data ", styleDim}, seg{freshness(s), styleText})
		if !s.Stats.AsOf.IsZero() {
			l2 = append(l2, seg{" (as of " + s.Stats.AsOf.UTC().Format("15:04:05") + " UTC)", styleDim})
		}
	}
	dir := "▲"
	if s.Desc {
		dir = "▼"
	}
	l2 = append(l2, seg{"  sort ", styleDim}, seg{s.Sort.String() + " " + dir, styleText})
	if s.Filter != "" {
		l2 = append(l2, seg{"  filter ", styleDim}, seg{"“" + sanitize(s.Filter) + "”", styleBold},
			seg{fmt.Sprintf(" %d/%d", len(s.Rows), s.Wikis), styleDim})
	}
	if s.Paused {
		l2 = append(l2, seg{"  ", styleText}, seg{" PAUSED ", stylePaused})
	}
	if s.Warn != nil && s.Err == nil {
		l2 = append(l2, seg{"  partial: " + sanitize(s.Warn.Error()), styleWarn})
	}
	return []line{l1, l2}
}

// freshness says how old the shown figures are: the API's freshness when they
// were received plus the time since.
func freshness(s snapshot) string {
	var age time.Duration
	switch {
	case s.Stats.FreshnessSeconds != nil:
		age = time.Duration(*s.Stats.FreshnessSeconds*float64(time.Second)) + s.Now.Sub(s.StatsAt)
	case !s.Stats.UpdatedAt.IsZero():
		age = s.Now.Sub(s.Stats.UpdatedAt.Time)
	default:
		return "age unknown"
	}
	return humanAge(age) + " old"
}

func rate(v float64) string {
	if v < 0 {
		return "–"
	}
	if v < 10 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// bannerLine is the red line shown while the API fails.
func bannerLine(s snapshot) line {
	text := " API unreachable: " + sanitize(s.Err.Error())
	if s.LastGood.IsZero() {
		text += " — no data yet"
	} else {
		text += fmt.Sprintf(" — last good data %s (%s ago)", s.LastGood.Format("15:04:05"), humanAge(s.Now.Sub(s.LastGood)))
	}
	if !s.Retry.IsZero() {
		text += " — retrying in " + humanAge(s.Retry.Sub(s.Now))
	}
	return line{{text, styleBanner}}
}

// renderTable updates the wiki table cell by cell, keeping the cursor on the
// same domain.
func (d *Dashboard) renderTable(s snapshot) {
	d.rendering = true
	defer func() { d.rendering = false }()
	for c := colRank; c < numCols; c++ {
		h := d.table.GetCell(0, c)
		name := strings.TrimRight(h.Text, " ▲▼")
		if k, ok := columnSort(c); ok && k == s.Sort {
			if s.Desc {
				name += " ▼"
			} else {
				name += " ▲"
			}
		}
		h.SetText(name)
	}
	n := len(s.Rows)
	cursorRow := -1
	if n == 0 {
		msg := "waiting for data…"
		switch {
		case s.Stats != nil && s.Filter != "":
			msg = "no wiki matches “" + sanitize(s.Filter) + "”"
		case s.Stats != nil:
			msg = "no edits in this window"
		}
		d.setRow(1, []string{"", msg, "", "", "", ""}, "")
		n = 1
	}
	for i, r := range s.Rows {
		dom := sanitize(r.Domain)
		perMin := "–"
		if r.PerMin >= 0 {
			perMin = rate(r.PerMin)
		}
		d.setRow(i+1, []string{
			fmt.Sprint(r.Rank),
			truncate(dom, domainWidth),
			humanCount(r.Count),
			fmt.Sprintf("%.1f%%", r.Share*100),
			perMin,
			padRight(sparkline(r.Spark, 15), 15),
		}, r.Domain)
		if r.Domain == d.cursor {
			cursorRow = i + 1
		}
	}
	for d.table.GetRowCount() > n+1 {
		d.table.RemoveRow(d.table.GetRowCount() - 1)
	}
	if cursorRow < 0 {
		cursorRow = 1
	}
	// Select on every render, not only when the row changed: it also makes the
	// table scroll to the cursor, which tview would otherwise leave tracking the
	// end of a table that was shorter than the screen while it waited for data.
	d.table.Select(cursorRow, 0)
	title := " wikis "
	if s.Filter != "" {
		title = fmt.Sprintf(" wikis %d/%d ", len(s.Rows), s.Wikis)
	}
	d.table.SetTitle(title)
}

// columnSort is the sort key of a column.
func columnSort(c int) (sortKey, bool) {
	switch c {
	case colRank:
		return sortRank, true
	case colDomain:
		return sortDomain, true
	case colCount:
		return sortCount, true
	case colShare:
		return sortShare, true
	case colRate:
		return sortRate, true
	}
	return 0, false
}

// setRow writes one table row in place, creating its cells the first time.
func (d *Dashboard) setRow(r int, texts []string, ref string) {
	exists := r < d.table.GetRowCount()
	for c, text := range texts {
		if exists {
			cell := d.table.GetCell(r, c)
			cell.SetText(text)
			if c == colDomain {
				cell.SetReference(ref)
			}
			continue
		}
		cell := tview.NewTableCell(text).SetStyle(styleText)
		switch c {
		case colDomain:
			cell.SetMaxWidth(domainWidth).SetExpansion(1).SetReference(ref)
		case colSpark:
			cell.SetStyle(styleBar)
		default:
			cell.SetAlign(tview.AlignRight)
		}
		d.table.SetCell(r, c, cell)
	}
	if ref == "" {
		d.table.GetCell(r, colDomain).SetReference(nil)
	}
}

// typeLines are the lines of the type mix panel.
func typeLines(s snapshot) []line {
	if len(s.Types) == 0 {
		return []line{{{"no data", styleDim}}}
	}
	var total int64
	for _, t := range s.Types {
		total += t.Count
	}
	out := make([]line, 0, len(s.Types))
	for _, t := range s.Types {
		share := 0.0
		if total > 0 {
			share = float64(t.Count) / float64(total)
		}
		out = append(out, line{
			{padRight(sanitize(t.Name), 11), styleText},
			{padLeft(humanCount(t.Count), 9), styleBold},
			{padLeft(fmt.Sprintf("%.1f%%", share*100), 7) + " ", styleDim},
			{bar(share, 12), styleBar},
		})
	}
	return out
}

// bar is a horizontal bar of share (0..1) over w cells, in eighths.
func bar(share float64, w int) string {
	eighths := int(share*float64(w*8) + 0.5)
	full, part := eighths/8, eighths%8
	s := strings.Repeat("█", full)
	if part > 0 {
		s += string([]rune("▏▎▍▌▋▊▉")[part-1])
	}
	return s
}

// pageLines are the lines of a top pages list.
func pageLines(items []pageItem, withDomain bool) []line {
	if len(items) == 0 {
		return []line{{{"no data", styleDim}}}
	}
	out := make([]line, 0, len(items))
	for _, it := range items {
		l := line{{padLeft(humanCount(it.Count), 6) + "  ", styleBold}, {sanitize(it.Title), styleText}}
		if withDomain {
			l = append(l, seg{"  " + sanitize(it.Domain), styleDim})
		}
		out = append(out, l)
	}
	return out
}

// renderDetail shows the selected domain's detail view.
func (d *Dashboard) renderDetail(s snapshot) {
	dom := sanitize(s.Selected)
	head := line{{dom, styleBold}}
	for _, r := range s.Rows {
		if r.Domain == s.Selected {
			head = append(head,
				seg{fmt.Sprintf("  rank %d", r.Rank), styleText},
				seg{"  " + humanCount(r.Count) + " edits in " + s.DataWindow, styleText},
				seg{fmt.Sprintf(" (%.1f%%)", r.Share*100), styleDim})
			break
		}
	}
	sub := line{{"Esc back", styleDim}}
	det := s.Detail
	if det == nil || det.Domain != s.Selected {
		d.detailHead.setLines([]line{head, {{"loading…", styleDim}}})
		d.chart.setData(nil, "", "", "loading…")
		d.dPages.setLines(nil)
		d.dEditors.setLines(nil)
		return
	}
	var sum int64
	for _, p := range det.Series.Total {
		sum += p
	}
	head = append(head, seg{fmt.Sprintf("  %s edits in the last %s", humanCount(sum), det.Window), styleDim})
	d.detailHead.setLines([]line{head, sub})
	start, end := "", ""
	if ts := det.Series.Times; len(ts) > 0 {
		start = ts[0].UTC().Format("15:04")
		end = ts[len(ts)-1].UTC().Format("15:04") + " UTC"
	}
	d.chart.SetTitle(" edits per minute, last " + det.Window + " ")
	d.chart.setData(det.Series.Total, start, end, "no data")
	d.dPages.SetTitle(" top pages (" + orDash(det.Pages.Window) + ") ")
	d.dPages.setLines(pageLines(det.Pages.Items, false))
	title := " top editors (" + orDash(det.Editors.Window) + ") "
	d.dEditors.SetTitle(title)
	eds := make([]line, 0, len(det.Editors.Items)+1)
	for _, it := range det.Editors.Items {
		eds = append(eds, line{{padLeft(humanCount(it.Count), 6) + "  ", styleBold}, {sanitize(it.User), styleText}})
	}
	if len(eds) == 0 {
		eds = append(eds, line{{"no data", styleDim}})
	}
	if det.Editors.Window != "" { // the answer arrived
		eds = append(eds, line{{fmt.Sprintf("≈%s unique editors, all wikis", humanCount(det.Editors.UniqueEditors)), styleDim}})
	}
	d.dEditors.setLines(eds)
}
