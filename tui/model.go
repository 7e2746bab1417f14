package tui

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// sparkWindow is the window of the table's sparklines.
	sparkWindow = "15m"
	// sparkSeries is how many domains the sparkline request asks for.
	sparkSeries = 200
	// rateMinutes is how many complete minutes the edits/min column averages.
	rateMinutes = 5
	// topN is the length of the top pages and top editors lists.
	topN = 10
	// pollTimeout bounds one poll round (every request in it).
	pollTimeout = 8 * time.Second
	// maxBackoff caps the delay between attempts while the API fails.
	maxBackoff = 30 * time.Second
	// streamIdle is how long the stream may stay silent (the API sends a
	// keep-alive comment every 15 s) before the dashboard reconnects.
	streamIdle = 45 * time.Second
)

// Stats are the dashboard's counters.
type Stats struct {
	// Polls counts completed poll rounds, successful or not.
	Polls atomic.Int64
	// PollErrors counts poll rounds whose main request (/stats) failed.
	PollErrors atomic.Int64
	// Warnings counts secondary requests (time series, top lists) that failed.
	Warnings atomic.Int64
	// StreamConnects counts connections opened to /stats/stream.
	StreamConnects atomic.Int64
	// StreamEvents counts stats events received from /stats/stream.
	StreamEvents atomic.Int64
	// Renders counts model snapshots drawn on the screen.
	Renders atomic.Int64
}

// sortKey is a column the wiki table can be sorted by.
type sortKey int

const (
	sortRank sortKey = iota
	sortDomain
	sortCount
	sortShare
	sortRate
	numSortKeys
)

var sortNames = [numSortKeys]string{"rank", "domain", "count", "share", "edits/min"}

func (k sortKey) String() string { return sortNames[k] }

// defaultDesc is the direction a column sorts in when chosen: biggest first for
// figures, A→Z for domains, rank 1 first.
func (k sortKey) defaultDesc() bool { return k == sortCount || k == sortShare || k == sortRate }

// row is one wiki in the table.
type row struct {
	// Rank is the position by count in the window (1 = busiest), whatever the
	// sort order and filter.
	Rank   int
	Domain string
	Count  int64
	// Share is Count over the window's total, 0..1.
	Share float64
	// PerMin is the average of the last complete minutes of the sparkline
	// series, or -1 when the API sent no series for this domain.
	PerMin float64
	// Spark is the domain's per-minute counts over sparkWindow, oldest first.
	Spark []int64
}

// named is a key and a count, used for the type mix.
type named struct {
	Name  string
	Count int64
}

// detailData is what the detail view of one domain shows.
type detailData struct {
	Domain  string
	Window  string
	Series  timeseriesResponse
	Pages   topPagesResponse
	Editors topEditorsResponse
}

// snapshot is an immutable picture of the model handed to listeners.
type snapshot struct {
	// Window is the window asked for; DataWindow the one the figures are for
	// (they differ while a new window loads).
	Window, DataWindow string
	Sort               sortKey
	Desc               bool
	Filter             string
	Paused             bool
	// Live reports that /stats/stream is connected.
	Live bool
	// Stats is the last good /stats answer (nil before the first).
	Stats *statsResponse
	// StatsAt is when Stats was received.
	StatsAt time.Time
	// Rows are the wikis after filter and sort; Wikis counts them before the filter.
	Rows  []row
	Wikis int
	// Total is the number of edits in the window.
	Total int64
	// PerSec is edits per second over the last complete minute.
	PerSec float64
	// Types is the type mix, largest first.
	Types []named
	// Pages is the top pages list and PagesWindow its window.
	Pages       []pageItem
	PagesWindow string
	// Err is the last failure of the main request, nil once it succeeds again;
	// ErrAt when it happened, Retry when the next attempt is due.
	Err          error
	ErrAt, Retry time.Time
	// Warn is the last failure of a secondary request in the last round.
	Warn error
	// LastGood is when data last arrived.
	LastGood time.Time
	// Selected is the domain of the detail view ("" when none) and Detail its
	// data once loaded.
	Selected string
	Detail   *detailData
	// Now is when the snapshot was taken.
	Now time.Time
}

