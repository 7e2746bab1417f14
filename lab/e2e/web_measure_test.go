package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// EnvWebArtifacts names the folder where the browser test writes its
// measurements (web-measurements.json and .md) and screenshots (web-*.png);
// unset, they go to the test's temporary folder and only the log shows them.
const EnvWebArtifacts = "WIKIFLOW_WEB_OUT"

// webResults is what the browser test measured.
type webResults struct {
	Date     string   `json:"date"`
	Browser  string   `json:"browser"`
	CPUs     int      `json:"cpus"`
	GOOS     string   `json:"goos"`
	Weight   weight   `json:"page_weight"`
	Render   render   `json:"first_full_render"`
	CPU      *cpuUse  `json:"cpu_at_100_events_per_second,omitempty"`
	Shots    []string `json:"screenshots,omitempty"`
	measured bool
}

type weight struct {
	// Files are the page and every embedded asset it loaded.
	Files []fileWeight `json:"files"`
	// SentBytes is the sum of the bodies as sent (gzip), per the browser's
	// resource timing (encodedBodySize).
	SentBytes int64 `json:"sent_bytes"`
	// GzipBytes is the sum of gzip -9 of each file, computed by the test.
	GzipBytes int64 `json:"gzip_bytes"`
	// RawBytes is the sum of the files' sizes.
	RawBytes int64 `json:"raw_bytes"`
}

type fileWeight struct {
	Path      string `json:"path"`
	RawBytes  int64  `json:"raw_bytes"`
	SentBytes int64  `json:"sent_bytes"`
	GzipBytes int64  `json:"gzip_bytes"`
}

type render struct {
	// ColdMs is from navigation start to every part drawn once, fresh profile.
	ColdMs float64 `json:"cold_ms"`
	// WarmMs is the same after a reload (assets revalidated, 304).
	WarmMs float64 `json:"warm_ms"`
}

type cpuUse struct {
	WindowSeconds   float64 `json:"window_seconds"`
	EventsPublished int     `json:"events_published"`
	EventsPerSecond float64 `json:"events_per_second"`
	// TaskSeconds is the renderer main thread's busy time (Performance.getMetrics TaskDuration).
	TaskSeconds   float64 `json:"task_seconds"`
	CPUPercent    float64 `json:"cpu_percent_of_one_core"`
	ScriptSeconds float64 `json:"script_seconds"`
	LayoutSeconds float64 `json:"layout_seconds"`
	StyleSeconds  float64 `json:"recalc_style_seconds"`
	JSHeapMiB     float64 `json:"js_heap_used_mib"`
	Nodes         float64 `json:"dom_nodes"`
}

type resourceEntry struct {
	Path    string `json:"path"`
	Encoded int64  `json:"encoded"`
	Decoded int64  `json:"decoded"`
}

const resourcesJS = `[performance.getEntriesByType("navigation")[0], ...performance.getEntriesByType("resource")]
  .map(e => ({path: new URL(e.name).pathname, encoded: e.encodedBodySize, decoded: e.decodedBodySize}))
  .filter(e => e.path === "/" || e.path.startsWith("/assets/"))`

// firstLoad opens the page in the fresh profile, times the first full render
// (the page's wikiflow:ready mark) cold and warm, and weighs what it loaded.
func (r *webResults) firstLoad(t *testing.T, b *browser, s *webStack) {
	b.do("open the page", chromedp.Navigate(s.url("/")))
	b.waitReady(30 * time.Second)
	r.Render.ColdMs = eval[float64](b, `performance.getEntriesByName("wikiflow:ready")[0].startTime`)
	r.Browser = eval[string](b, `navigator.userAgent`)
	for _, e := range eval[[]resourceEntry](b, resourcesJS) {
		raw := fetchBody(t, s.url(e.Path), "")
		served := fetchBody(t, s.url(e.Path), "gzip")
		f := fileWeight{Path: e.Path, RawBytes: int64(len(raw)), SentBytes: e.Encoded, GzipBytes: gzipSize(t, raw)}
		if e.Decoded != f.RawBytes {
			t.Errorf("%s: the browser decoded %d bytes, the file has %d", e.Path, e.Decoded, f.RawBytes)
		}
		if e.Encoded != int64(len(served)) {
			t.Errorf("%s: the browser received %d bytes, the server sends %d with gzip", e.Path, e.Encoded, len(served))
		}
		if f.RawBytes > 1024 && f.SentBytes >= f.RawBytes {
			t.Errorf("%s: sent uncompressed (%d bytes)", e.Path, f.SentBytes)
		}
		r.Weight.Files = append(r.Weight.Files, f)
		r.Weight.SentBytes += f.SentBytes
		r.Weight.GzipBytes += f.GzipBytes
		r.Weight.RawBytes += f.RawBytes
	}
	if len(r.Weight.Files) < 10 {
		t.Errorf("the page loaded %d of its files: %+v", len(r.Weight.Files), r.Weight.Files)
	}
	b.do("reload", chromedp.Reload())
	b.waitReady(30 * time.Second)
	r.Render.WarmMs = eval[float64](b, `performance.getEntriesByName("wikiflow:ready")[0].startTime`)
	r.measured = true
}

