package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// tickerFilter is the ticker's filter form, field by field.
type tickerFilter struct {
	Wikis, Namespace, Type, Kind, MinSize, User string
}

func (f tickerFilter) form() map[string]string {
	return map[string]string{"tw": f.Wikis, "tns": f.Namespace, "ttype": f.Type, "tkind": f.Kind, "tmin": f.MinSize, "tuser": f.User}
}

// rcEvent holds the recentchange fields the filters read, decoded with encoding/json.
type rcEvent struct {
	Meta struct {
		ID     string `json:"id"`
		Domain string `json:"domain"`
	} `json:"meta"`
	Wiki      string `json:"wiki"`
	Type      string `json:"type"`
	User      string `json:"user"`
	Namespace *int   `json:"namespace"`
	Bot       bool   `json:"bot"`
	Length    *struct {
		Old *int `json:"old"`
		New *int `json:"new"`
	} `json:"length"`
}

func decodeRC(t *testing.T, raw []byte) rcEvent {
	t.Helper()
	var e rcEvent
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// kind is the editor kind as the page names it, from the fields alone: bot when
// flagged, else temporary (~name), anonymous (an IP address or no name) or registered.
func (e *rcEvent) kind() string {
	switch {
	case e.Bot:
		return "bot"
	case e.User == "" || net.ParseIP(e.User) != nil:
		return "anonymous"
	case strings.HasPrefix(e.User, "~"):
		return "temporary"
	}
	return "registered"
}

// describe names the fields the filters read.
func (e *rcEvent) describe() string {
	ns := "none"
	if e.Namespace != nil {
		ns = strconv.Itoa(*e.Namespace)
	}
	d, ok := e.delta()
	size := "no length"
	if ok {
		size = fmt.Sprintf("%+d bytes", d)
	}
	return fmt.Sprintf("%s on %s (%s) by %q, %s, namespace %s, %s", e.Type, e.Meta.Domain, e.Wiki, e.User, e.kind(), ns, size)
}

// delta is the size change, and whether the event has one.
func (e *rcEvent) delta() (int, bool) {
	if e.Length == nil || e.Length.New == nil {
		return 0, false
	}
	old := 0
	if e.Length.Old != nil {
		old = *e.Length.Old
	}
	return *e.Length.New - old, true
}

// match is the filter written from its description, apart from the page's code.
func (f tickerFilter) match(e *rcEvent) bool {
	if f.Wikis != "" {
		ok := false
		for _, w := range strings.FieldsFunc(f.Wikis, func(r rune) bool { return r == ',' || r == ' ' }) {
			ok = ok || strings.EqualFold(w, e.Meta.Domain) || strings.EqualFold(w, e.Wiki)
		}
		if !ok {
			return false
		}
	}
	if f.Namespace != "" && (e.Namespace == nil || strconv.Itoa(*e.Namespace) != f.Namespace) {
		return false
	}
	if f.Type != "" && e.Type != f.Type {
		return false
	}
	if k := e.kind(); f.Kind != "" && !(f.Kind == "human" && k != "bot" || f.Kind == k) {
		return false
	}
	if f.MinSize != "" {
		m, _ := strconv.Atoi(f.MinSize)
		d, ok := e.delta()
		if !ok || d < m && -d < m {
			return false
		}
	}
	return f.User == "" || e.User == f.User
}

// tickerLog remembers every event the test published, by meta.id, to check
// each row the ticker shows.
type tickerLog struct {
	s    *webStack
	mu   sync.Mutex
	byID map[string][]byte
}

func newTickerLog(s *webStack) *tickerLog {
	tk := &tickerLog{s: s, byID: map[string][]byte{}}
	s.onPublish = tk.remember
	return tk
}

func (tk *tickerLog) remember(id string, raw []byte) {
	tk.mu.Lock()
	tk.byID[id] = raw
	tk.mu.Unlock()
}

// next returns the next n recorded events, dated now.
func (tk *tickerLog) next(n int) [][]byte {
	now := time.Now()
	return tk.s.recorded(n, now.Add(-time.Duration(n)*time.Millisecond), now)
}

// publish publishes the next n recorded events, dated now.
func (tk *tickerLog) publish(n int) [][]byte {
	batch := tk.next(n)
	tk.s.publish(batch)
	return batch
}

const tickerRowsJS = `[...document.querySelectorAll("#ticker li[data-id]")].map(li => li.dataset.id)`

// check sets the filter f, publishes batch and expects exactly its matching
// events on top of the ticker, and only matching events in it.
func (tk *tickerLog) check(t *testing.T, b *browser, f tickerFilter, batch ...[]byte) {
	setFilters(b, f.form())
	var conds []string
	for k, v := range f.form() {
		if v != "" {
			conds = append(conds, fmt.Sprintf(`new URLSearchParams(location.search).get(%q) === %s`, k, jsonString(t, v)))
		} else {
			conds = append(conds, fmt.Sprintf(`!new URLSearchParams(location.search).has(%q)`, k))
		}
	}
	b.waitFor("the filters in the URL", strings.Join(conds, " && "), 5*time.Second)
	b.waitFor("the ticker to reconnect", `document.querySelector("#ticker-state").dataset.state === "live"`, 10*time.Second)
	if len(batch) == 0 {
		batch = tk.next(60)
	}
	tk.s.publish(batch)
	tk.expect(t, b, f, batch)
}

// expect waits for batch's events that match f, then checks every row.
func (tk *tickerLog) expect(t *testing.T, b *browser, f tickerFilter, batch [][]byte) {
	var want, not []string
	for _, raw := range batch {
		e := decodeRC(t, raw)
		if f.match(&e) {
			want = append(want, e.Meta.ID)
		} else {
			not = append(not, e.Meta.ID)
		}
	}
	if len(want) == 0 {
		t.Fatalf("no event of the batch matches %+v: the check would prove nothing", f)
	}
	b.waitFor(fmt.Sprintf("the %d matching events of %d", len(want), len(batch)),
		fmt.Sprintf(`(() => { const ids = new Set(%s); return %s.every(id => ids.has(id)); })()`, tickerRowsJS, jsonString(t, want)), 15*time.Second)
	time.Sleep(time.Second)
	rows := eval[[]string](b, tickerRowsJS)
	shown := map[string]bool{}
	tk.mu.Lock()
	defer tk.mu.Unlock()
	for _, id := range rows {
		shown[id] = true
		raw, ok := tk.byID[id]
		if !ok {
			t.Errorf("the ticker shows %s, which the test never published", id)
			continue
		}
		if e := decodeRC(t, raw); !f.match(&e) {
			t.Errorf("the ticker shows %s (%s), which %+v excludes", id, e.describe(), f)
		}
	}
	for _, id := range not {
		if shown[id] {
			t.Errorf("the ticker shows %s, which does not match", id)
		}
	}
}

// mostCommon returns the most frequent value of key among the events of batch
// that pass keep, ties by value.
func mostCommon(t *testing.T, batch [][]byte, key func(*rcEvent) string, keep func(*rcEvent) bool) string {
	n := map[string]int{}
	for _, raw := range batch {
		e := decodeRC(t, raw)
		if k := key(&e); k != "" && keep(&e) {
			n[k]++
		}
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return n[keys[i]] > n[keys[j]] || n[keys[i]] == n[keys[j]] && keys[i] < keys[j] })
	if len(keys) == 0 {
		t.Fatal("no event of the batch qualifies")
	}
	return keys[0]
}

