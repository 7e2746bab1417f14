package obs

import (
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"unicode"
)

// Metric kinds a Stats field can declare with its `metric:"…"` tag.
const (
	// KindCounter is the default: a value that only grows while the process
	// runs. It is written as <name>_total with TYPE counter.
	KindCounter = "counter"
	// KindGauge is a value that can go down (a lag, a count of open streams, a
	// timestamp). It is written under its own name with TYPE gauge.
	KindGauge = "gauge"
	// KindSkip leaves the field out of /metrics.
	KindSkip = "-"
)

// metric is one line of the exposition.
type metric struct {
	name, kind, help string
	val              int64
}

// WriteMetrics writes every exported atomic.Int64 / atomic.Uint64 field of the
// struct that stats points to in the Prometheus text exposition format (0.0.4),
// sorted by name. A field is a counter unless its tag says otherwise:
//
//	Published atomic.Int64                                 // wikiflow_<component>_published_total, TYPE counter
//	KafkaLag  atomic.Int64 `metric:"gauge" help:"records"` // wikiflow_<component>_kafka_lag, TYPE gauge
//	scratch   atomic.Int64 `metric:"-"`                    // not written
//
// The name is wikiflow_<component>_<field in snake case>; the `help:"…"` tag
// (default: the field name) becomes the HELP line.
func WriteMetrics(w io.Writer, component string, stats any) {
	for _, m := range collect(component, stats) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", m.name, escapeHelp(m.help), m.name, m.kind, m.name, m.val)
	}
}

// collect reads the metrics of the struct that stats points to.
func collect(component string, stats any) []metric {
	v := reflect.ValueOf(stats)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct || !v.CanAddr() {
		return nil
	}
	t := v.Type()
	var ms []metric
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		kind := f.Tag.Get("metric")
		if !f.IsExported() || kind == KindSkip {
			continue
		}
		var val int64
		switch x := v.Field(i).Addr().Interface().(type) {
		case *atomic.Int64:
			val = x.Load()
		case *atomic.Uint64:
			val = int64(x.Load())
		default:
			continue
		}
		m := metric{name: "wikiflow_" + component + "_" + snake(f.Name), kind: KindGauge, help: f.Tag.Get("help"), val: val}
		if kind != KindGauge {
			m.kind = KindCounter
			m.name += "_total"
		}
		if m.help == "" {
			m.help = f.Name
		}
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].name < ms[j].name })
	return ms
}

// escapeHelp escapes a HELP text as the exposition format requires.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
