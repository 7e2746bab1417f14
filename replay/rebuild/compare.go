package rebuild

import (
	"context"
	"fmt"
	"sort"

	"github.com/wikiflow/wikiflow/internal/projection"
)

// compared are the all-time counters a rebuild must reproduce exactly.
var compared = []projection.Kind{projection.KindCube, projection.KindNamespace, projection.KindEditor, projection.KindWho, projection.KindMinor, projection.KindBytes}

// compare reads the live counters and watermarks in one transaction and compares
// them with the rebuilt namespace. equal is false when the live watermarks moved
// past the rebuilt ones (compare again after catching up).
func (b *build) compare(ctx context.Context) (diffs []string, equal bool, err error) {
	live, err := b.store.Snapshot(ctx, b.live, compared...)
	if err != nil {
		return nil, false, fmt.Errorf("snapshot live counters: %w", err)
	}
	for _, cr := range b.runs {
		if w, ok := live.Watermarks[cr.name]; !ok || w != cr.applied {
			return nil, false, nil
		}
	}
	mine, err := b.store.Snapshot(ctx, b.res.To, compared...)
	if err != nil {
		return nil, false, fmt.Errorf("read rebuilt counters: %w", err)
	}
	for _, k := range compared {
		diffs = append(diffs, diffMaps(string(k), live.Counters[k], mine.Counters[k])...)
	}
	return diffs, true, nil
}

func diffMaps(kind string, live, rebuilt map[string]string) []string {
	var out []string
	for f, v := range live {
		if rebuilt[f] != v && !(v == "0" && rebuilt[f] == "") {
			out = append(out, fmt.Sprintf("%s %s: live %s, rebuilt %s", kind, f, v, orZero(rebuilt[f])))
		}
	}
	for f, v := range rebuilt {
		if _, ok := live[f]; !ok && v != "0" {
			out = append(out, fmt.Sprintf("%s %s: live 0, rebuilt %s", kind, f, v))
		}
	}
	sort.Strings(out)
	return out
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}