// pollRequest is what one poll round fetches.
type pollRequest struct {
	window, domain string
}

// pollResult is what one poll round brought back.
type pollResult struct {
	req    pollRequest
	stats  *statsResponse
	series *timeseriesResponse
	pages  *topPagesResponse
	detail *detailData
	err    error // the main request failed: nothing else was fetched
	warn   error // a secondary request failed
}

// streamMsg is what the stream goroutine reports to the model loop.
type streamMsg struct {
	window      string
	stats       *statsResponse
	connected   bool
	err         error
	unsupported bool
}

// model holds the dashboard's data and settings. Its loop (run) fetches in its
// own goroutine and notifies listeners with snapshots; the setters are safe to
// call from any goroutine (the UI's) and never block on the network.
type model struct {
	api     *client
	refresh time.Duration
	stream  bool
	log     *slog.Logger
	stats   *Stats
	now     func() time.Time

	kick  chan struct{} // fetch now
	dirty chan struct{} // settings changed: publish

	mu          sync.Mutex
	window      string
	sort        sortKey
	desc        bool
	filter      string
	paused      bool
	selected    string
	statsData   *statsResponse
	statsAt     time.Time
	series      *timeseriesResponse
	pages       *topPagesResponse
	detail      *detailData
	err         error
	errAt       time.Time
	retry       time.Time
	warn        error
	failures    int
	lastGood    time.Time
	live        bool
	unsupported bool
	listeners   []func(snapshot)
}

// newModel returns a model reading api, starting with window.
func newModel(api *client, window string, refresh time.Duration, stream bool, log *slog.Logger, stats *Stats) *model {
	return &model{
		api: api, refresh: refresh, stream: stream, log: log, stats: stats, now: time.Now,
		kick:   make(chan struct{}, 1),
		dirty:  make(chan struct{}, 1),
		window: window, sort: sortRank,
	}
}

