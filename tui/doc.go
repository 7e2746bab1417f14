// Package tui is wikiflow's terminal dashboard (`wikiflow tui`): a live view of
// the edit counters read only through the HTTP API.
//
// It is built like derailed/k9s: a model fetches from the API in its own
// goroutine (polling every Config.Refresh, following GET /stats/stream for
// per-second figures when the API offers it) and notifies listeners with
// immutable snapshots; the view (rivo/tview on gdamore/tcell) changes only
// through Application.QueueUpdateDraw, so the UI never waits for the network.
// When the API fails, a red banner shows the error and the time of the last
// good data, the last data stays on screen, and the model retries with backoff
// (1 s doubling up to the refresh interval) until the API answers again.
//
// The screen shows a header (edits in the window, edits per second over the
// last complete minute, bot share, age of the data, API state, window, pause),
// the table of wikis (rank, domain, count, share, edits per minute averaged over
// the last five complete minutes, a 15-minute sparkline), the type mix and the
// top pages of the window, and a footer with the keys. Text from the API is
// cleaned of control and bidi formatting characters and cut to its column by
// display width, so long titles, right-to-left scripts and emoji cannot break
// the layout. Colours are the terminal's own, with accents only.
//
// Keys:
//
//	s          next sort column            S   reverse the sort
//	1 … 5      sort by rank, domain, count, share, edits/min (again: reverse)
//	/          filter wikis by domain substring (Enter keeps it, Esc clears it)
//	w          next window: 1m, 5m, 15m, 1h, 24h, all
//	p          pause / resume updates
//	r          refresh now
//	↑ ↓ …      move in the table
//	Enter      detail of the wiki: per-minute bar chart, top pages, top editors
//	Esc        back to the table / clear the filter
//	?          help overlay
//	q, Ctrl-C  quit
//
// Logs go to Config.LogFile, never to the terminal.
package tui
