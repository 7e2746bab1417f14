package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/wikiflow/wikiflow/api/apitypes"
	"github.com/wikiflow/wikiflow/internal/projection"
)

// statsValue is the apitypes.Stats a statsResult stands for at now: what the
// hand-written encoder must write, as encoding/json would write it (floats
// rounded to 3 decimals, as the API documents).
func statsValue(r *statsResult, now time.Time) apitypes.Stats {
	round := func(v float64) *float64 {
		v = math.Round(v*1000) / 1000
		return &v
	}
	v := apitypes.Stats{Stats: map[string]int64{}, Total: r.total, Window: r.window, By: r.by,
		AsOf: apitypes.At(r.meta.AsOf), UpdatedAt: apitypes.At(r.meta.Updated), Namespace: r.namespace, Note: r.note}
	for _, g := range r.groups {
		v.Stats[g.key] = g.count
	}
	if !r.meta.Updated.IsZero() {
		v.FreshnessSeconds = round(freshness(now, r.meta.Updated))
	}
	if r.extended {
		v.BotShare, v.EditsPerMinute = round(r.botShare), round(r.epm)
		v.Types = map[string]int64{}
		for _, g := range r.types {
			v.Types[g.key] = g.count
		}
	}
	return v
}

// TestFastEncoderMatchesEncodingJSON: the hand-written /stats encoder writes
// what encoding/json writes for the declared apitypes.Stats: the same bytes when
// no object has two members to order (the encoder orders groups by count,
// encoding/json by key), else the same JSON value; and its output decodes into
// apitypes.Stats (no undeclared field) as the same value.
func TestFastEncoderMatchesEncodingJSON(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 17, 30, 250_000_000, time.UTC)
	full := projection.Meta{AsOf: time.UnixMilli(1764411420123).UTC(), Updated: time.UnixMilli(1764411449001).UTC()}
	cases := map[string]*statsResult{
		"empty":     {window: "all", by: byDomain, namespace: "live"},
		"one group": {groups: []group{{"en.wikipedia.org", 42}}, total: 42, window: "all", by: byDomain, namespace: "live", meta: full},
		"extended, empty maps": {window: "5m", by: byWiki, namespace: "r20261129t101500", meta: full, extended: true,
			note: "the projection has applied no event yet, so no window has an end"},
		"extended, one type": {groups: []group{{"bot", math.MaxInt64}}, total: math.MaxInt64, window: "24h", by: byBot, namespace: "live",
			meta: projection.Meta{AsOf: full.AsOf}, extended: true, botShare: 1.0 / 3, types: []group{{"edit", math.MaxInt64}}, epm: 123456789.123456},
		"escapes and unicode": {groups: []group{
			{"é 日本 🎉", 9}, {`quote " back \ slash`, 8}, {"tab\tnl\ncr\r", 7}, {"\x00\x1f", 6}, {"<a & b>", 5},
			{"bad \xff utf8", 4}, {"line\u2028sep\u2029", 3}, {"", 2}, {"-9", -9}},
			total: 35, window: "1h", by: byDomain, namespace: "nä<me>", meta: full, extended: true, botShare: 0.0004,
			types: []group{{"new", 1 << 53}, {"edit", 1<<53 + 1}, {"log ☃", 0}}, epm: 1e22, note: "a \"note\" & <more>"},
		"rounding": {groups: []group{{"a", 1}, {"b", 2}}, total: 3, window: "15m", by: byType, namespace: "live", meta: full, extended: true,
			botShare: 0.66666, epm: 0.2},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			fast := r.appendJSON(nil, now, true)
			v := statsValue(r, now)
			std, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			sameJSONValue(t, fast, std)
			if len(v.Stats) <= 1 && len(v.Types) <= 1 && (v.EditsPerMinute == nil || *v.EditsPerMinute < 1e21) && !bytes.Equal(fast, std) {
				t.Errorf("bytes differ:\n fast %s\n json %s", fast, std)
			}
			var got apitypes.Stats
			d := json.NewDecoder(bytes.NewReader(fast))
			d.DisallowUnknownFields()
			if err := d.Decode(&got); err != nil {
				t.Fatalf("decode %s: %v", fast, err)
			}
			var want apitypes.Stats
			if err := json.Unmarshal(std, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded\n fast %+v\n json %+v", got, want)
			}
		})
	}
}

// TestErrorEncoderMatchesEncodingJSON: error bodies are byte for byte what
// encoding/json writes for apitypes.Error.
func TestErrorEncoderMatchesEncodingJSON(t *testing.T) {
	for _, e := range []*apiError{
		{Status: 400, Code: "bad_parameter", Parameter: "window", Message: `window "2h" is not one of 1m, 5m, <all> & more`},
		{Status: 503, Code: codeUnavailable, Message: "the projection store (Redis) is unavailable (read pointer and meta)"},
		{Status: 404, Code: "not_found", Message: "no route é\u2028\x01 \xff"},
	} {
		fast := appendError(nil, e)
		std, err := json.Marshal(apitypes.Error{Error: apitypes.ErrorDetail{Status: e.Status, Code: e.Code, Parameter: e.Parameter, Message: e.Message}})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast, std) {
			t.Errorf("bytes differ:\n fast %s\n json %s", fast, std)
		}
	}
}

// sameJSONValue fails unless a and b hold the same JSON value: the same members
// in any order, numbers equal as decimals (so that 1e+22 equals 10000000000000000000000).
func sameJSONValue(t *testing.T, a, b []byte) {
	t.Helper()
	va, vb := decodeNumbers(t, a), decodeNumbers(t, b)
	if diff := jsonDiff("$", va, vb); diff != "" {
		t.Errorf("%s\n fast %s\n json %s", diff, a, b)
	}
}

func decodeNumbers(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	if d.More() {
		t.Fatalf("trailing data after the value: %s", b)
	}
	return v
}

// jsonDiff describes the first difference between two decoded values ("" when none).
func jsonDiff(path string, a, b any) string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: object vs %T", path, b)
		}
		keys := make([]string, 0, len(x)+len(y))
		for k := range x {
			keys = append(keys, k)
		}
		for k := range y {
			if _, ok := x[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			xv, xok := x[k]
			yv, yok := y[k]
			if xok != yok {
				return fmt.Sprintf("%s.%s: present %v vs %v", path, k, xok, yok)
			}
			if d := jsonDiff(path+"."+k, xv, yv); d != "" {
				return d
			}
		}
		return ""
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return fmt.Sprintf("%s: array %v vs %v", path, a, b)
		}
		for i := range x {
			if d := jsonDiff(fmt.Sprintf("%s[%d]", path, i), x[i], y[i]); d != "" {
				return d
			}
		}
		return ""
	case json.Number:
		y, ok := b.(json.Number)
		ra, oka := new(big.Rat).SetString(x.String())
		rb, okb := new(big.Rat).SetString(y.String())
		if !ok || !oka || !okb || ra.Cmp(rb) != 0 {
			return fmt.Sprintf("%s: number %v vs %v", path, a, b)
		}
		return ""
	default:
		if a != b {
			return fmt.Sprintf("%s: %#v vs %#v", path, a, b)
		}
		return ""
	}
}
