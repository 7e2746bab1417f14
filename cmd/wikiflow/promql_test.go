package main

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// promqlWords are the PromQL words that are not metric names where a metric
// name could stand: aggregation operators (followed by "by (…)" or "(…)"),
// binary and set operators, modifiers and literals.
var promqlWords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "count": true, "stddev": true, "stdvar": true,
	"topk": true, "bottomk": true, "quantile": true, "count_values": true, "group": true,
	"limitk": true, "limit_ratio": true,
	"and": true, "or": true, "unless": true, "atan2": true, "bool": true, "offset": true,
	"inf": true, "nan": true,
}

// promqlGrouping are the words whose parenthesised list holds label names.
var promqlGrouping = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// promqlMetrics returns the metric names in a PromQL expression, in order:
// identifiers that are not followed by "(" (functions), not keywords, not
// inside {…} (label matchers), […] (ranges), strings or a grouping's label
// list; Grafana variables ($__rate_interval, ${x}) are skipped.
func promqlMetrics(expr string) ([]string, error) {
	var names []string
	s := expr
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(s, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '{' || c == '[':
			end, err := skipGroup(s, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '$':
			i++
			if i < len(s) && s[i] == '{' {
				end, err := skipGroup(s, i)
				if err != nil {
					return nil, err
				}
				i = end
				continue
			}
			for i < len(s) && isIdent(s[i], false) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(s) && (isIdent(s[i], false) || s[i] == '.') {
				i++
			}
		case isIdent(c, true):
			start := i
			for i < len(s) && isIdent(s[i], false) {
				i++
			}
			word := s[start:i]
			next := strings.TrimLeft(s[i:], " \t\n")
			switch {
			case promqlGrouping[strings.ToLower(word)] && strings.HasPrefix(next, "("):
				end, err := skipGroup(s, len(s)-len(next))
				if err != nil {
					return nil, err
				}
				i = end
			case strings.HasPrefix(next, "("), promqlWords[strings.ToLower(word)]:
			default:
				names = append(names, word)
			}
		default:
			i++
		}
	}
	return names, nil
}

// isIdent reports whether c can be in a metric name (first: can begin one).
func isIdent(c byte, first bool) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
}

// skipString returns the index after the string literal that starts at i.
func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at %d in %q", i, s)
}

// skipGroup returns the index after the bracket that closes the one at i,
// skipping the strings inside.
func skipGroup(s string, i int) (int, error) {
	closing := map[byte]byte{'{': '}', '[': ']', '(': ')'}
	want := []byte{closing[s[i]]}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(s, j)
			if err != nil {
				return 0, err
			}
			j = end - 1
		case closing[c] != 0:
			want = append(want, closing[c])
		case c == want[len(want)-1]:
			want = want[:len(want)-1]
			if len(want) == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, fmt.Errorf("unclosed %q at %d in %q", s[i], i, s)
}

func TestPromqlMetrics(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{"up", []string{"up"}},
		{`sum(rate(wikiflow_ingest_events_published_total[$__rate_interval]))`, []string{"wikiflow_ingest_events_published_total"}},
		{`histogram_quantile(0.99, sum by (route, le) (rate(wikiflow_api_request_duration_seconds_bucket{route!~"/x|}"}[5m])))`, []string{"wikiflow_api_request_duration_seconds_bucket"}},
		{`sum without (instance) (a_total) / on(job) group_left(version) b_info`, []string{"a_total", "b_info"}},
		{`time() - max(wikiflow_ingest_last_event_timestamp_seconds > 0) offset 5m`, []string{"wikiflow_ingest_last_event_timestamp_seconds"}},
		{`x and bool y or unless_z unless w`, []string{"x", "y", "unless_z", "w"}},
		{`rate(process_cpu_seconds_total[${interval}]) * 1e3 + 0.5 > Inf`, []string{"process_cpu_seconds_total"}},
		{`label_replace(go_goroutines, "dst", "$1", "src", "(.*)")`, []string{"go_goroutines"}},
		{`topk(3, sum by (route) (rate(job:requests:rate5m[1m])))`, []string{"job:requests:rate5m"}},
	}
	for _, tt := range tests {
		got, err := promqlMetrics(tt.expr)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("promqlMetrics(%q) = %v, %v; want %v", tt.expr, got, err, tt.want)
		}
	}
	for _, bad := range []string{`rate(x{a="b}[1m])`, `sum(x{a="b"`} {
		if _, err := promqlMetrics(bad); err == nil {
			t.Errorf("promqlMetrics(%q) gave no error", bad)
		}
	}
}
