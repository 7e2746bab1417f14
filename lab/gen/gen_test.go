package gen

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/recording"
)

var uuid4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestLearnProfileFromTheRecording(t *testing.T) {
	p := DefaultProfile()
	if p.Source != 2723 {
		t.Errorf("learned from %d events, want 2723", p.Source)
	}
	if len(p.Wikis) != 73 {
		t.Errorf("%d wikis, want 73", len(p.Wikis))
	}
	if w := p.Wikis[0]; w.Wiki != "commonswiki" || w.Domain != "commons.wikimedia.org" ||
		w.ServerURL != "https://commons.wikimedia.org" || math.Abs(w.Weight-1079.0/2723) > 1e-9 {
		t.Errorf("top wiki = %+v, want commonswiki with 1079/2723", w)
	}
	sum := 0.0
	for _, w := range p.Wikis {
		sum += w.Weight
		ts := w.Types[0] + w.Types[1] + w.Types[2] + w.Types[3]
		if math.Abs(ts-1) > 1e-9 {
			t.Errorf("%s type mix sums to %v", w.Wiki, ts)
		}
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("wiki weights sum to %v", sum)
	}
	if math.Abs(p.BotShare-1188.0/2723) > 1e-9 {
		t.Errorf("bot share %v, want 1188/2723", p.BotShare)
	}
	want := map[string]float64{"categorize": 1334.0 / 2723, "edit": 1106.0 / 2723, "log": 160.0 / 2723, "new": 123.0 / 2723}
	for typ, share := range p.TypeShares() {
		if math.Abs(share-want[typ]) > 0.03 {
			t.Errorf("type share %s = %.3f, recorded %.3f", typ, share, want[typ])
		}
	}
	if p.LogTypes[0].Value != (LogKind{Type: "delete", Action: "delete"}) {
		t.Errorf("most frequent log kind %+v, want delete/delete", p.LogTypes[0])
	}
	if p.Namespaces["categorize"][0].Value != 14 {
		t.Errorf("categorize namespaces %+v, want 14 first", p.Namespaces["categorize"])
	}
	if p.Rate < 40 || p.Rate > 70 {
		t.Errorf("recorded rate %v, want about 54/s", p.Rate)
	}
	if _, err := LearnProfile(nil); err != ErrNoEvents {
		t.Errorf("LearnProfile(nil) error = %v, want ErrNoEvents", err)
	}
}

func TestDeterminism(t *testing.T) {
	p := DefaultProfile()
	a, b, c := New(p, 42), New(p, 42), New(p, 43)
	same := 0
	for i := range 3000 {
		x := append([]byte(nil), a.Next()...)
		if y := b.Next(); !bytes.Equal(x, y) {
			t.Fatalf("event %d differs for the same seed:\n%s\n%s", i, x, y)
		}
		if bytes.Equal(x, c.Next()) {
			same++
		}
	}
	if same != 0 {
		t.Errorf("%d of 3000 events equal for seeds 42 and 43", same)
	}
}

// recordedKeys returns, per type, the top-level keys that real events carry.
func recordedKeys(t *testing.T) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	var par fastjson.Parser
	for _, e := range recording.Events() {
		v, err := par.ParseBytes(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		typ := string(v.GetStringBytes("type"))
		if out[typ] == nil {
			out[typ] = map[string]bool{}
		}
		v.GetObject().Visit(func(k []byte, _ *fastjson.Value) { out[typ][string(k)] = true })
	}
	return out
}

// checkType fails unless v (when required or present) has JSON type want.
func checkType(t *testing.T, i int, v *fastjson.Value, path string, want fastjson.Type, required bool) {
	t.Helper()
	keys := []string{path}
	if j := bytes.IndexByte([]byte(path), '.'); j > 0 {
		keys = []string{path[:j], path[j+1:]}
	}
	f := v.Get(keys...)
	if f == nil {
		if required {
			t.Fatalf("event %d: no %s", i, path)
		}
		return
	}
	if f.Type() != want {
		t.Fatalf("event %d: %s is %s, want %s", i, path, f.Type(), want)
	}
	if want == fastjson.TypeNumber && path != "meta.partition" {
		if _, err := f.Int64(); err != nil {
			t.Fatalf("event %d: %s = %s is not an integer", i, path, f)
		}
	}
}