// addListener registers fn to receive every snapshot. fn runs on the model's
// goroutine and must not block.
func (m *model) addListener(fn func(snapshot)) {
	m.mu.Lock()
	m.listeners = append(m.listeners, fn)
	m.mu.Unlock()
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// setSort sorts by k; choosing the current column again reverses the direction.
func (m *model) setSort(k sortKey) {
	m.mu.Lock()
	if m.sort == k {
		m.desc = !m.desc
	} else {
		m.sort, m.desc = k, k.defaultDesc()
	}
	m.mu.Unlock()
	signal(m.dirty)
}

// cycleSort moves to the next sort column, in its default direction.
func (m *model) cycleSort() {
	m.mu.Lock()
	m.sort = (m.sort + 1) % numSortKeys
	m.desc = m.sort.defaultDesc()
	m.mu.Unlock()
	signal(m.dirty)
}

// reverseSort reverses the sort direction.
func (m *model) reverseSort() {
	m.mu.Lock()
	m.desc = !m.desc
	m.mu.Unlock()
	signal(m.dirty)
}

// setFilter keeps only the domains containing s (case-insensitive); "" shows all.
func (m *model) setFilter(s string) {
	m.mu.Lock()
	m.filter = strings.TrimSpace(s)
	m.mu.Unlock()
	signal(m.dirty)
}

// cycleWindow moves to the next window and fetches it; it returns the new window.
func (m *model) cycleWindow() string {
	m.mu.Lock()
	i := slices.Index(Windows, m.window)
	m.window = Windows[(i+1)%len(Windows)]
	w := m.window
	m.mu.Unlock()
	signal(m.dirty)
	signal(m.kick)
	return w
}

// togglePause stops or resumes automatic updates; it returns the new state.
func (m *model) togglePause() bool {
	m.mu.Lock()
	m.paused = !m.paused
	p := m.paused
	m.mu.Unlock()
	signal(m.dirty)
	if !p {
		signal(m.kick)
	}
	return p
}

// refreshNow fetches at once, paused or not.
func (m *model) refreshNow() { signal(m.kick) }

// selectDomain opens the detail of domain ("" closes it) and fetches its data.
func (m *model) selectDomain(domain string) {
	m.mu.Lock()
	changed := m.selected != domain
	m.selected = domain
	if changed {
		m.detail = nil
	}
	m.mu.Unlock()
	signal(m.dirty)
	if domain != "" && changed {
		signal(m.kick)
	}
}

// run is the model loop: it polls every refresh (sooner with backoff while the
// API fails), follows the stream when enabled, and publishes snapshots. It
// returns when ctx ends.
func (m *model) run(ctx context.Context) {
	results := make(chan pollResult, 1)
	streamCh := make(chan streamMsg, 8)
	var (
		inflight, pending bool
		streamWindow      string
		streamCancel      context.CancelFunc
		streamDone        chan struct{}
	)
	stopStream := func() {
		if streamCancel != nil {
			streamCancel()
			<-streamDone
			streamCancel, streamWindow = nil, ""
		}
	}
	defer stopStream()
	timer := time.NewTimer(0)
	defer timer.Stop()
	// A tick republishes every second so that ages ("data 3s old", "retrying
	// in 2s") stay current between fetches.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()

	start := func() {
		m.mu.Lock()
		req := pollRequest{window: m.window, domain: m.selected}
		m.mu.Unlock()
		inflight = true
		go func() {
			pctx, cancel := context.WithTimeout(ctx, pollTimeout)
			defer cancel()
			results <- m.poll(pctx, req)
		}()
	}
	for {
		m.mu.Lock()
		want, unsupported := m.window, m.unsupported
		m.mu.Unlock()
		if m.stream && !unsupported && streamWindow != want {
			stopStream()
			sctx, cancel := context.WithCancel(ctx)
			streamCancel, streamWindow, streamDone = cancel, want, make(chan struct{})
			go func(done chan struct{}) {
				defer close(done)
				m.follow(sctx, want, streamCh)
			}(streamDone)
		}
		select {
		case <-ctx.Done():
			if inflight {
				<-results
			}
			return
		case <-m.dirty:
			m.publish()
		case <-tick.C:
			m.publish()
		case <-m.kick:
			if inflight {
				pending = true
			} else {
				start()
			}
		case <-timer.C:
			m.mu.Lock()
			paused := m.paused
			m.mu.Unlock()
			if !paused && !inflight {
				start()
			}
		case r := <-results:
			inflight = false
			delay := m.apply(r)
			m.publish()
			if pending {
				pending = false
				start()
			} else {
				timer.Reset(delay)
			}
		case s := <-streamCh:
			if s.window == streamWindow {
				m.applyStream(s)
				m.publish()
			}
		}
	}
}

// poll fetches one round: /stats for the window (the main request: when it fails
// nothing else is tried), the sparkline series, the top pages, the type mix when
// /stats did not include it, and the detail of the selected domain.
func (m *model) poll(ctx context.Context, req pollRequest) pollResult {
	res := pollResult{req: req}
	st, err := m.api.stats(ctx, url.Values{"window": {req.window}, "by": {"domain"}})
	if err != nil {
		res.err = err
		return res
	}
	res.stats = &st
	var warns []error
	if st.Types == nil {
		if byType, err := m.api.stats(ctx, url.Values{"window": {req.window}, "by": {"type"}}); err != nil {
			warns = append(warns, err)
		} else {
			st.Types = byType.Stats
		}
	}
	if ts, err := m.api.timeseries(ctx, url.Values{"window": {sparkWindow}, "by": {"domain"}, "top": {strconv.Itoa(sparkSeries)}}); err != nil {
		warns = append(warns, err)
	} else {
		res.series = &ts
	}
	if pages, err := m.api.topPages(ctx, url.Values{"window": {topWindow(req.window)}, "top": {strconv.Itoa(topN)}}); err != nil {
		warns = append(warns, err)
	} else {
		res.pages = &pages
	}
	if req.domain != "" {
		d := &detailData{Domain: req.domain, Window: detailWindow(req.window)}
		q := url.Values{"window": {d.Window}, "domain": {req.domain}}
		var derr error
		if d.Series, derr = m.api.timeseries(ctx, q); derr != nil {
			warns = append(warns, derr)
		}
		q = url.Values{"window": {topWindow(req.window)}, "domain": {req.domain}, "top": {strconv.Itoa(topN)}}
		var perr, eerr error
		if d.Pages, perr = m.api.topPages(ctx, q); perr != nil {
			warns = append(warns, perr)
		}
		if d.Editors, eerr = m.api.topEditors(ctx, q); eerr != nil {
			warns = append(warns, eerr)
		}
		res.detail = d
	}
	res.warn = errors.Join(warns...)
	return res
}

// topWindow is the window of the top lists for the table's window: they have no
// "all", so it becomes 24h.
func topWindow(w string) string {
	if w == "all" {
		return "24h"
	}
	return w
}

// detailWindow is the window of the detail chart: 15 minutes for short windows,
// one hour for the others (one bar per minute).
func detailWindow(w string) string {
	switch w {
	case "1m", "5m", "15m":
		return "15m"
	}
	return "1h"
}

// backoff is the delay before the next attempt after n consecutive failures.
func backoff(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := time.Second << min(n-1, 10)
	return min(d, maxBackoff)
}

// apply takes a poll result into the model and returns the delay before the next
// round.
func (m *model) apply(r pollResult) time.Duration {
	now := m.now()
	m.stats.Polls.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.err != nil {
		m.stats.PollErrors.Add(1)
		m.failures++
		if m.err == nil || m.err.Error() != r.err.Error() {
			m.log.Warn("API request failed; keeping the last data", "err", r.err, "failures", m.failures)
		}
		m.err, m.errAt = r.err, now
		d := min(backoff(m.failures), m.refresh)
		m.retry = now.Add(d)
		return d
	}
	if m.err != nil {
		m.log.Info("API reachable again", "after_failures", m.failures)
	}
	m.failures, m.err, m.retry = 0, nil, time.Time{}
	if r.warn != nil {
		m.stats.Warnings.Add(1)
		if m.warn == nil || m.warn.Error() != r.warn.Error() {
			m.log.Warn("secondary API request failed", "err", r.warn)
		}
	}
	m.warn = r.warn
	m.lastGood = now
	if r.req.window == m.window {
		if m.statsData == nil || m.statsData.Window != r.stats.Window || !r.stats.UpdatedAt.Before(m.statsData.UpdatedAt.Time) {
			m.statsData, m.statsAt = r.stats, now
		}
	}
	if r.series != nil {
		m.series = r.series
	}
	if r.pages != nil {
		m.pages = r.pages
	}
	if r.detail != nil && r.req.domain == m.selected {
		m.detail = r.detail
	}
	return m.refresh
}

// applyStream takes a stream report into the model.
func (m *model) applyStream(s streamMsg) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case s.unsupported:
		m.unsupported, m.live = true, false
		m.log.Info("the API has no /stats/stream; polling only")
	case s.connected:
		m.live = true
	case s.err != nil:
		if m.live {
			m.log.Warn("stats stream broke; polling meanwhile", "err", s.err)
		}
		m.live = false
	case s.stats != nil:
		m.live = true
		if m.paused || s.window != m.window {
			return
		}
		if prev := m.statsData; s.stats.Types == nil && prev != nil && prev.Window == s.stats.Window {
			// Keep the type mix of the last poll: a stream event may omit it.
			s.stats.Types = prev.Types
		}
		m.statsData, m.statsAt, m.lastGood = s.stats, now, now
		if m.err != nil {
			m.log.Info("API reachable again (stream)")
		}
		m.err, m.failures, m.retry = nil, 0, time.Time{}
	}
}

