package tui

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"
)

// drawOn draws p on a fresh w×h simulation screen and returns its lines.
func drawOn(t *testing.T, p interface {
	SetRect(x, y, w, h int)
	Draw(tcell.Screen)
}, w, h int) []string {
	t.Helper()
	scr := tcell.NewSimulationScreen("UTF-8")
	if err := scr.Init(); err != nil {
		t.Fatal(err)
	}
	defer scr.Fini()
	scr.SetSize(w, h)
	p.SetRect(0, 0, w, h)
	p.Draw(scr)
	scr.Show()
	cells, cw, ch := scr.GetContents()
	out := make([]string, ch)
	for y := range ch {
		var b strings.Builder
		for x := 0; x < cw; x++ {
			s := string(cells[y*cw+x].Runes)
			if s == "" || s == "X" {
				s = " "
			}
			b.WriteString(s)
		}
		out[y] = b.String()
	}
	return out
}

func TestBarChart(t *testing.T) {
	useTerminalColours()
	b := newBarChart()
	b.setData([]int64{0, 3, 8}, "10:00", "10:02", "none")
	lines := drawOn(t, b, 12, 5)
	want := []string{
		"8        ██ ", // the peak fills the top row; 3 cells per point, 2 drawn
		"         ██ ",
		"      ▄▄ ██ ", // 3/8 of 4 rows: one and a half
		"0     ██ ██ ",
		"   10:00    ", // no room for the last label: dropped
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("row %d = %q, want %q", i, lines[i], want[i])
		}
	}
	b.setData(nil, "", "", "nothing yet")
	if got := drawOn(t, b, 12, 3)[0]; got != "nothing yet " {
		t.Errorf("empty chart: %q", got)
	}
}

func TestTextLinesEllipsis(t *testing.T) {
	useTerminalColours()
	tl := newTextLines()
	tl.setLines([]line{
		{{"short", styleText}},
		{{"ab", styleBold}, {"日本語テキスト", styleText}},
		{{"👩‍💻👩‍💻👩‍💻👩‍💻👩‍💻👩‍💻", styleText}},
	})
	lines := drawOn(t, tl, 9, 3)
	// Wide characters occupy two cells; the simulation keeps the second one blank.
	want := []string{"short    ", "ab日 本 語 …", "👩‍💻 👩‍💻 👩‍💻 👩‍💻 …"}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("row %d = %q, want %q", i, lines[i], want[i])
		}
	}
}

func TestStreamClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.Write([]byte(": keep-alive\n\nevent: stats\nid: 1\ndata: {\"stats\":{\"a.org\":3},\"total\":3,\"window\":\"5m\"}\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // then silence
	}))
	defer srv.Close()
	c, _ := newClient(srv.URL, srv.Client())
	var got []statsResponse
	opened := false
	err := c.stream(context.Background(), url.Values{"window": {"5m"}}, 300*time.Millisecond,
		func() { opened = true }, func(r statsResponse) { got = append(got, r) })
	if err == nil || !strings.Contains(err.Error(), "silent") {
		t.Errorf("a silent stream should end with an error, got %v", err)
	}
	if !opened || len(got) != 1 || got[0].Stats["a.org"] != 3 || got[0].Window != "5m" {
		t.Errorf("opened %v events %+v", opened, got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.stream(ctx, nil, time.Second, func() {}, func(statsResponse) {}); err != nil {
		t.Errorf("a cancelled stream returns nil, got %v", err)
	}

	json404 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(404)
		w.Write([]byte(`{"error":{"status":404,"code":"not_found","message":"no route"}}`))
	}))
	defer json404.Close()
	c2, _ := newClient(json404.URL+"/", json404.Client())
	if err := c2.stream(context.Background(), nil, time.Second, func() {}, func(statsResponse) {}); err != errStreamUnsupported {
		t.Errorf("404: %v", err)
	}
}
