package tui

import (
	"math"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"
	"github.com/rivo/uniseg"
)

// Accent styles. Everything else uses the terminal's default colours so the
// dashboard reads well on dark and light backgrounds.
var (
	styleText   = tcell.StyleDefault
	styleBold   = tcell.StyleDefault.Bold(true)
	styleDim    = tcell.StyleDefault.Dim(true)
	styleGood   = tcell.StyleDefault.Foreground(tcell.ColorGreen)
	styleBad    = tcell.StyleDefault.Foreground(tcell.ColorRed).Bold(true)
	styleWarn   = tcell.StyleDefault.Foreground(tcell.ColorOlive)
	styleBanner = tcell.StyleDefault.Background(tcell.ColorMaroon).Foreground(tcell.ColorWhite).Bold(true)
	stylePaused = tcell.StyleDefault.Reverse(true).Bold(true)
	styleBar    = tcell.StyleDefault.Foreground(tcell.ColorTeal)
)

// seg is a run of text in one style.
type seg struct {
	text  string
	style tcell.Style
}

// line is one line of segments.
type line []seg

// textLines is a primitive that shows lines of styled text, each cut to the width
// of the primitive at draw time (with an ellipsis), so no text can spill over
// its neighbours whatever its script or width. Its content is replaced, never
// its structure, so updates do not flicker.
type textLines struct {
	*tview.Box
	lines []line
	fill  tcell.Style // background of the whole area
	bg    bool
}

func newTextLines() *textLines {
	return &textLines{Box: tview.NewBox()}
}

// setLines replaces the content.
func (t *textLines) setLines(ls []line) { t.lines = ls }

// setFill paints the whole area with style (used by the banner).
func (t *textLines) setFill(style tcell.Style) {
	t.fill, t.bg = style, true
}

// Draw implements tview.Primitive.
func (t *textLines) Draw(screen tcell.Screen) {
	t.DrawForSubclass(screen, t)
	x, y, w, h := t.GetInnerRect()
	if t.bg {
		for row := y; row < y+h; row++ {
			for col := x; col < x+w; col++ {
				screen.SetContent(col, row, ' ', nil, t.fill)
			}
		}
	}
	for i, l := range t.lines {
		if i >= h {
			break
		}
		drawLine(screen, x, y+i, w, l)
	}
}

// drawLine draws l at (x, y) within w cells, grapheme by grapheme, ending it with
// an ellipsis when it does not fit.
func drawLine(screen tcell.Screen, x, y, w int, l line) int {
	if w <= 0 {
		return 0
	}
	total := 0
	for _, s := range l {
		total += width(s.text)
	}
	limit := w
	if total > w {
		limit = w - 1
	}
	used := 0
	var last tcell.Style
	for _, s := range l {
		last = s.style
		state := -1
		rest := s.text
		for rest != "" {
			var g string
			var gw int
			g, rest, gw, state = uniseg.FirstGraphemeClusterInString(rest, state)
			if gw == 0 {
				continue
			}
			if used+gw > limit {
				goto done
			}
			screen.Put(x+used, y, g, s.style)
			used += gw
		}
	}
done:
	if total > w {
		screen.Put(x+used, y, ellipsis, last)
		used++
	}
	return used
}

// barChart draws a series as vertical bars, one column per point (the newest
// at the right), with eighth-block resolution, the peak value on the left and
// the first and last time under the bars.
type barChart struct {
	*tview.Box
	points     []int64
	start, end string
	empty      string
}

func newBarChart() *barChart { return &barChart{Box: tview.NewBox()} }

// setData replaces the series and its time labels.
func (b *barChart) setData(points []int64, start, end, empty string) {
	b.points, b.start, b.end, b.empty = points, start, end, empty
}

// Draw implements tview.Primitive.
func (b *barChart) Draw(screen tcell.Screen) {
	b.DrawForSubclass(screen, b)
	x, y, w, h := b.GetInnerRect()
	if w <= 0 || h <= 0 {
		return
	}
	if len(b.points) == 0 {
		drawLine(screen, x, y, w, line{{b.empty, styleDim}})
		return
	}
	var peak int64
	for _, p := range b.points {
		peak = max(peak, p)
	}
	label := humanCount(peak)
	axis := width(label) + 1
	plotH := h - 1
	plotW := w - axis
	if plotH < 1 || plotW < 1 {
		drawLine(screen, x, y, w, line{{sparkline(b.points, w), styleBar}})
		return
	}
	drawLine(screen, x, y, axis, line{{label, styleDim}})
	drawLine(screen, x, y+plotH-1, axis, line{{"0", styleDim}})
	pts := b.points
	if len(pts) > plotW {
		pts = pts[len(pts)-plotW:]
	}
	// Few points get wider bars (up to 3 cells, with a gap when there is room).
	colW := min(max(plotW/len(pts), 1), 3)
	barW := colW
	if colW == 3 {
		barW = 2
	}
	left := x + axis + plotW - len(pts)*colW
	for i, p := range pts {
		eighths := 0
		if peak > 0 {
			eighths = int(math.Round(float64(p) / float64(peak) * float64(plotH*8)))
		}
		if p > 0 && eighths == 0 {
			eighths = 1
		}
		for row := 0; row < plotH && eighths > 0; row++ {
			r := '█'
			if eighths < 8 {
				r = sparkBlocks[eighths-1]
			}
			for c := 0; c < barW; c++ {
				screen.SetContent(left+i*colW+c, y+plotH-1-row, r, nil, styleBar)
			}
			eighths -= min(eighths, 8)
		}
	}
	// Time axis: the first label under the first bar, the last right-aligned.
	axisY := y + h - 1
	startW := drawLine(screen, left, axisY, x+w-left, line{{b.start, styleDim}})
	if endW := width(b.end); x+w-endW >= left+startW+1 {
		drawLine(screen, x+w-endW, axisY, endW, line{{b.end, styleDim}})
	}
}
