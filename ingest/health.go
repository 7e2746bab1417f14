package ingest

// Degraded reports why ingest runs without making progress, or "" while it does:
// "feed unreachable: …" when the last connection could not reach the feed's host,
// "no progress at position … after N connections: …" when several connections in
// a row brought no new event. internal/obs shows it on /healthz as status
// "degraded"; ConsecutiveFailures counts the same connections for /metrics.
func (s *Stats) Degraded() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.degraded
}

// setDegraded sets the reason Degraded reports and returns the previous one.
func (s *Stats) setDegraded(reason string) (previous string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	previous, s.degraded = s.degraded, reason
	return previous
}