// fetchBody GETs url with the given Accept-Encoding, undecoded.
func fetchBody(t *testing.T, url, encoding string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return body
}

func gzipSize(t *testing.T, b []byte) int64 {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return int64(buf.Len())
}

// cpu publishes 100 events/s and reads the renderer's busy time over 30 s of it.
func (r *webResults) cpu(t *testing.T, b *browser, s *webStack, tk *tickerLog) {
	const rate, window, warmup = 100, 30 * time.Second, 2 * time.Second
	total := int((window + warmup + time.Second).Seconds() * rate)
	start := time.Now()
	evs := s.recorded(total, start, start.Add(time.Duration(total)*time.Second/rate))
	if _, err := chromedp.Call(b.ctx, performance.Enable, performance.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < total; i += rate / 10 {
			if err := s.tryPublish(evs[i:min(i+rate/10, total)]); err != nil {
				done <- err
				return
			}
			<-tick.C
		}
		done <- nil
	}()
	time.Sleep(warmup)
	m0, t0 := metrics(t, b), time.Now()
	time.Sleep(window)
	m1, t1 := metrics(t, b), time.Now()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	last := decodeRC(t, evs[total-1]).Meta.ID
	b.waitFor("the ticker to show the last event", fmt.Sprintf(`document.querySelector("#ticker li[data-id]")?.dataset.id === %q`, last), 10*time.Second)
	sec := t1.Sub(t0).Seconds()
	r.CPU = &cpuUse{
		WindowSeconds:   sec,
		EventsPublished: total,
		EventsPerSecond: float64(total) / elapsed.Seconds(),
		TaskSeconds:     m1["TaskDuration"] - m0["TaskDuration"],
		ScriptSeconds:   m1["ScriptDuration"] - m0["ScriptDuration"],
		LayoutSeconds:   m1["LayoutDuration"] - m0["LayoutDuration"],
		StyleSeconds:    m1["RecalcStyleDuration"] - m0["RecalcStyleDuration"],
		JSHeapMiB:       m1["JSHeapUsedSize"] / (1 << 20),
		Nodes:           m1["Nodes"],
	}
	r.CPU.CPUPercent = r.CPU.TaskSeconds / sec * 100
	s.waitApplied()
	// The chart was loaded whole before the load and has since taken only its
	// merged five-minute refreshes: it must still add up.
	checkChart(t, b, s, "1h")
	checkNumbers(t, b, s, "1h", "")
}

