package api

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/wikiflow/wikiflow/api/apitypes"
	"github.com/wikiflow/wikiflow/internal/projection"
	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/testenv"
)

// whoEvent is a recorded event as the who test sees it: its fixture time, and who
// made it, read from the raw JSON with encoding/json and net/netip.
type whoEvent struct {
	minute int64
	who    string
}

// whoEvents classifies the recording with encoding/json, apart from the
// pipeline's decoder: bot, or a human's anonymous (no user or an IP address),
// temporary ("~" names) or registered account. Times are the fixture's.
func whoEvents(t *testing.T) []whoEvent {
	t.Helper()
	evs, _ := fixtureTimes(t)
	recs := recording.Events()
	out := make([]whoEvent, len(recs))
	for i, r := range recs {
		var raw struct {
			Bot  bool   `json:"bot"`
			User string `json:"user"`
		}
		if err := json.Unmarshal(r.Data, &raw); err != nil {
			t.Fatalf("line %d: %v", r.Line, err)
		}
		who := testenv.Who(raw.Bot, raw.User)
		out[i] = whoEvent{minute: evs[i].Time.Unix() / 60, who: who}
	}
	return out
}

// TestTimeseriesByWho writes the fixture's events through projection.Delta and
// Store.Apply, as the aggregate does, and checks /stats/timeseries?by=who point by
// point against the counts whoEvents computes, with the bot filter, with top, and
// with the filters it does not apply (noted); each response validates against
// the document.
func TestTimeseriesByWho(t *testing.T) {
	rdb := testenv.Redis(t)
	base := testenv.Prefix(t, rdb)
	evs, asOf := fixtureTimes(t)
	store := projection.NewStore(rdb, base)
	d := projection.NewDelta()
	for i := range evs {
		d.Add(&evs[i])
	}
	if res, err := store.Apply(context.Background(), projection.DefaultNamespace, "agg", 0, uint64(len(evs)), d); err != nil || res.Status != projection.Applied {
		t.Fatalf("apply: %+v %v", res, err)
	}
	want := whoEvents(t)
	asOfMin := asOf.Unix() / 60
	s := newServer(t, base, nil)
	doc := loadDoc(t)
	schema, err := doc.responseSchema("/stats/timeseries", 200, "application/json")
	if err != nil {
		t.Fatal(err)
	}
	humans := func(w string) bool { return w != "bot" }
	cases := []struct {
		query string
		n     int64
		keep  func(who string) bool
		top   int
		note  bool
	}{
		{"window=24h&by=who", 1440, nil, 0, false},
		{"window=1h&by=who", 60, nil, 0, false},
		{"window=1h&by=who&bot=false", 60, humans, 0, false},
		{"window=15m&by=who&bot=true", 15, func(w string) bool { return w == "bot" }, 0, false},
		{"window=24h&by=who&top=2", 1440, nil, 2, false},
		{"window=24h&by=who&wiki=enwiki&type=edit", 1440, nil, 0, true},
	}
	groups := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			r := get(t, s, "/stats/timeseries?"+tc.query)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			var v any
			if err := json.Unmarshal(r.body, &v); err != nil {
				t.Fatal(err)
			}
			for _, e := range doc.validate(schema, v, "$") {
				t.Error(e)
			}
			got := decode[apitypes.Timeseries](t, r)
			if int64(len(got.Times)) != tc.n || got.Series == nil {
				t.Fatalf("%d times, series %v; want %d times and series", len(got.Times), got.Series, tc.n)
			}
			first := asOfMin - tc.n + 1
			total := make([]int64, tc.n)
			series := map[string][]int64{}
			sums := map[string]int64{}
			for _, e := range want {
				i := e.minute - first
				if i < 0 || i >= tc.n || tc.keep != nil && !tc.keep(e.who) {
					continue
				}
				total[i]++
				if series[e.who] == nil {
					series[e.who] = make([]int64, tc.n)
				}
				series[e.who][i]++
				sums[e.who]++
			}
			if fmt.Sprint(got.Total) != fmt.Sprint(total) {
				t.Errorf("total %v, want %v", got.Total, total)
			}
			keep := topOf(sums, tc.top)
			if len(got.Series) != len(keep) {
				t.Errorf("series %v, want the groups %v", seriesNames(got.Series), keep)
			}
			for _, g := range keep {
				groups[g.key] = true
				if row := got.Series[g.key]; fmt.Sprint(row) != fmt.Sprint(series[g.key]) {
					t.Errorf("series %q = %v, want %v", g.key, row, series[g.key])
				}
			}
			if tc.note != (got.Note != "") {
				t.Errorf("note %q (want one: %v)", got.Note, tc.note)
			}
		})
	}
	for _, g := range []string{"bot", "registered", "anonymous", "temporary"} {
		if !groups[g] {
			t.Errorf("no case saw the %s series", g)
		}
	}
	// The who series add up to the cube's series, minute by minute.
	plain := decode[apitypes.Timeseries](t, get(t, s, "/stats/timeseries?window=24h"))
	who := decode[apitypes.Timeseries](t, get(t, s, "/stats/timeseries?window=24h&by=who"))
	if fmt.Sprint(plain.Total) != fmt.Sprint(who.Total) {
		t.Errorf("by=who totals %v differ from the cube's %v", who.Total, plain.Total)
	}
}

// seriesNames lists a series' group names.
func seriesNames(m map[string][]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
