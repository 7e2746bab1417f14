package web

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

func newApp() *fiber.App {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	Register(app)
	return app
}

func fetch(t *testing.T, app *fiber.App, target string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := app.Test(req, 5000)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func urlOf(name string) string {
	if name == "index.html" {
		return PagePath
	}
	return AssetPrefix + name
}

// TestEveryAssetIsServedPlainAndGzipped fetches every embedded file with and
// without gzip and checks the bytes (gunzipped by compress/gzip), the types and
// the revalidation.
func TestEveryAssetIsServedPlainAndGzipped(t *testing.T) {
	app := newApp()
	want := map[string]string{".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml", ".txt": "text/plain"}
	for _, name := range Names() {
		raw, err := static.ReadFile("static/" + name)
		if err != nil {
			t.Fatal(err)
		}
		resp, plain := fetch(t, app, urlOf(name))
		if resp.StatusCode != 200 || !bytes.Equal(plain, raw) {
			t.Errorf("%s: status %d, %d bytes, want 200 and the %d embedded bytes", name, resp.StatusCode, len(plain), len(raw))
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, want[path.Ext(name)]) {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
		if resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s: encoded without Accept-Encoding", name)
		}
		resp, zipped := fetch(t, app, urlOf(name), "Accept-Encoding", "br, gzip;q=0.8")
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(zipped))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(got, raw) {
				t.Errorf("%s: gunzipped body differs (%v)", name, err)
			}
		} else if len(raw) > 1024 {
			t.Errorf("%s: %d bytes sent uncompressed to a gzip client", name, len(raw))
		}
		etag := resp.Header.Get("ETag")
		resp, body := fetch(t, app, urlOf(name), "If-None-Match", etag)
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("%s: If-None-Match %s: status %d with %d bytes, want 304", name, etag, resp.StatusCode, len(body))
		}
	}
}

func TestPageHeadersAndUnknownAssets(t *testing.T) {
	app := newApp()
	resp, body := fetch(t, app, "/")
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	if !bytes.Contains(body, []byte(`<script type="module" src="/assets/js/main.js">`)) {
		t.Error("the page does not load js/main.js")
	}
	for _, target := range []string{"/assets/nope.js", "/assets/index.html", "/assets/", "/assets/../web.go"} {
		if resp, _ := fetch(t, app, target); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", target, resp.StatusCode)
		}
	}
}

var (
	assetRef  = regexp.MustCompile(`(?:href|src)="(/assets/[^"]+)"`)
	importRef = regexp.MustCompile(`(?m)^\s*import\s+(?:[^"']+\s+from\s+)?["']([^"']+)["']`)
)

// TestReferencesResolve checks that the page's links and every module's imports
// name embedded files, and that every module is preloaded by the page.
func TestReferencesResolve(t *testing.T) {
	page := string(assets["index.html"].body)
	preloaded := map[string]bool{}
	for _, m := range assetRef.FindAllStringSubmatch(page, -1) {
		name := strings.TrimPrefix(m[1], AssetPrefix)
		if assets[name] == nil {
			t.Errorf("index.html refers to %s, which is not embedded", m[1])
		}
		preloaded[name] = true
	}
	for _, name := range Names() {
		if path.Ext(name) != ".js" {
			continue
		}
		if !preloaded[name] {
			t.Errorf("%s is not preloaded by index.html (modulepreload), so it loads one round trip late", name)
		}
		for _, m := range importRef.FindAllStringSubmatch(string(assets[name].body), -1) {
			dep := path.Join(path.Dir(name), m[1])
			if assets[dep] == nil {
				t.Errorf("%s imports %q (%s), which is not embedded", name, m[1], dep)
			}
		}
	}
}

// TestVendoredUPlotIsThePinnedVersion checks the vendored build against the
// version package-lock.json pins, and that its licence is shipped with it.
func TestVendoredUPlotIsThePinnedVersion(t *testing.T) {
	lock, err := os.ReadFile("package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	if err := json.Unmarshal(lock, &l); err != nil {
		t.Fatal(err)
	}
	v := l.Packages["node_modules/uplot"].Version
	if v == "" {
		t.Fatal("package-lock.json pins no uplot")
	}
	js := string(assets["vendor/uplot.js"].body)
	if !strings.Contains(js, "(v"+v+")") || !strings.HasSuffix(js, "export default uPlot;\n") {
		t.Errorf("vendor/uplot.js is not uPlot %s as vendor.mjs writes it", v)
	}
	lic := string(assets["vendor/uplot.LICENSE.txt"].body)
	if !strings.Contains(lic, "uplot@"+v) || !strings.Contains(lic, "MIT License") {
		t.Errorf("vendor/uplot.LICENSE.txt does not carry uPlot %s's MIT licence", v)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"br, gzip;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"identity", false},
		{"*", true},
		{"deflate, *;q=0", false},
		{"x-gzip", false},
	} {
		if got := acceptsGzip(tc.header); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}
