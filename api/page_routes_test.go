package api

import (
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestPageRoutes checks the dashboard's two routes against the document (status
// codes, media types, the Error body of a 404, the ETag revalidation) and that
// their requests get route labels of their own in /metrics, while requests no
// route matches stay "other".
func TestPageRoutes(t *testing.T) {
	s := newServer(t, "wikiflow_page_routes_test", nil)
	d := loadDoc(t)
	paths := d.root["paths"].(map[string]any)
	documented := func(path string, status int, media string) bool {
		responses := paths[path].(map[string]any)["get"].(map[string]any)["responses"].(map[string]any)
		resp, ok := responses[strconv.Itoa(status)].(map[string]any)
		if !ok {
			return false
		}
		resp, err := d.deref(resp)
		if err != nil {
			t.Fatal(err)
		}
		if media == "" {
			return true
		}
		_, ok = resp["content"].(map[string]any)[media]
		return ok
	}
	cases := []struct {
		target, path string
		status       int
	}{
		{"/", pageRoute, 200},
		{"/assets/app.css", assetsRoute, 200},
		{"/assets/js/main.js", assetsRoute, 200},
		{"/assets/favicon.svg", assetsRoute, 200},
		{"/assets/vendor/uplot.LICENSE.txt", assetsRoute, 200},
		{"/assets/nope.js", assetsRoute, 404},
		{"/assets/index.html", assetsRoute, 404},
	}
	for _, tc := range cases {
		r := get(t, s, tc.target)
		if r.status != tc.status {
			t.Fatalf("%s: status %d, want %d", tc.target, r.status, tc.status)
		}
		media, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("%s: Content-Type %q: %v", tc.target, r.header.Get("Content-Type"), err)
		}
		if !documented(tc.path, r.status, media) {
			t.Errorf("%s: %d %s is not documented for %s", tc.target, r.status, media, tc.path)
		}
		if r.status == 404 {
			var v any
			if err := json.Unmarshal(r.body, &v); err != nil {
				t.Fatalf("%s: 404 body is not JSON: %v", tc.target, err)
			}
			for _, e := range d.validate(map[string]any{"$ref": "#/components/schemas/Error"}, v, "$") {
				t.Errorf("%s: %s", tc.target, e)
			}
			continue
		}
		etag := r.header.Get("ETag")
		again := get(t, s, tc.target, "If-None-Match", etag)
		if etag == "" || again.status != http.StatusNotModified || !documented(tc.path, again.status, "") {
			t.Errorf("%s: If-None-Match %q answered %d", tc.target, etag, again.status)
		}
	}
	for _, p := range []string{pageRoute, assetsRoute} {
		if r := do(t, s, http.MethodPost, strings.Replace(p, "{file}", "app.css", 1)); r.status != http.StatusMethodNotAllowed || !documented(p, r.status, "application/json") {
			t.Errorf("POST %s: %d", p, r.status)
		}
	}
	get(t, s, "/stats/nope")
	metrics := string(get(t, s, "/metrics").body)
	for _, line := range []string{
		`wikiflow_api_requests_total{route="/",status="200"} 1`,
		`wikiflow_api_requests_total{route="/",status="304"} 1`,
		`wikiflow_api_requests_total{route="/assets/{file}",status="200"} 4`,
		`wikiflow_api_requests_total{route="/assets/{file}",status="304"} 4`,
		`wikiflow_api_requests_total{route="/assets/{file}",status="404"} 2`,
		`wikiflow_api_requests_total{route="other",status="404"} 1`,
		`wikiflow_api_requests_total{route="other",status="405"} 2`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %s:\n%s", line, grepLines(metrics, "wikiflow_api_requests_total"))
		}
	}
}

// grepLines returns the lines of s holding sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
