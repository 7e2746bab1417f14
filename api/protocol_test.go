package api

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/api/apitypes"
)

// TestIntervalBounds checks that /stats/stream takes an interval of whole seconds
// from 1 to 60 only, and refuses every other value with the JSON 400, including
// numbers whose conversion to a duration would overflow into the range.
func TestIntervalBounds(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, nil)
	for _, v := range []string{
		"18446744075", "18446744074", "9223372036854775807", "9223372036", "36893488147", "-18446744073",
		"0", "00", "61", "61s", "-1", "", " 5", "5 ", "05", "1.5", "1.5s", "1e3", "1m", "1000ms", "1h", "5S", "s", "５",
	} {
		r := get(t, s, "/stats/stream?interval="+url.QueryEscape(v))
		if r.status != 400 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("interval=%q: %d %s %.80s", v, r.status, r.header.Get("Content-Type"), r.body)
			continue
		}
		e := decode[apitypes.Error](t, r)
		if e.Error.Code != codeBadParameter || e.Error.Parameter != "interval" || !strings.Contains(e.Error.Message, "1 to 60") {
			t.Errorf("interval=%q: error %+v", v, e.Error)
		}
	}
	for v, want := range map[string]time.Duration{"1": time.Second, "1s": time.Second, "9": 9 * time.Second, "10s": 10 * time.Second, "59": 59 * time.Second, "60": time.Minute, "60s": time.Minute} {
		d, err := parseInterval(v)
		if err != nil || d != want {
			t.Errorf("parseInterval(%q) = %v, %v; want %v", v, d, err, want)
		}
	}
}

// rawConn is one kept-alive HTTP/1.1 connection written and read by hand.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, base string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// roundTrip writes one request and parses one response with net/http's own
// reader (for HEAD it reads no body).
func (r *rawConn) roundTrip(method, target string) (*http.Response, []byte) {
	r.t.Helper()
	r.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(r.c, method+" "+target+" HTTP/1.1\r\nHost: wikiflow.test\r\n\r\n"); err != nil {
		r.t.Fatalf("%s %s: write: %v", method, target, err)
	}
	resp, err := http.ReadResponse(r.br, &http.Request{Method: method})
	if err != nil {
		r.t.Fatalf("%s %s: the response does not parse: %v", method, target, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("%s %s: read body: %v", method, target, err)
	}
	return resp, body
}

// TestHeadThenGetOnOneConnection sends HEAD requests (the stream's among them)
// and then a GET on the same kept-alive connection: each response must parse,
// so HEAD must write nothing after its headers.
func TestHeadThenGetOnOneConnection(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, func(c *Config) { c.Addr = "127.0.0.1:0" })
	base := startServer(t, s)
	conn := dialRaw(t, base)
	for _, target := range []string{"/stats/stream", "/stats/stream?window=5m&interval=2", "/stats", "/healthz"} {
		resp, _ := conn.roundTrip(http.MethodHead, target)
		if resp.StatusCode != 200 {
			t.Errorf("HEAD %s: %d", target, resp.StatusCode)
		}
		resp, body := conn.roundTrip(http.MethodGet, "/stats")
		var st apitypes.Stats
		if err := json.Unmarshal(body, &st); resp.StatusCode != 200 || err != nil || st.Total != int64(len(f.events)) {
			t.Fatalf("GET /stats after HEAD %s: %d %v %.100s", target, resp.StatusCode, err, body)
		}
	}
	resp, _ := conn.roundTrip(http.MethodHead, "/stats/stream?interval=0")
	if resp.StatusCode != 400 {
		t.Errorf("HEAD with a bad interval: %d", resp.StatusCode)
	}
	if n := s.Stats().StreamClients.Load(); n != 0 {
		t.Errorf("HEAD counted %d stream clients", n)
	}
}

// TestUnknownMethods checks that methods fiber does not know answer 405 with the
// JSON error body and an Allow header, like the known methods the API does not
// serve, over the network and through app.Test, and that they are counted.
func TestUnknownMethods(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, func(c *Config) { c.Addr = "127.0.0.1:0" })
	base := startServer(t, s)
	conn := dialRaw(t, base)
	check := func(how, method, target string, status int, hdr http.Header, body []byte) {
		t.Helper()
		var e apitypes.Error
		if err := json.Unmarshal(body, &e); status != 405 || err != nil || e.Error.Status != 405 || e.Error.Code != codeMethodNotAllowed {
			t.Errorf("%s %s %s: %d %q", how, method, target, status, body)
		}
		if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s %s: Content-Type %q", how, method, target, ct)
		}
		if a := hdr.Get("Allow"); a != "GET, HEAD" {
			t.Errorf("%s %s %s: Allow %q", how, method, target, a)
		}
	}
	for _, m := range []string{"QUERY", "FOO", "get", "PROPFIND", "POST", "DELETE"} {
		for _, target := range []string{"/stats", "/stats/stream", "/nope"} {
			if m == "POST" || m == "DELETE" {
				if target == "/nope" {
					continue // known methods on unknown paths are a 404
				}
			}
			r := do(t, s, m, target)
			check("app.Test", m, target, r.status, r.header, r.body)
			resp, body := conn.roundTrip(m, target)
			check("network", m, target, resp.StatusCode, resp.Header, body)
		}
	}
	_, metrics := fetch(t, base+"/metrics")
	if !strings.Contains(string(metrics), `wikiflow_api_requests_total{route="other",status="405"}`) {
		t.Errorf("405 answers to unknown methods are not counted:\n%s", truncate(string(metrics)))
	}
	// The connection is still usable.
	if resp, _ := conn.roundTrip(http.MethodGet, "/healthz"); resp.StatusCode != 200 {
		t.Errorf("GET after unknown methods: %d", resp.StatusCode)
	}
}