// follow keeps a /stats/stream connection for window open, reconnecting with
// backoff, and reports to out until ctx ends or the API turns out to have no
// stream.
func (m *model) follow(ctx context.Context, window string, out chan<- streamMsg) {
	send := func(s streamMsg) {
		s.window = window
		select {
		case out <- s:
		case <-ctx.Done():
		}
	}
	q := url.Values{"window": {window}, "by": {"domain"}}
	failures := 0
	for ctx.Err() == nil {
		err := m.api.stream(ctx, q, streamIdle,
			func() {
				failures = 0
				m.stats.StreamConnects.Add(1)
				send(streamMsg{connected: true})
			},
			func(r statsResponse) {
				m.stats.StreamEvents.Add(1)
				send(streamMsg{stats: &r})
			})
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errStreamUnsupported) {
			send(streamMsg{unsupported: true})
			return
		}
		failures++
		send(streamMsg{err: err})
		t := time.NewTimer(max(backoff(failures), time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// publish sends a fresh snapshot to every listener.
func (m *model) publish() {
	s := m.snapshot()
	m.mu.Lock()
	ls := slices.Clone(m.listeners)
	m.mu.Unlock()
	for _, fn := range ls {
		fn(s)
	}
}

// snapshot builds the current picture: rows filtered and sorted, derived figures.
func (m *model) snapshot() snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := snapshot{
		Window: m.window, Sort: m.sort, Desc: m.desc, Filter: m.filter, Paused: m.paused,
		Live: m.live, Stats: m.statsData, StatsAt: m.statsAt,
		Err: m.err, ErrAt: m.errAt, Retry: m.retry, Warn: m.warn, LastGood: m.lastGood,
		Selected: m.selected, Detail: m.detail, Now: m.now(),
	}
	if m.pages != nil {
		s.Pages, s.PagesWindow = m.pages.Items, m.pages.Window
	}
	if m.statsData == nil {
		return s
	}
	st := m.statsData
	s.DataWindow = st.Window
	var series map[string][]int64
	if m.series != nil {
		series = m.series.Series
	}
	s.Rows, s.Total = buildRows(st, series)
	s.Wikis = len(s.Rows)
	s.Rows = filterRows(s.Rows, m.filter)
	sortRows(s.Rows, m.sort, m.desc)
	for k, v := range st.Types {
		s.Types = append(s.Types, named{k, v})
	}
	slices.SortFunc(s.Types, func(a, b named) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Name, b.Name))
	})
	s.PerSec = -1
	if m.series != nil && len(m.series.Total) >= 2 {
		s.PerSec = float64(m.series.Total[len(m.series.Total)-2]) / 60
	} else if st.EditsPerMinute != nil {
		s.PerSec = *st.EditsPerMinute / 60
	}
	return s
}

