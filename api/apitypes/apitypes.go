// Package apitypes declares the JSON bodies of the wikiflow HTTP API, once, for
// the server that writes them (package api) and the clients that read them (the
// terminal dashboard, tests). It imports nothing of the server.
package apitypes

import (
	"encoding/json"
	"time"
)

// TimeLayout is how the API writes times: RFC 3339 in UTC, with milliseconds
// only when they are not zero.
const TimeLayout = "2006-01-02T15:04:05.999Z07:00"

// Time is a time in an API body: a TimeLayout string, or null for the zero time.
// It decodes leniently: null and "" are the zero time, and any RFC 3339 time is
// accepted.
type Time struct{ time.Time }

// At returns t as a Time (in UTC; the zero time stays zero).
func At(t time.Time) Time {
	if t.IsZero() {
		return Time{}
	}
	return Time{t.UTC()}
}

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" || string(b) == `""` {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// Stats is the body of GET /stats and the data of each /stats/stream event.
type Stats struct {
	// Stats are the counts of the grouping (by), largest first in the body.
	Stats map[string]int64 `json:"stats"`
	// Total is the count over every group.
	Total int64 `json:"total"`
	// Window and By echo the parameters ("all" and "domain" by default).
	Window string `json:"window"`
	By     string `json:"by"`
	// AsOf is the newest event time counted (null before the first event).
	AsOf Time `json:"as_of"`
	// UpdatedAt is when the projection was last written (null if never), and
	// FreshnessSeconds how long ago that was when the body was made.
	UpdatedAt        Time     `json:"updated_at"`
	FreshnessSeconds *float64 `json:"freshness_seconds"`
	// Namespace is the projection namespace read.
	Namespace string `json:"namespace"`
	// BotShare, Types and EditsPerMinute are there when any parameter is given.
	BotShare       *float64         `json:"bot_share,omitempty"`
	Types          map[string]int64 `json:"types,omitzero"`
	EditsPerMinute *float64         `json:"edits_per_minute,omitempty"`
	// Note explains a figure, when one needs it.
	Note string `json:"note,omitempty"`
}

// Timeseries is the body of GET /stats/timeseries.
type Timeseries struct {
	Window      string `json:"window"`
	StepSeconds int    `json:"step_seconds"`
	// AsOf is the window's end (null before the first event).
	AsOf      Time   `json:"as_of"`
	Namespace string `json:"namespace"`
	// Times are the points' minutes, oldest first; Total their counts.
	Times []Time  `json:"times"`
	Total []int64 `json:"total"`
	// Series are the counts of each group, with by (an empty object when no
	// group has any; absent without by).
	Series map[string][]int64 `json:"series,omitzero"`
	Note   string             `json:"note,omitempty"`
}

// PageItem is one entry of /stats/top/pages.
type PageItem struct {
	Domain string `json:"domain"`
	Title  string `json:"title"`
	Count  int64  `json:"count"`
}

// EditorItem is one entry of /stats/top/editors.
type EditorItem struct {
	Domain string `json:"domain"`
	User   string `json:"user"`
	Count  int64  `json:"count"`
}

// TopPages is the body of GET /stats/top/pages.
type TopPages struct {
	Window string `json:"window"`
	// AsOf is the window's end and From the start of the buckets it covers
	// (both null before the first event).
	AsOf      Time       `json:"as_of"`
	From      Time       `json:"from"`
	Namespace string     `json:"namespace"`
	Items     []PageItem `json:"items"`
	Note      string     `json:"note,omitempty"`
}

// TopEditors is the body of GET /stats/top/editors.
type TopEditors struct {
	Window    string       `json:"window"`
	AsOf      Time         `json:"as_of"`
	From      Time         `json:"from"`
	Namespace string       `json:"namespace"`
	Items     []EditorItem `json:"items"`
	// UniqueEditors estimates the distinct editors of the window.
	UniqueEditors int64  `json:"unique_editors"`
	Note          string `json:"note,omitempty"`
}

// Error is the body of every error answer.
type Error struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong.
type ErrorDetail struct {
	// Status is the HTTP status.
	Status int `json:"status"`
	// Code is a stable machine-readable code.
	Code string `json:"code"`
	// Parameter names the query parameter at fault, if any.
	Parameter string `json:"parameter,omitempty"`
	// Message is for people.
	Message string `json:"message"`
}
