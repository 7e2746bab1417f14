package recording

import "testing"

func TestEventsMatchTheRecording(t *testing.T) {
	evs := Events()
	if len(evs) != 2723 {
		t.Fatalf("got %d events, want 2723 (SOURCES.md)", len(evs))
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Offset < evs[i-1].Offset {
			t.Fatalf("offset goes back at line %d: %v < %v", evs[i].Line, evs[i].Offset, evs[i-1].Offset)
		}
	}
	last := evs[len(evs)-1].Offset - evs[247].Offset
	if last < 40e9 || last > 50e9 {
		t.Errorf("block D spans %v, want about 46 s", last)
	}
}
