package projection

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/internal/recording"
	"github.com/wikiflow/wikiflow/internal/testenv"
)

// whoFromJSON counts the recording by who made each change (bot, or a human's
// registered, anonymous or temporary account) per bucket key of k, decoding it
// with encoding/json and classifying users with net/netip, apart from the
// pipeline's own decoder: all-time, per event-time minute and per hour.
func whoFromJSON(t *testing.T, k Keys) (map[string]map[string]int64, int) {
	t.Helper()
	out := map[string]map[string]int64{}
	add := func(key, field string) {
		if out[key] == nil {
			out[key] = map[string]int64{}
		}
		out[key][field]++
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(recording.NDJSON()))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var ev struct {
			Meta struct{ Domain, Dt string } `json:"meta"`
			Bot  bool                        `json:"bot"`
			User string                      `json:"user"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("recording line: %v", err)
		}
		if ev.Meta.Domain == "canary" {
			continue
		}
		at, err := time.Parse(time.RFC3339, ev.Meta.Dt)
		if err != nil {
			t.Fatalf("meta.dt %q: %v", ev.Meta.Dt, err)
		}
		who := testenv.Who(ev.Bot, ev.User)
		sec := at.Unix()
		add(k.All(KindWho), who)
		add(k.MinuteN(KindWho, sec/60), who)
		add(k.HourN(KindWho, sec/3600), who)
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out, n
}

// TestWhoCountersMatchTheRecording applies the recording through Delta and Apply
// and compares every who hash (all-time, minute and hour buckets) with the counts
// whoFromJSON computes from the file; each bucket's who fields also add up to its
// cube.
func TestWhoCountersMatchTheRecording(t *testing.T) {
	c, _, s := storeEnv(t)
	evs := recorded(t)
	k := s.Keys(DefaultNamespace)
	want, n := whoFromJSON(t, k)
	if n != len(evs) {
		t.Fatalf("encoding/json read %d events, the pipeline's decoder %d", n, len(evs))
	}
	for _, g := range []string{"bot", "registered", "anonymous", "temporary"} {
		if want[k.All(KindWho)][g] == 0 {
			t.Fatalf("the recording has no %s change: the test would not see that group", g)
		}
	}
	applyAll(t, s, DefaultNamespace, "agg", evs, 250, 0, false)
	ctx := context.Background()
	for key, fields := range want {
		got, err := c.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(fields) {
			t.Errorf("%s: fields %v, want %v", key, got, fields)
		}
		for f, v := range fields {
			if got[f] != strconv.FormatInt(v, 10) {
				t.Errorf("%s %s = %q, want %d", key, f, got[f], v)
			}
		}
		cube, err := c.HGetAll(ctx, strings.TrimSuffix(key, string(KindWho))+string(KindCube)).Result()
		if err != nil {
			t.Fatal(err)
		}
		var whoSum, cubeSum int64
		for _, v := range fields {
			whoSum += v
		}
		for _, v := range cube {
			x, _ := strconv.ParseInt(v, 10, 64)
			cubeSum += x
		}
		if whoSum != cubeSum {
			t.Errorf("%s adds up to %d, its cube to %d", key, whoSum, cubeSum)
		}
	}
	keys, err := c.Keys(ctx, globEscape(k.Prefix())+"*:"+string(KindWho)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(want) {
		t.Errorf("%d who keys in the namespace, want %d", len(keys), len(want))
	}
}
