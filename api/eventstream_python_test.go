package api

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// prettyEvent is a real event spread over several lines (legal JSON, as a feed
// that splits data lines could leave it): the endpoint must send it on one line.
const prettyEvent = `{
  "meta": {"id": "9d1e0c55-0000-4000-8000-000000000001", "domain": "en.wikipedia.org",
           "dt": "2026-01-02T03:04:05Z", "stream": "mediawiki.recentchange"},
  "wiki": "enwiki", "type": "edit", "namespace": 0, "title": "Multi\nline",
  "user": "Example", "bot": false,
  "length": {"old": 10, "new": 12}
}
`

// TestEventStreamPython reads the endpoint with sseclient-py: the whole log from
// since=0, each filter, a resume from the Last-Event-ID it received (with a
// since that must be ignored), and since= at a time between two batches. Every
// answer must be exactly the events the test computes with encoding/json, in
// log order, each with its own id, data byte for byte (or compacted).
func TestEventStreamPython(t *testing.T) {
	env := newEventEnv(t, nil)
	all := evRecorded()
	first := env.publish(t, all[:2000]...)
	time.Sleep(100 * time.Millisecond)
	between := time.Now()
	time.Sleep(100 * time.Millisecond)
	second := env.publish(t, append(all[2000:], []byte(prettyEvent))...)
	stream := env.base + eventStreamRoute

	type filterCase struct {
		query string
		keep  func(evFields) bool
	}
	everything := func(evFields) bool { return true }
	filters := []filterCase{
		{"since=0", everything},
		{"since=0&wiki=enwiki,commonswiki&type=edit,new", func(f evFields) bool {
			return (f.Wiki == "enwiki" || f.Wiki == "commonswiki") && (f.Type == "edit" || f.Type == "new")
		}},
		{"since=0&domain=www.wikidata.org,zh.wikisource.org&bot=false", func(f evFields) bool {
			return (f.Meta.Domain == "www.wikidata.org" || f.Meta.Domain == "zh.wikisource.org") && !f.Bot
		}},
		{"since=0&namespace=0,-1,6&bot=true", func(f evFields) bool {
			return (f.Namespace == 0 || f.Namespace == -1 || f.Namespace == 6) && f.Bot
		}},
		{"since=0&type=log", func(f evFields) bool { return f.Type == "log" }},
		{"since=0&" + url.Values{"user": {"DPLA bot"}}.Encode(), func(f evFields) bool { return f.User == "DPLA bot" }},
	}
	var jobs []evPyJob
	for _, fc := range filters {
		jobs = append(jobs, evPyJob{URL: stream + "?" + fc.query, Idle: 1})
	}
	const cut = 700
	jobs = append(jobs, evPyJob{URL: stream + "?since=0", Max: cut, Idle: 1})
	res := evPython(t, jobs)
	for i, fc := range filters {
		want := evMatching(t, env.events, fc.keep)
		if len(want) == 0 {
			t.Fatalf("%s: the test data has no evMatching event", fc.query)
		}
		evCheckPython(t, fc.query, res[i], want)
	}
	head := res[len(filters)]
	evCheckPython(t, "first "+strconv.Itoa(cut), head, env.events[:cut])

	// Resume from the id the client saw; the since (now: nothing) is ignored.
	lastID := head.events[len(head.events)-1].ID
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	res = evPython(t, []evPyJob{
		{URL: stream + "?since=" + now, Headers: map[string]string{"Last-Event-ID": lastID}, Idle: 1},
		{URL: stream + "?since=" + url.QueryEscape(between.UTC().Format(time.RFC3339Nano)), Idle: 1},
		{URL: stream + "?since=" + strconv.FormatInt(between.UnixMilli(), 10) + "&type=edit", Idle: 1},
	})
	evCheckPython(t, "resume", res[0], env.events[cut:])
	evCheckPython(t, "since ISO", res[1], second)
	evCheckPython(t, "since ms, type=edit", res[2], evMatching(t, second, func(f evFields) bool { return f.Type == "edit" }))
	if len(first)+len(second) != len(env.events) {
		t.Fatal("publish bookkeeping")
	}
}

// evCheckPython compares what the Python client read with the expected events.
func evCheckPython(t *testing.T, what string, got evPyResult, want []evLogged) {
	t.Helper()
	if got.end != "idle" && got.end != "max" {
		t.Errorf("%s: the stream ended with %q", what, got.end)
	}
	if len(got.events) != len(want) {
		t.Errorf("%s: %d events, want %d", what, len(got.events), len(want))
	}
	for i := 0; i < len(got.events) && i < len(want); i++ {
		g, w := got.events[i], want[i]
		if g.Event != "message" || g.ID != evID(w.seq) {
			t.Fatalf("%s: event %d is %q with id %s, want message with id %s", what, i, g.Event, g.ID, evID(w.seq))
		}
		wantData := string(w.raw)
		if json.Valid(w.raw) && evLineBreak(w.raw) {
			wantData = evCompact(t, w.raw)
		}
		if g.Data != wantData {
			t.Fatalf("%s: event %d data\n got %.200s\nwant %.200s", what, i, g.Data, wantData)
		}
		var gv, wv any
		_ = json.Unmarshal([]byte(g.Data), &gv)
		_ = json.Unmarshal(w.raw, &wv)
		if !reflect.DeepEqual(gv, wv) {
			t.Fatalf("%s: event %d decodes differently from the evLogged event", what, i)
		}
		if f := evMetaID(w.raw); g.MetaID != f {
			t.Fatalf("%s: event %d: Python read meta.id %q, want %q", what, i, g.MetaID, f)
		}
	}
}

func evLineBreak(b []byte) bool {
	for _, c := range b {
		if c == '\n' || c == '\r' {
			return true
		}
	}
	return false
}

func evMetaID(raw []byte) string {
	var f evFields
	_ = json.Unmarshal(raw, &f)
	return f.Meta.ID
}