func TestEventsAreSchemaValidAndShapedLikeRealOnes(t *testing.T) {
	const n = 20000
	p := DefaultProfile()
	g := New(p, 1)
	real := recordedKeys(t)
	var par fastjson.Parser
	var total, minLen, maxLen int
	minLen = math.MaxInt
	var backwards int
	var prevDT time.Time
	for i := range n {
		raw := g.Next()
		total += len(raw)
		minLen, maxLen = min(minLen, len(raw)), max(maxLen, len(raw))
		ev, err := event.Parse(raw)
		if err != nil {
			t.Fatalf("event %d does not parse: %v\n%s", i, err, raw)
		}
		v, err := par.ParseBytes(raw)
		if err != nil {
			t.Fatal(err)
		}
		// The schema's required fields and the types of its properties.
		checkType(t, i, v, "$schema", fastjson.TypeString, true)
		if s := string(v.GetStringBytes("$schema")); s != "/mediawiki/recentchange/1.0.0" {
			t.Fatalf("event %d: $schema %q", i, s)
		}
		checkType(t, i, v, "meta", fastjson.TypeObject, true)
		for _, f := range []string{"meta.dt", "meta.stream", "meta.id", "meta.domain", "meta.uri", "meta.request_id", "meta.topic"} {
			checkType(t, i, v, f, fastjson.TypeString, true)
		}
		checkType(t, i, v, "meta.partition", fastjson.TypeNumber, true)
		checkType(t, i, v, "meta.offset", fastjson.TypeNumber, true)
		if s := string(v.GetStringBytes("meta", "stream")); s != "mediawiki.recentchange" {
			t.Fatalf("event %d: meta.stream %q", i, s)
		}
		dt := string(v.GetStringBytes("meta", "dt"))
		if _, err := time.Parse(time.RFC3339, dt); err != nil || len(dt) > 128 || dt[len(dt)-1] != 'Z' {
			t.Fatalf("event %d: meta.dt %q is not an RFC 3339 UTC time", i, dt)
		}
		if id := string(v.GetStringBytes("meta", "id")); !uuid4.MatchString(id) || id != string(g.Last().MetaID[:]) {
			t.Fatalf("event %d: meta.id %q is not the UUID v4 reported by Last (%s)", i, id, g.Last().MetaID[:])
		}
		for _, f := range []string{"type", "title", "title_url", "comment", "user", "server_url", "server_name", "server_script_path", "wiki", "parsedcomment"} {
			checkType(t, i, v, f, fastjson.TypeString, true)
		}
		checkType(t, i, v, "namespace", fastjson.TypeNumber, true)
		checkType(t, i, v, "timestamp", fastjson.TypeNumber, true)
		if !(v.Get("bot").Type() == fastjson.TypeTrue || v.Get("bot").Type() == fastjson.TypeFalse) {
			t.Fatalf("event %d: bot is not a boolean", i)
		}
		typ := ev.Type
		switch typ {
		case "edit", "new":
			checkType(t, i, v, "id", fastjson.TypeNumber, true)
			checkType(t, i, v, "length", fastjson.TypeObject, true)
			checkType(t, i, v, "length.new", fastjson.TypeNumber, true)
			checkType(t, i, v, "revision", fastjson.TypeObject, true)
			checkType(t, i, v, "revision.new", fastjson.TypeNumber, true)
			if typ == "edit" {
				checkType(t, i, v, "length.old", fastjson.TypeNumber, true)
				checkType(t, i, v, "revision.old", fastjson.TypeNumber, true)
			}
			if mt := v.Get("minor").Type(); mt != fastjson.TypeTrue && mt != fastjson.TypeFalse {
				t.Fatalf("event %d: minor is %s", i, mt)
			}
		case "log":
			checkType(t, i, v, "id", fastjson.TypeNumber, false)
			checkType(t, i, v, "log_id", fastjson.TypeNumber, true)
			checkType(t, i, v, "log_type", fastjson.TypeString, true)
			checkType(t, i, v, "log_action", fastjson.TypeString, true)
			checkType(t, i, v, "log_action_comment", fastjson.TypeString, true)
			if pt := v.Get("log_params").Type(); pt != fastjson.TypeArray && pt != fastjson.TypeObject {
				t.Fatalf("event %d: log_params is %s", i, pt)
			}
			if v.Exists("length") || v.Exists("revision") {
				t.Fatalf("event %d: a log event with length or revision", i)
			}
		case "categorize":
			checkType(t, i, v, "id", fastjson.TypeNumber, true)
			if ev.Namespace != 14 && p.Namespaces["categorize"][0].Weight == 1 {
				t.Fatalf("event %d: categorize in namespace %d", i, ev.Namespace)
			}
		default:
			t.Fatalf("event %d: type %q", i, typ)
		}
		v.GetObject().Visit(func(k []byte, _ *fastjson.Value) {
			if !real[typ][string(k)] {
				t.Fatalf("event %d: field %q never appears on real %s events", i, k, typ)
			}
		})
		// The fields the pipeline reads agree with Last.
		in := g.Last()
		if ev.Wiki != in.Wiki || ev.Domain != in.Domain || ev.Type != in.Type || ev.Bot != in.Bot || !ev.Time.Equal(in.Time) {
			t.Fatalf("event %d: parsed %+v, Last reports %+v", i, ev, in)
		}
		if string(v.GetStringBytes("server_name")) != ev.Domain {
			t.Fatalf("event %d: server_name differs from meta.domain", i)
		}
		if ev.Bot && ev.EditorKind() != event.EditorRegistered {
			t.Fatalf("event %d: bot user %q is %s", i, ev.User, ev.EditorKind())
		}
		if i > 0 && ev.Time.Before(prevDT) {
			backwards++
			if prevDT.Sub(ev.Time) > maxJitter+time.Second {
				t.Fatalf("event %d: meta.dt %v goes back %v", i, ev.Time, prevDT.Sub(ev.Time))
			}
		}
		prevDT = ev.Time
	}
	avg := total / n
	t.Logf("sizes: min %d, avg %d, max %d bytes; meta.dt goes back in %d of %d steps", minLen, avg, maxLen, backwards, n-1)
	if avg < 800 || avg > 3000 || minLen < 400 || maxLen > 6000 {
		t.Errorf("sizes: min %d, avg %d, max %d bytes; want about 0.8-3 KB like the recording", minLen, avg, maxLen)
	}
	if share := float64(backwards) / n; share < 0.1 || share > 0.3 {
		t.Errorf("meta.dt goes back in %.1f %% of steps, want about 20 %%", 100*share)
	}
}

