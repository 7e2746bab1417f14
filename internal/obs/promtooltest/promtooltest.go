// Package promtooltest checks Prometheus text expositions with Prometheus's own
// promtool (`promtool check metrics`: the text parser and the lint rules of the
// Prometheus client libraries), an implementation wikiflow did not write, and
// finds the other external programs tests check wikiflow against.
package promtooltest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wikiflow/wikiflow/internal/testenv"
)

// installHint says how to get promtool.
const installHint = "install it with `sudo apt-get install -y prometheus` (Debian/Ubuntu) or from https://prometheus.io/download/"

// Tool returns the path of the external program name. Without it the test
// skips with hint (how to install it), or fails under CI=true, where every
// independent checker must run.
func Tool(t testing.TB, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testenv.InCI() {
			t.Fatalf("CI=true: %s not found: %s", name, hint)
		}
		t.Skipf("%s not found: %s", name, hint)
	}
	return p
}

// Path returns promtool's path (see Tool).
func Path(t testing.TB) string {
	t.Helper()
	return Tool(t, "promtool", installHint)
}

// Check feeds text to `promtool check metrics` and fails the test unless it
// reports no problem at all (exit status 0, empty output). name says which page
// it was in the failure message.
func Check(t testing.TB, name string, text []byte) {
	t.Helper()
	cmd := exec.Command(Path(t), "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics on %s: %v\n%s\n--- the page:\n%s", name, err, strings.TrimSpace(string(out)), text)
	}
}

// Scrape gets GET /metrics from h, checks the page with promtool (see Check)
// and returns it with the value of each sample, keyed by the sample as the
// page writes it: name or name{label="value",…}.
func Scrape(t testing.TB, name string, h http.Handler) (page []byte, values map[string]float64) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	page, _ = io.ReadAll(rec.Body)
	if rec.Code != http.StatusOK {
		t.Fatalf("%s /metrics: %d %s", name, rec.Code, page)
	}
	Check(t, name, page)
	values = map[string]float64{}
	for _, line := range strings.Split(string(page), "\n") {
		i := strings.LastIndexByte(line, ' ')
		if line == "" || line[0] == '#' || i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%s /metrics: sample %q: %v", name, line, err)
		}
		values[line[:i]] = v
	}
	return page, values
}

// exposedRound makes the values of each Exposed call differ from those of
// the calls before, so that two Stats structs on one page can be checked.
var exposedRound atomic.Int64

// Exposed checks that a stage's metrics show every counter of its Stats: it
// sets each exported atomic.Int64 field of the struct stats points to to a
// distinct value (distinct from earlier calls' too), scrapes h (see Scrape) and fails unless each value is in
// exactly one wikiflow_ sample. per gives, by field, how many of the field's
// units make one of the metric's (1e9 for nanoseconds shown as seconds); the
// fields in skip have no sample of their own (a histogram shows them).
func Exposed(t testing.TB, name string, stats any, h http.Handler, per map[string]float64, skip ...string) {
	t.Helper()
	v := reflect.ValueOf(stats).Elem()
	base := 1000 * exposedRound.Add(1)
	want := map[string]float64{}
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if !f.IsExported() || slices.Contains(skip, f.Name) {
			continue
		}
		a, ok := v.Field(i).Addr().Interface().(*atomic.Int64)
		if !ok {
			continue
		}
		unit := per[f.Name]
		if unit == 0 {
			unit = 1
		}
		want[f.Name] = float64(base + int64(i))
		a.Store(int64(want[f.Name] * unit))
	}
	_, values := Scrape(t, name, h)
	for field, val := range want {
		var shown []string
		for sample, got := range values {
			if strings.HasPrefix(sample, "wikiflow_") && got == val {
				shown = append(shown, sample)
			}
		}
		if len(shown) != 1 {
			t.Errorf("%s: Stats.%s (%v) is shown by %d samples, want 1: %v", name, field, val, len(shown), shown)
		}
	}
}
