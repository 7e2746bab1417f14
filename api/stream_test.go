package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wikiflow/wikiflow/api/apitypes"
	"github.com/wikiflow/wikiflow/internal/projection"
)

// redisCalls counts the round trips a go-redis client makes (a pipeline is one).
type redisCalls struct{ n atomic.Int64 }

func (h *redisCalls) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *redisCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *redisCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// streamEvent is one event read from a stream; comments counts the comment lines
// read before it.
type streamEvent struct {
	event, id, data string
	comments        int
}

// streamClient is one /stats/stream connection read line by line.
type streamClient struct {
	resp *http.Response
	br   *bufio.Reader
}

func openStream(t *testing.T, url string) *streamClient {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return &streamClient{resp: resp, br: bufio.NewReader(resp.Body)}
}

func (c *streamClient) close() { c.resp.Body.Close() }

// next reads up to the end of the next event (comment blocks are counted, not returned).
func (c *streamClient) next() (streamEvent, error) {
	var f streamEvent
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return f, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if f.event != "" || f.data != "" {
				return f, nil
			}
		case strings.HasPrefix(line, ":"):
			f.comments++
		default:
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "event":
				f.event = v
			case "id":
				f.id = v
			case "data":
				f.data = v
			}
		}
	}
}

// waitClients waits until the server counts n stream clients.
func waitClients(t *testing.T, s *Server, n int64) {
	t.Helper()
	for i := 0; i < 300 && s.Stats().StreamClients.Load() != n; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if got := s.Stats().StreamClients.Load(); got != n {
		t.Fatalf("%d stream clients, want %d", got, n)
	}
}

// TestStreamSharesReads checks that the clients of /stats/stream asking for the
// same parameters share one Redis read per interval: 40 clients of one parameter
// set cost about what one client costs, 40 clients of two sets about twice that
// (not 40 times).
func TestStreamSharesReads(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, func(c *Config) { c.Addr = "127.0.0.1:0" })
	s.keepAlive = 100 * time.Millisecond // so that departures are noticed quickly
	calls := &redisCalls{}
	s.rdb.AddHook(calls)
	base := startServer(t, s)
	a, b := base+"/stats/stream?window=5m&by=wiki&interval=1", base+"/stats/stream?window=1h&type=edit&interval=1"
	measure := func(n int, targets ...string) int64 {
		clients := make([]*streamClient, n)
		for i := range clients {
			clients[i] = openStream(t, targets[i%len(targets)])
			if _, err := clients[i].next(); err != nil {
				t.Fatalf("first event: %v", err)
			}
		}
		before := calls.n.Load()
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Go(func() { io.Copy(io.Discard, c.br) }) // read until closed
		}
		time.Sleep(4 * time.Second)
		got := calls.n.Load() - before
		for _, c := range clients {
			c.close()
		}
		wg.Wait()
		waitClients(t, s, 0)
		return got
	}
	one := measure(1, a)
	many := measure(40, a)
	two := measure(40, a, b)
	t.Logf("Redis round trips in 4 s: 1 client %d, 40 clients of one parameter set %d, 40 clients of two sets %d", one, many, two)
	if one == 0 {
		t.Fatal("one client made no Redis round trip")
	}
	// Generous bounds (reads drift by a tick on a loaded machine); without sharing,
	// 40 clients make 40 times as many.
	if many > 2*one+4 {
		t.Errorf("40 clients of one parameter set made %d round trips, one client %d: reads are not shared", many, one)
	}
	if two > 4*one+6 {
		t.Errorf("40 clients of two parameter sets made %d round trips, one client %d", two, one)
	}
	if n := s.Stats().StreamFeeds.Load(); n != 0 {
		t.Errorf("%d feeds still reading after every client left", n)
	}
}

// TestStreamClientLimit checks that beyond stream-max-clients a client gets the
// JSON 503 with Retry-After, is counted, and that a place freed by a client that
// left is given to the next one.
func TestStreamClientLimit(t *testing.T) {
	f := newFixture(t)
	var out syncBuffer
	s := newServerLog(t, f.base, &out, func(c *Config) { c.Addr = "127.0.0.1:0"; c.StreamMaxClients = 2 })
	s.keepAlive = 100 * time.Millisecond
	base := startServer(t, s)
	first := openStream(t, base+"/stats/stream")
	second := openStream(t, base+"/stats/stream?window=5m&interval=2")
	defer second.close()
	for _, c := range []*streamClient{first, second} {
		if _, err := c.next(); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get(base + "/stats/stream")
	if err != nil {
		t.Fatal(err)
	}
	var e apitypes.Error
	err = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 503 || err != nil || e.Error.Code != "too_many_clients" || !strings.Contains(e.Error.Message, "at most 2 clients") {
		t.Errorf("third client: %d %+v %v", resp.StatusCode, e, err)
	}
	if ra := resp.Header.Get("Retry-After"); ra != streamRetryAfter {
		t.Errorf("Retry-After %q", ra)
	}
	if n := s.Stats().StreamRefused.Load(); n != 1 {
		t.Errorf("%d refusals counted", n)
	}
	if !strings.Contains(out.String(), "client limit") {
		t.Errorf("the refusal is not logged:\n%s", out.String())
	}
	if resp, err := http.Head(base + "/stats/stream"); err != nil || resp.StatusCode != 200 {
		t.Errorf("HEAD at the limit: %v %v", resp, err)
	}
	first.close()
	waitClients(t, s, 1)
	again := openStream(t, base+"/stats/stream")
	defer again.close()
	if ev, err := again.next(); err != nil || ev.event != "stats" {
		t.Errorf("after a client left: %+v %v", ev, err)
	}
}

// TestStreamHeartbeatsAndChanges checks that idle clients get heartbeat comments,
// that an unchanged figure is not sent again, and that a change reaches every
// client of the parameter set at once, read by one Redis read per interval.
func TestStreamHeartbeatsAndChanges(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.base, func(c *Config) { c.Addr = "127.0.0.1:0"; c.CacheTTL = 0 })
	s.keepAlive = 150 * time.Millisecond
	base := startServer(t, s)
	clients := []*streamClient{openStream(t, base+"/stats/stream?interval=1"), openStream(t, base+"/stats/stream?interval=1")}
	var total int64
	for _, c := range clients {
		defer c.close()
		ev, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		var st apitypes.Stats
		if err := json.Unmarshal([]byte(ev.data), &st); err != nil || st.Total != int64(len(f.events)) {
			t.Fatalf("first event %+v: %v", ev, err)
		}
		total = st.Total
	}
	reads := s.Stats().StreamReads.Load()
	time.Sleep(1200 * time.Millisecond) // more than one interval: no change, heartbeats only
	if err := f.rdb.HIncrBy(context.Background(), projection.New(f.base, testNS).Legacy(), "added.example.org", 5).Err(); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		ev, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		var st apitypes.Stats
		if err := json.Unmarshal([]byte(ev.data), &st); err != nil || st.Total != total+5 || st.Stats["added.example.org"] != 5 {
			t.Errorf("client %d: event after the change %+v: %v", i, ev, err)
		}
		if ev.comments < 3 {
			t.Errorf("client %d: %d heartbeats in more than a second without change, want at least 3", i, ev.comments)
		}
	}
	if n := s.Stats().StreamReads.Load() - reads; n > 4 {
		t.Errorf("%d Redis reads for 2 clients in about 2 intervals", n)
	}
}
