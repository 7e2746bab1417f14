// Package obs is wikiflow's observability plumbing shared by every stage process:
// the slog logger, and a small HTTP server per stage with /healthz (ok, or
// degraded with a reason from the stage's Degraded method), /readyz (ready, or
// 503 with the dependency the stage's Ready method found missing), a Prometheus
// /metrics page built from the stage's Stats struct, and /debug/pprof/.
package obs

import (
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"unicode"
)

// NewLogger returns a slog logger writing to w at level ("debug", "info", "warn",
// "error") in format "text" or "json".
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
}

// WriteMetrics writes every exported atomic.Int64 / atomic.Uint64 field of the
// struct that stats points to as a Prometheus gauge named
// wikiflow_<component>_<field in snake case>. Fields may carry a `help:"..."` tag.
func WriteMetrics(w io.Writer, component string, stats any) {
	v := reflect.ValueOf(stats)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return
	}
	t := v.Type()
	type metric struct {
		name, help string
		val        int64
	}
	var ms []metric
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i).Addr().Interface()
		var val int64
		switch x := fv.(type) {
		case *atomic.Int64:
			val = x.Load()
		case *atomic.Uint64:
			val = int64(x.Load())
		default:
			continue
		}
		help := f.Tag.Get("help")
		if help == "" {
			help = f.Name
		}
		ms = append(ms, metric{name: "wikiflow_" + component + "_" + snake(f.Name), help: help, val: val})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].name < ms[j].name })
	for _, m := range ms {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", m.name, m.help, m.name, m.name, m.val)
	}
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
