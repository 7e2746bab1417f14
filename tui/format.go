package tui

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"

	"github.com/rivo/uniseg"
)

// ellipsis marks text cut to fit its column.
const ellipsis = "…"

// sparkBlocks are the eight levels of a sparkline, lowest first.
var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// sanitize makes text from the API safe to put on a terminal: control characters
// become spaces (or vanish), and bidirectional formatting characters, which could
// reorder the rest of the line on terminals that apply the bidi algorithm, are
// removed. Right-to-left letters themselves are kept.
func sanitize(s string) string {
	clean := true
	for _, r := range s {
		if r < 0x20 || r == 0x7f || unicode.Is(unicode.Bidi_Control, r) || (r >= 0x80 && r < 0xa0) || r == '\uFFFD' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		case unicode.Is(unicode.Bidi_Control, r):
		case r == '\uFFFD':
			b.WriteRune('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// width is the display width of s in terminal cells.
func width(s string) int { return uniseg.StringWidth(s) }

// truncate cuts s to at most w display cells, grapheme by grapheme, ending it with
// an ellipsis when something was cut. It never splits a grapheme cluster (an emoji
// with modifiers, a letter with combining marks).
func truncate(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if width(s) <= w {
		return s
	}
	var (
		b     strings.Builder
		used  int
		state = -1
		g     string
		gw    int
	)
	for s != "" {
		g, s, gw, state = uniseg.FirstGraphemeClusterInString(s, state)
		if used+gw > w-1 {
			break
		}
		b.WriteString(g)
		used += gw
	}
	b.WriteString(ellipsis)
	return b.String()
}

// padRight pads s with spaces to exactly w display cells, truncating it first when
// it is wider.
func padRight(s string, w int) string {
	s = truncate(s, w)
	if n := w - width(s); n > 0 {
		s += strings.Repeat(" ", n)
	}
	return s
}

// padLeft right-aligns s in w display cells, truncating it first when it is wider.
func padLeft(s string, w int) string {
	s = truncate(s, w)
	if n := w - width(s); n > 0 {
		s = strings.Repeat(" ", n) + s
	}
	return s
}

// sparkline draws points as block characters, one per point, scaled to the largest
// point. Zero is drawn as a space so that silence stands out from little activity.
// Only the last w points are drawn when there are more.
func sparkline(points []int64, w int) string {
	if w <= 0 || len(points) == 0 {
		return ""
	}
	if len(points) > w {
		points = points[len(points)-w:]
	}
	var peak int64
	for _, p := range points {
		peak = max(peak, p)
	}
	out := make([]rune, len(points))
	for i, p := range points {
		out[i] = sparkRune(p, peak)
	}
	return string(out)
}

// sparkRune is the block for v on a scale whose top is peak.
func sparkRune(v, peak int64) rune {
	if v <= 0 || peak <= 0 {
		return ' '
	}
	level := int(math.Ceil(float64(v)/float64(peak)*float64(len(sparkBlocks)))) - 1
	return sparkBlocks[min(max(level, 0), len(sparkBlocks)-1)]
}

// humanCount writes n with thousands separators: 1234567 → "1,234,567".
func humanCount(n int64) string {
	if n < 0 {
		return "-" + humanCount(-n)
	}
	s := fmt.Sprint(n)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// humanAge writes a duration the way the header shows ages: "0.8s", "42s", "3m10s",
// "2h05m".
func humanAge(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
		fallthrough
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}