func metrics(t *testing.T, b *browser) map[string]float64 {
	t.Helper()
	res, err := chromedp.Call(b.ctx, performance.GetMetrics, cdp.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, m := range res.Metrics {
		out[m.Name] = m.Value
	}
	return out
}

// screenshots takes the page at desktop (1366×900) and phone (390×844) width,
// light and dark, and a wiki's detail at desktop width, while a light feed
// (20 events/s) keeps it live.
func (r *webResults) screenshots(t *testing.T, b *browser, s *webStack) {
	feed := s.recorded(400, time.Now(), time.Now().Add(20*time.Second))
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(feed); i += 10 {
			if err := s.tryPublish(feed[i : i+10]); err != nil {
				done <- err
				return
			}
			select {
			case <-stop:
				done <- nil
				return
			case <-tick.C:
			}
		}
		done <- nil
	}()
	defer func() {
		close(stop)
		if err := <-done; err != nil {
			t.Error(err)
		}
		s.waitApplied()
	}()
	time.Sleep(2 * time.Second)
	for _, shot := range []struct {
		name   string
		w, h   int64
		phone  bool
		scheme string
	}{
		{"web-desktop-light", 1366, 900, false, "light"},
		{"web-desktop-dark", 1366, 900, false, "dark"},
		{"web-phone-light", 390, 844, true, "light"},
		{"web-phone-dark", 390, 844, true, "dark"},
	} {
		opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
		if shot.phone {
			opts = []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulatePortrait}
		}
		b.do("emulate "+shot.name, chromedp.EmulateViewport(shot.w, shot.h, opts...), chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		b.colorScheme(shot.scheme)
		time.Sleep(1500 * time.Millisecond)
		r.shoot(t, b, shot.name, chromedp.CaptureScreenshot())
	}
	b.do("back to the desktop", chromedp.EmulateViewport(1366, 900))
	b.colorScheme("light")
	b.do("open the first wiki", chromedp.Click(chromedp.CSS("#wikis tbody td.domain button")))
	b.waitFor("its detail", `document.querySelector("#detail").open && document.querySelectorAll("#detail-pages li[data-domain]").length > 0`, 10*time.Second)
	time.Sleep(time.Second)
	r.shoot(t, b, "web-desktop-detail", chromedp.CaptureScreenshot())
	b.do("close it", chromedp.KeyEvent(kb.Escape))
	b.waitFor("the dialog to close", `!document.querySelector("#detail").open`, 5*time.Second)
}

// shoot writes one screenshot into the artifacts folder.
func (r *webResults) shoot(t *testing.T, b *browser, name string, capture chromedp.Action[[]byte]) {
	png, err := chromedp.Run(b.ctx, capture)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(artifactsDir(t), name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	r.Shots = append(r.Shots, name+".png")
}

func artifactsDir(t *testing.T) string {
	if d := os.Getenv(EnvWebArtifacts); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// write logs the measurements and writes them to the artifacts folder.
func (r *webResults) write(t *testing.T) {
	if !r.measured {
		return
	}
	r.Date = time.Now().UTC().Format(time.RFC3339)
	r.CPUs, r.GOOS = runtime.NumCPU(), runtime.GOOS
	md := r.markdown()
	t.Log("\n" + md)
	if os.Getenv(EnvWebArtifacts) == "" {
		return
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	dir := artifactsDir(t)
	for name, body := range map[string][]byte{"web-measurements.json": append(js, '\n'), "web-measurements.md": []byte(md)} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Error(err)
		}
	}
}

func (r *webResults) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Web dashboard, measured by TestWebDashboard (lab/e2e/web_test.go) on %s, %d CPUs, %s.\n\n", r.Date, r.CPUs, r.Browser)
	fmt.Fprintf(&b, "| figure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| page weight, compressed (gzip as sent, %d files) | %.1f KiB (%.1f KiB uncompressed) |\n", len(r.Weight.Files), float64(r.Weight.SentBytes)/1024, float64(r.Weight.RawBytes)/1024)
	fmt.Fprintf(&b, "| first full render, fresh profile | %.0f ms |\n", r.Render.ColdMs)
	fmt.Fprintf(&b, "| first full render, reload | %.0f ms |\n", r.Render.WarmMs)
	if c := r.CPU; c != nil {
		fmt.Fprintf(&b, "| browser CPU at %.0f events/s (renderer main thread, %.0f s) | %.1f %% of one core (script %.2f s, layout %.2f s, style %.2f s) |\n",
			c.EventsPerSecond, c.WindowSeconds, c.CPUPercent, c.ScriptSeconds, c.LayoutSeconds, c.StyleSeconds)
		fmt.Fprintf(&b, "| JS heap / DOM nodes after it | %.1f MiB / %.0f |\n", c.JSHeapMiB, c.Nodes)
	}
	b.WriteString("\n| file | bytes | sent (gzip) | gzip -9 |\n|---|---:|---:|---:|\n")
	for _, f := range r.Weight.Files {
		fmt.Fprintf(&b, "| `%s` | %d | %d | %d |\n", f.Path, f.RawBytes, f.SentBytes, f.GzipBytes)
	}
	return b.String()
}
