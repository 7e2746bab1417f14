// Package projectiontest holds test helpers over a projection: what the API
// reads of it, as one comparable value.
package projectiontest

import (
	"context"
	"fmt"
	"testing"

	"github.com/wikiflow/wikiflow/internal/projection"
)

// View reads through r what the API reads: the legacy counts, the merged meta,
// the counters of several windows and the top lists with their distinct users,
// keyed by what was read. It fails the test when a read fails or a top list is
// empty (a comparison of empty views would prove nothing).
func View(t testing.TB, r *projection.Reader) map[string]any {
	t.Helper()
	ctx := context.Background()
	h, err := r.Head(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{"legacy": h.Legacy, "events": h.Meta.Events, "as_of": h.Meta.AsOf}
	for _, kind := range []projection.Kind{projection.KindCube, projection.KindWho, projection.KindNamespace, projection.KindBytes} {
		for _, minutes := range []int64{0, 10, 60, 24 * 60} {
			hs, err := r.SumHashes(ctx, h, h.Keys.CountKeys(kind, minutes, h.Meta.AsOf))
			if err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprintf("%s/%d", kind, minutes)] = hs
		}
	}
	for _, q := range []projection.TopQuery{
		{Kind: projection.KindPages, Minutes: 60, N: 10, Users: true},
		{Kind: projection.KindEditors, Minutes: 24 * 60, N: 20, Users: true},
		{Kind: projection.KindPages, Minutes: 15, N: 5, Wiki: "enwiki"},
	} {
		top, err := r.Top(ctx, h, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(top.Members) == 0 {
			t.Fatalf("top %+v is empty", q)
		}
		out[fmt.Sprintf("top %+v", q)] = top
	}
	return out
}
