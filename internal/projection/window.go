package projection

import "time"

// floorDiv is a / b rounded towards negative infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// MinuteKeys are the keys of kind for the n minutes ending with Unix minute last,
// oldest first.
func (k Keys) MinuteKeys(kind Kind, last, n int64) []string {
	out := make([]string, 0, max(n, 0))
	for m := last - n + 1; m <= last; m++ {
		out = append(out, k.MinuteN(kind, m))
	}
	return out
}

// CountKeys are the keys whose sum is the count of kind over the window of the
// given minutes ending at asOf: the all-time bucket for minutes 0, else the
// window's minute buckets (none when asOf is zero). A window of two hours or more
// uses the hour buckets that lie wholly inside it and minute buckets for the
// partial hours at its edges (each hour bucket holds exactly the sum of its
// minutes).
func (k Keys) CountKeys(kind Kind, minutes int64, asOf time.Time) []string {
	if minutes == 0 {
		return []string{k.All(kind)}
	}
	if asOf.IsZero() {
		return nil
	}
	last := floorDiv(asOf.UnixMilli(), 60_000)
	first := last - minutes + 1
	if minutes < 120 {
		return k.MinuteKeys(kind, last, minutes)
	}
	firstHour := -floorDiv(-first, 60)   // first hour starting at or after first
	lastHour := floorDiv(last+1, 60) - 1 // last hour ending at or before last
	var out []string
	for mm := first; mm < firstHour*60; mm++ {
		out = append(out, k.MinuteN(kind, mm))
	}
	for h := firstHour; h <= lastHour; h++ {
		out = append(out, k.HourN(kind, h))
	}
	for mm := (lastHour + 1) * 60; mm <= last; mm++ {
		out = append(out, k.MinuteN(kind, mm))
	}
	return out
}

// SetKeys are the keys of the sorted sets or sketches (KindPages, KindEditors,
// KindUsers) of the window of the given minutes ending at asOf, and the start of
// the span they cover (none when asOf is zero). Their minute buckets are kept
// only MinutePagesTTL, so a window longer than an hour uses whole hour buckets:
// the last minutes/60 hours of buckets up to asOf's hour.
func (k Keys) SetKeys(kind Kind, minutes int64, asOf time.Time) ([]string, time.Time) {
	if asOf.IsZero() {
		return nil, time.Time{}
	}
	last := floorDiv(asOf.UnixMilli(), 60_000)
	if minutes <= 60 {
		return k.MinuteKeys(kind, last, minutes), time.Unix((last-minutes+1)*60, 0).UTC()
	}
	lastHour := floorDiv(last, 60)
	hours := minutes / 60
	out := make([]string, 0, hours)
	for h := lastHour - hours + 1; h <= lastHour; h++ {
		out = append(out, k.HourN(kind, h))
	}
	return out, time.Unix((lastHour-hours+1)*3600, 0).UTC()
}
