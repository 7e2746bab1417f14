package bench

import (
	"reflect"
	"testing"
)

func TestFreshness(t *testing.T) {
	const ms = int64(1e6)
	received := []int64{1 * ms, 11 * ms, 21 * ms, 31 * ms, 41 * ms}
	vis := []Visibility{
		{At: 5 * ms, Count: 0},
		{At: 51 * ms, Count: 2},  // events 0 and 1
		{At: 61 * ms, Count: 3},  // event 2
		{At: 101 * ms, Count: 4}, // event 3; event 4 never visible
	}
	got := Freshness(received, vis, 0)
	want := []float64{50, 40, 40, 70}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Freshness = %v, want %v", got, want)
	}
	if got := Freshness(received, vis, 2); !reflect.DeepEqual(got, []float64{40, 70}) {
		t.Errorf("Freshness with warm-up 2 = %v", got)
	}
	// A count jumping past several events makes them all visible at once.
	if got := Freshness(received, []Visibility{{At: 46 * ms, Count: 5}}, 0); !reflect.DeepEqual(got, []float64{45, 35, 25, 15, 5}) {
		t.Errorf("Freshness with one jump = %v", got)
	}
	// An event without a receipt time is left out.
	if got := Freshness([]int64{0, 10 * ms}, []Visibility{{At: 20 * ms, Count: 2}}, 0); !reflect.DeepEqual(got, []float64{10}) {
		t.Errorf("Freshness without receipt = %v", got)
	}
}
