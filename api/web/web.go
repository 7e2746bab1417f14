// Package web is wikiflow's live dashboard: one HTML page, its style sheet and
// plain JavaScript modules, embedded in the binary and served by the API at "/"
// and "/assets/…". The page reads only the API of the server that served it: the
// /stats figures over the /stats/stream Server-Sent Events, the chart from
// /stats/timeseries, the top lists from /stats/top/*, and the live ticker from
// /v2/stream/recentchange.
//
// Nothing is built at run time: the files under static/ are served as they are,
// each with a strong ETag and, when the client accepts it, a gzip encoding
// compressed once when the package loads. The chart library (uPlot) is vendored
// under static/vendor from the npm package pinned by package-lock.json; `npm run
// vendor` in this folder refreshes it.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"mime"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Paths the page is served under.
const (
	// PagePath is the dashboard page.
	PagePath = "/"
	// AssetPrefix is the path prefix of the page's style sheet, scripts and images.
	AssetPrefix = "/assets/"
)

// contentSecurityPolicy lets the page load only its own files and talk only to
// its own origin; links to the wikis are plain navigations.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed static
var static embed.FS

// asset is one embedded file, ready to send.
type asset struct {
	name        string
	contentType string
	body        []byte
	gzipped     []byte // nil when compression does not make it smaller
	etag        string
}

// assets are the embedded files by name relative to static/ ("index.html",
// "js/main.js", …), loaded once.
var assets = mustLoad(static)

func mustLoad(fsys fs.FS) map[string]*asset {
	out, err := load(fsys)
	if err != nil {
		panic(fmt.Sprintf("web: embedded assets: %v", err))
	}
	return out
}

// load reads every file under static/ and compresses it.
func load(fsys fs.FS) (map[string]*asset, error) {
	sub, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, err
	}
	out := map[string]*asset{}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		a, err := newAsset(p, body)
		if err != nil {
			return err
		}
		out[p] = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out["index.html"] == nil {
		return nil, fmt.Errorf("static/index.html is missing")
	}
	return out, nil
}

func newAsset(name string, body []byte) (*asset, error) {
	ct := contentTypes[path.Ext(name)]
	if ct == "" {
		ct = mime.TypeByExtension(path.Ext(name))
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	sum := sha256.Sum256(body)
	a := &asset{name: name, contentType: ct, body: body, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(body); err != nil {
		return nil, fmt.Errorf("gzip %s: %w", name, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip %s: %w", name, err)
	}
	if buf.Len() < len(body) {
		a.gzipped = buf.Bytes()
	}
	return a, nil
}

// contentTypes fixes the types of the page's own kinds of files, whatever the
// host's MIME tables say (modules must be served as JavaScript).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".txt":  "text/plain; charset=utf-8",
	".json": "application/json",
}

// Register mounts the page at PagePath and its files under AssetPrefix on r.
func Register(r fiber.Router) {
	r.Get(PagePath, servePage)
	r.Get(AssetPrefix+"*", serveAsset)
}

// Names lists the embedded files (relative to static/), sorted.
func Names() []string {
	out := make([]string, 0, len(assets))
	for n := range assets {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func servePage(c *fiber.Ctx) error {
	c.Set("Content-Security-Policy", contentSecurityPolicy)
	c.Set("Referrer-Policy", "no-referrer")
	return send(c, assets["index.html"])
}

func serveAsset(c *fiber.Ctx) error {
	name := c.Params("*")
	a := assets[name]
	if a == nil || name == "index.html" {
		return fiber.ErrNotFound
	}
	return send(c, a)
}

// send answers with a, revalidated by its ETag (the names carry no hash, so
// browsers must ask again; a 304 costs no body).
func send(c *fiber.Ctx, a *asset) error {
	c.Set(fiber.HeaderETag, a.etag)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderVary, fiber.HeaderAcceptEncoding)
	if etagListed(c.Get(fiber.HeaderIfNoneMatch), a.etag) {
		c.Status(fiber.StatusNotModified)
		return nil
	}
	c.Set(fiber.HeaderContentType, a.contentType)
	if a.gzipped != nil && acceptsGzip(c.Get(fiber.HeaderAcceptEncoding)) {
		c.Set(fiber.HeaderContentEncoding, "gzip")
		return c.Send(a.gzipped)
	}
	return c.Send(a.body)
}

// etagListed reports whether an If-None-Match header names etag (or is "*").
func etagListed(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip: listed (or
// "*") with a q-value above zero.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(p, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		return q > 0
	}
	return false
}