func TestEventTimesFollowTheClock(t *testing.T) {
	g := New(DefaultProfile(), 3)
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	g.SetClock(start, 100)
	for i := range 1000 {
		g.Next()
		slot := start.Add(time.Duration(i) * 10 * time.Millisecond)
		dt := g.Last().Time
		if dt.After(slot) || slot.Sub(dt) > maxJitter+time.Millisecond {
			t.Fatalf("event %d dated %v, slot %v", i, dt, slot)
		}
	}
}

func TestAppendDT(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 5, 5, 11, 17, 40, 833e6, time.UTC),
		time.Date(999, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2030, 12, 31, 23, 59, 59, 999999999, time.UTC),
	} {
		if got, want := string(appendDT(nil, tm)), tm.Format("2006-01-02T15:04:05.000Z07:00"); got != want {
			t.Errorf("appendDT(%v) = %s, want %s", tm, got, want)
		}
	}
}

func TestMetaIDsAreUnique(t *testing.T) {
	g := New(DefaultProfile(), 9)
	seen := make(map[[36]byte]int, 100000)
	for i := range 100000 {
		g.Next()
		id := g.Last().MetaID
		if j, dup := seen[id]; dup {
			t.Fatalf("events %d and %d share meta.id %s", j, i, id[:])
		}
		seen[id] = i
	}
}

func TestDistributionFollowsTheProfile(t *testing.T) {
	const n = 50000
	p := DefaultProfile()
	g := New(p, 5)
	wikis, types := map[string]int{}, map[string]int{}
	bots := 0
	for range n {
		ev, err := event.Parse(g.Next())
		if err != nil {
			t.Fatal(err)
		}
		wikis[ev.Wiki]++
		types[ev.Type]++
		if ev.Bot {
			bots++
		}
	}
	// Within 5 standard deviations of a binomial, plus a little.
	within := func(what string, got int, share float64) {
		t.Helper()
		sd := math.Sqrt(share * (1 - share) / n)
		if d := math.Abs(float64(got)/n - share); d > 5*sd+0.002 {
			t.Errorf("%s: %.4f of events, profile says %.4f", what, float64(got)/n, share)
		}
	}
	for _, w := range p.Wikis {
		within("wiki "+w.Wiki, wikis[w.Wiki], w.Weight)
	}
	if len(wikis) > len(p.Wikis) {
		t.Errorf("%d wikis generated, profile has %d", len(wikis), len(p.Wikis))
	}
	for typ, share := range p.TypeShares() {
		within("type "+typ, types[typ], share)
	}
	within("bots", bots, p.BotShare)
}