// buildRows turns a /stats answer and the sparkline series into rows ranked by
// count (ties by domain), and returns the window's total.
func buildRows(st *statsResponse, series map[string][]int64) ([]row, int64) {
	rows := make([]row, 0, len(st.Stats))
	var sum int64
	for d, c := range st.Stats {
		rows = append(rows, row{Domain: d, Count: c, PerMin: -1})
		sum += c
	}
	total := st.Total
	if total <= 0 {
		total = sum
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Domain, b.Domain))
	})
	for i := range rows {
		r := &rows[i]
		r.Rank = i + 1
		if total > 0 {
			r.Share = float64(r.Count) / float64(total)
		}
		if pts, ok := series[r.Domain]; ok {
			r.Spark = pts
			r.PerMin = recentRate(pts)
		}
	}
	return rows, total
}

// recentRate averages the last complete minutes of pts (the last point is the
// minute in progress).
func recentRate(pts []int64) float64 {
	if len(pts) > 1 {
		pts = pts[:len(pts)-1]
	}
	pts = pts[max(len(pts)-rateMinutes, 0):]
	if len(pts) == 0 {
		return 0
	}
	var sum int64
	for _, p := range pts {
		sum += p
	}
	return float64(sum) / float64(len(pts))
}

// filterRows keeps the rows whose domain contains f, ignoring case.
func filterRows(rows []row, f string) []row {
	if f == "" {
		return rows
	}
	f = strings.ToLower(f)
	return slices.DeleteFunc(rows, func(r row) bool { return !strings.Contains(strings.ToLower(r.Domain), f) })
}

// sortRows sorts rows by k; rank, count and share all order by count (rank 1
// first when ascending), ties by rank.
func sortRows(rows []row, k sortKey, desc bool) {
	slices.SortStableFunc(rows, func(a, b row) int {
		var c int
		switch k {
		case sortDomain:
			c = strings.Compare(a.Domain, b.Domain)
		case sortRate:
			c = cmp.Compare(a.PerMin, b.PerMin)
		case sortRank:
			c = cmp.Compare(a.Rank, b.Rank)
		default:
			c = cmp.Compare(a.Count, b.Count)
		}
		if desc {
			c = -c
		}
		if c == 0 {
			c = cmp.Compare(a.Rank, b.Rank)
		}
		return c
	})
}