// checkTickerFilters sets each kind of filter in turn: server-side ones (type,
// bot, a domain list, namespace, user), ones only the page applies (a mixed
// wiki list, editor kinds, minimum size), and back to none.
func checkTickerFilters(t *testing.T, b *browser, tk *tickerLog) {
	all := func(*rcEvent) bool { return true }
	kind := func(k string) func(*rcEvent) bool { return func(e *rcEvent) bool { return e.kind() == k } }
	batch := tk.next(60)
	typ := mostCommon(t, batch, func(e *rcEvent) string { return e.Type }, func(e *rcEvent) bool { return !e.Bot })
	tk.check(t, b, tickerFilter{Type: typ, Kind: "human"}, batch...)
	batch = tk.next(60)
	sized := func(e *rcEvent) bool { d, ok := e.delta(); return ok && (d >= 50 || d <= -50) }
	tk.check(t, b, tickerFilter{Wikis: mostCommon(t, batch, func(e *rcEvent) string { return e.Meta.Domain }, sized), MinSize: "50"}, batch...)
	batch = tk.next(60)
	wiki := mostCommon(t, batch, func(e *rcEvent) string { return e.Wiki }, kind("registered"))
	domain := mostCommon(t, batch, func(e *rcEvent) string { return e.Meta.Domain }, func(e *rcEvent) bool { return e.Wiki != wiki })
	tk.check(t, b, tickerFilter{Wikis: wiki + ", " + domain, Kind: "registered"}, batch...)
	batch = tk.next(60)
	ns := mostCommon(t, batch, func(e *rcEvent) string { return strconv.Itoa(*e.Namespace) }, kind("bot"))
	tk.check(t, b, tickerFilter{Namespace: ns, Kind: "bot"}, batch...)
	batch = tk.next(60)
	tk.check(t, b, tickerFilter{User: mostCommon(t, batch, func(e *rcEvent) string { return e.User }, all)}, batch...)
	tk.check(t, b, tickerFilter{})
	tk.checkPause(t, b)
}

// checkPause pauses the ticker with its key, publishes, expects nothing new
// shown but the count of what is held, and everything after resuming.
func (tk *tickerLog) checkPause(t *testing.T, b *browser) {
	b.press("p", "KeyP", 80)
	b.waitFor("the ticker to pause", `document.querySelector("#pause").getAttribute("aria-pressed") === "true"`, 5*time.Second)
	batch := tk.next(30)
	tk.s.publish(batch)
	b.waitFor("the held events to be counted", `document.querySelector("#ticker-state").textContent === "paused · 30 new"`, 10*time.Second)
	shown := map[string]bool{}
	for _, id := range eval[[]string](b, tickerRowsJS) {
		shown[id] = true
	}
	for _, raw := range batch {
		if id := decodeRC(t, raw).Meta.ID; shown[id] {
			t.Errorf("the paused ticker shows %s", id)
		}
	}
	b.press("p", "KeyP", 80)
	b.waitFor("the ticker to resume", `document.querySelector("#pause").getAttribute("aria-pressed") === "false"`, 5*time.Second)
	tk.expect(t, b, tickerFilter{}, batch)
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