func TestTruthMatchesTheOutput(t *testing.T) {
	var buf bytes.Buffer
	g := New(DefaultProfile(), 11)
	var calls []int
	truth, err := WriteNDJSON(t.Context(), &buf, g, 12345, 0, func(d int) { calls = append(calls, d) })
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) == 0 || calls[len(calls)-1] != 12345 {
		t.Errorf("progress calls end with %v, want 12345", calls)
	}
	want := countLines(t, buf.Bytes())
	want.Seed = 11
	compareTruth(t, truth, want)

	path := t.TempDir() + "/truth.json"
	if err := truth.WriteTruth(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadTruth(path)
	if err != nil {
		t.Fatal(err)
	}
	compareTruth(t, back, want)
	if _, err := ReadTruth(t.TempDir() + "/missing.json"); err == nil {
		t.Error("ReadTruth of a missing file: no error")
	}
}

// countLines counts NDJSON events independently of the generator, by parsing them.
func countLines(t *testing.T, data []byte) *Truth {
	t.Helper()
	c := NewTruth(0)
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		countRaw(t, c, line)
	}
	return c
}

func countRaw(t *testing.T, c *Truth, raw []byte) {
	t.Helper()
	ev, err := event.Parse(raw)
	if err != nil {
		t.Fatalf("generated line does not parse: %v", err)
	}
	c.Events++
	c.PerDomain[ev.Domain]++
	c.PerType[ev.Type]++
	if ev.Bot {
		c.Bot++
	} else {
		c.Human++
	}
}

func compareTruth(t *testing.T, got, want *Truth) {
	t.Helper()
	if got.Events != want.Events || got.Bot != want.Bot || got.Human != want.Human || got.Seed != want.Seed {
		t.Errorf("truth events/bot/human/seed = %d/%d/%d/%d, want %d/%d/%d/%d",
			got.Events, got.Bot, got.Human, got.Seed, want.Events, want.Bot, want.Human, want.Seed)
	}
	if a, b := fmt.Sprint(sorted(got.PerDomain)), fmt.Sprint(sorted(want.PerDomain)); a != b {
		t.Errorf("per domain:\n got %s\nwant %s", a, b)
	}
	if a, b := fmt.Sprint(sorted(got.PerType)), fmt.Sprint(sorted(want.PerType)); a != b {
		t.Errorf("per type:\n got %s\nwant %s", a, b)
	}
}

func sorted(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(out)
	return out
}

func TestSourceIsRandomAccess(t *testing.T) {
	const n, rate = 4000, 250.0
	p := DefaultProfile()
	start := time.Date(2027, 3, 4, 5, 6, 7, 0, time.UTC)
	src := NewSource(p, 21, n, rate).WithStart(start)
	if src.Len() != n {
		t.Fatalf("Len = %d", src.Len())
	}
	g := New(p, 21)
	g.SetClock(start, rate)
	seq := make([][]byte, n)
	for i := range seq {
		seq[i] = append([]byte(nil), g.Next()...)
	}
	// Concurrent readers in shuffled order see exactly the sequential events.
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 0))
			for _, i := range r.Perm(n) {
				data, off := src.Event(i)
				if !bytes.Equal(data, seq[i]) {
					errs <- fmt.Sprintf("Event(%d) differs from the %d-th sequential event", i, i)
					return
				}
				if want := time.Duration(float64(i) / rate * float64(time.Second)); off != want {
					errs <- fmt.Sprintf("Event(%d) offset %v, want %v", i, off, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	// The returned slice belongs to the caller.
	a, _ := src.Event(5)
	keep := append([]byte(nil), a...)
	src.Event(6)
	if !bytes.Equal(a, keep) {
		t.Error("Event's slice was overwritten by a later call")
	}
	if _, off := NewSource(p, 1, 10, 0).Event(9); off != 0 {
		t.Errorf("offset at rate 0 = %v, want 0", off)
	}
}

func BenchmarkNext(b *testing.B) {
	g := New(DefaultProfile(), 1)
	size := 0
	b.ReportAllocs()
	for b.Loop() {
		size += len(g.Next())
	}
	b.SetBytes(int64(size / b.N))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkSourceEvent(b *testing.B) {
	src := NewSource(DefaultProfile(), 1, 1<<30, 0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		src.Event(i)
		i++
	}
}
