package bench

import "testing"

func TestFreePortStaysInItsRange(t *testing.T) {
	t.Setenv(PortsEnv, "26990-26999")
	seen := map[int]bool{}
	for range 12 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if p < 26990 || p > 26999 {
			t.Fatalf("port %d outside 26990-26999", p)
		}
		seen[p] = true
	}
	if len(seen) < 2 {
		t.Fatalf("the same port every time: %v", seen)
	}
}

func TestPortRangeRejectsNonsense(t *testing.T) {
	for _, s := range []string{"x", "26999-25000", "0-10", "1-70000", "25000"} {
		if _, _, err := portRange(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
