package api

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/wikiflow/wikiflow/api/apitypes"
	"github.com/wikiflow/wikiflow/internal/cli"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/testenv"
)

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := DefaultConfig()
	bad.Addr = "localhost"
	bad.Redis.URL = "http://x"
	bad.Base = "{x}"
	bad.CORSOrigins = []string{"https://ok.example", "not an origin", "https://x.example/path"}
	bad.RequestTimeout = 0
	bad.MaxStaleness = -time.Second
	bad.RedisTimeout = 0
	bad.CacheTTL = 2 * time.Second
	bad.StageMetrics = []string{"http://127.0.0.1:8081/metrics", "ftp://u:stage-pw@host/metrics"}
	bad.StreamMaxClients = 0
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"addr", "redis-url", "hash", `"not an origin"`, "x.example/path", "request-timeout", "max-staleness", "redis-timeout", "cache-ttl", "stream-max-clients 0", "stage-metrics: \"ftp://u:xxxxx@host/metrics\""} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "ok.example") || strings.Contains(err.Error(), "8081") {
		t.Errorf("a good origin is reported: %v", err)
	}
	if _, err := New(bad, nil); err == nil {
		t.Error("New accepted a bad config")
	}
}

func TestFlags(t *testing.T) {
	env := map[string]string{
		"WIKIFLOW_API_ADDR":         ":9999",
		"WIKIFLOW_API_CORS_ORIGINS": "https://a.example, https://b.example",
		"WIKIFLOW_REDIS_URL":        "redis://10.0.0.1:6380/2",
	}
	f := cli.New("api", "serve", "", func(k string) string { return env[k] }, io.Discard)
	var c Config
	Flags(f, &c)
	if err := f.Parse([]string{"--max-staleness", "0", "--hash", "h2"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Err(); err != nil {
		t.Fatal(err)
	}
	d := DefaultConfig()
	if c.Addr != ":9999" || c.Redis.URL != "redis://10.0.0.1:6380/2" || c.Base != "h2" || c.MaxStaleness != 0 ||
		len(c.CORSOrigins) != 2 || c.CORSOrigins[1] != "https://b.example" ||
		c.RequestTimeout != d.RequestTimeout || c.RedisTimeout != d.RedisTimeout || c.CacheTTL != d.CacheTTL {
		t.Errorf("parsed %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
}

// TestCountKeys checks that every window's keys cover exactly its minutes.
func TestCountKeys(t *testing.T) {
	k := projection.New("b", "n")
	span := func(key string) (int64, bool) {
		rest := strings.TrimPrefix(key, k.Prefix())
		switch {
		case strings.HasPrefix(rest, "m"):
			return 1, true
		case strings.HasPrefix(rest, "h"):
			return 60, true
		}
		return 0, false
	}
	for _, asOfMin := range []int64{29_000_000, 29_000_001, 29_000_059, 29_000_030, 29_000_058} {
		asOf := time.UnixMilli(asOfMin*60_000 + 12_345)
		for w, n := range windowMinutes {
			if n == 0 {
				if keys := k.CountKeys(projection.KindCube, n, asOf); len(keys) != 1 || keys[0] != k.All(projection.KindCube) {
					t.Errorf("all: %v", keys)
				}
				continue
			}
			keys := k.CountKeys(projection.KindCube, n, asOf)
			var total int64
			seen := map[string]bool{}
			for _, key := range keys {
				d, ok := span(key)
				if !ok || seen[key] {
					t.Fatalf("%s: bad or repeated key %s", w, key)
				}
				seen[key] = true
				total += d
			}
			if total != n {
				t.Errorf("%s at minute %d: keys cover %d minutes", w, asOfMin, total)
			}
			if last := keys[len(keys)-1]; last != k.MinuteN(projection.KindCube, asOfMin) && !(asOfMin%60 == 59 && last == k.HourN(projection.KindCube, asOfMin/60)) {
				t.Errorf("%s: last key %s", w, last)
			}
			if w == "24h" && len(keys) > 23+2*60 {
				t.Errorf("24h uses %d keys", len(keys))
			}
		}
	}
	if keys := k.CountKeys(projection.KindCube, 5, time.Time{}); keys != nil {
		t.Errorf("no as_of: %v", keys)
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " back \ slash`, "tab\tnl\ncr\r", "\x00\x1f", "<a & b>", "é 日本 🎉", "bad \xff utf8", "line\u2028sep\u2029"} {
		got := appendString(nil, s)
		want, _ := json.Marshal(s)
		if string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

func TestETagMatches(t *testing.T) {
	tag := etagOf([]byte("body"))
	if tag == etagOf([]byte("other")) {
		t.Fatal("different bodies, same tag")
	}
	for header, want := range map[string]bool{
		tag: true, "W/" + tag: true, `"x", ` + tag: true, "*": true, `"x"`: false, "": false,
	} {
		if etagMatches(header, tag) != want {
			t.Errorf("etagMatches(%q) != %v", header, want)
		}
	}
}

func TestCORS(t *testing.T) {
	rdb := testenv.Redis(t)
	base := testenv.Prefix(t, rdb)
	off := newServer(t, base, nil)
	on := newServer(t, base, func(c *Config) { c.CORSOrigins = []string{"https://dash.example"} })
	if r := get(t, off, "/healthz", "Origin", "https://dash.example"); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS off sends %q", r.header.Get("Access-Control-Allow-Origin"))
	}
	if r := get(t, on, "/healthz", "Origin", "https://dash.example"); r.header.Get("Access-Control-Allow-Origin") != "https://dash.example" {
		t.Errorf("CORS on: allow-origin %q", r.header.Get("Access-Control-Allow-Origin"))
	}
	if r := get(t, on, "/healthz", "Origin", "https://evil.example"); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin allowed: %q", r.header.Get("Access-Control-Allow-Origin"))
	}
}

func TestPanicIsInternal(t *testing.T) {
	rdb := testenv.Redis(t)
	s := newServer(t, testenv.Prefix(t, rdb), nil)
	s.App().Get("/boom", func(c *fiber.Ctx) error { panic("boom") })
	s.App().Get("/fail", func(c *fiber.Ctx) error { return errors.New("disk on fire") })
	for _, target := range []string{"/boom", "/fail"} {
		r := get(t, s, target)
		e := decode[apitypes.Error](t, r)
		if r.status != 500 || e.Error.Code != "internal" || strings.Contains(e.Error.Message, "fire") {
			t.Errorf("%s: %d %s", target, r.status, r.body)
		}
	}
}

// redisProxy forwards TCP connections to Redis until stopped, so a test can take
// "Redis" away and bring it back on the same address.
type redisProxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func (p *redisProxy) start() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy listen: %v", err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *redisProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestRedisComesBack(t *testing.T) {
	f := newFixture(t)
	opt := f.rdb.Options()
	p := &redisProxy{t: t, target: opt.Addr, addr: "127.0.0.1:0"}
	p.start()
	t.Cleanup(p.stop)
	s := newServer(t, f.base, func(c *Config) { c.Redis.URL = "redis://" + p.addr + "/0" })
	if r := get(t, s, "/stats?window=5m"); r.status != 200 {
		t.Fatalf("through the proxy: %d %s", r.status, r.body)
	}
	p.stop()
	for i := 0; i < 3; i++ {
		if r := get(t, s, "/stats?window=5m"); r.status != 503 {
			t.Fatalf("Redis away: %d %s", r.status, r.body)
		}
	}
	p.start()
	var last response
	for i := 0; i < 100; i++ {
		if last = get(t, s, "/stats?window=5m"); last.status == 200 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if last.status != 200 {
		t.Fatalf("Redis back: still %d %s", last.status, last.body)
	}
	if got := decode[apitypes.Stats](t, last); got.Total != int64(len(f.window(5))) {
		t.Errorf("total %d after recovery, want %d", got.Total, len(f.window(5)))
	}
}

// BenchmarkStatsFast measures the parameterless /stats through fiber's handler
// (no network), with and without the body cache.
func BenchmarkStatsFast(b *testing.B) {
	for _, ttl := range []time.Duration{250 * time.Millisecond, 0} {
		b.Run("cache="+ttl.String(), func(b *testing.B) {
			rdb := testenv.Redis(b)
			base := testenv.Prefix(b, rdb)
			for i := 0; i < 100; i++ {
				rdb.HIncrBy(b.Context(), base, "d"+string(rune('a'+i%26))+".example.org", int64(i))
			}
			cfg := DefaultConfig()
			cfg.Redis.URL = testenv.RedisURL(b)
			cfg.Base = base
			cfg.CacheTTL = ttl
			s, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			h := s.App().Handler()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				for pb.Next() {
					ctx.ResetUserValues() // as fasthttp does between requests
					ctx.Request.Reset()
					ctx.Response.Reset()
					ctx.Request.SetRequestURI("/stats")
					h(&ctx)
					if ctx.Response.StatusCode() != 200 {
						b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
					}
				}
			})
		})
	}
}
