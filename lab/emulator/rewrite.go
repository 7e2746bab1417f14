package emulator

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"time"
)

// span is a byte range [start, end) of a JSON value inside an event; for strings it
// covers the characters between the quotes. A zero span (end == 0) means absent.
type span struct{ start, end int }

func (s span) ok() bool { return s.end > 0 }

// fields locates the three values the emulator rewrites: meta.id, meta.dt and the
// top-level timestamp. String values containing escapes are reported absent.
type fields struct {
	id, dt, ts span
	// comment is the top-level comment string (escapes allowed: it is only ever
	// replaced whole).
	comment span
}

// locate scans a JSON object and returns where its meta.id, meta.dt and timestamp
// values are. It reports false when data is not a well-formed JSON object.
func locate(data []byte) (fields, bool) {
	var f fields
	sc := scanner{b: data}
	ok := sc.object(func(key []byte) bool {
		switch string(key) {
		case "meta":
			if sc.peek() != '{' {
				return sc.value()
			}
			return sc.object(func(key []byte) bool {
				switch string(key) {
				case "id":
					return sc.plainString(&f.id)
				case "dt":
					return sc.plainString(&f.dt)
				}
				return sc.value()
			})
		case "comment":
			if sc.peek() != '"' {
				return sc.value()
			}
			sp, _, ok := sc.str()
			f.comment = sp
			return ok
		case "timestamp":
			sc.ws()
			start := sc.i
			if !sc.value() {
				return false
			}
			if _, err := strconv.ParseInt(string(data[start:sc.i]), 10, 64); err == nil {
				f.ts = span{start, sc.i}
			}
			return true
		}
		return sc.value()
	})
	if !ok {
		return fields{}, false
	}
	sc.ws()
	return f, sc.i == len(data)
}

// scanner is a minimal JSON tokenizer over a byte slice: just enough to walk objects
// and skip values without decoding them.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str consumes a string and returns the span of its contents and whether it held
// escapes.
func (s *scanner) str() (sp span, escaped, ok bool) {
	if s.peek() != '"' {
		return span{}, false, false
	}
	s.i++
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			sp = span{start, s.i}
			s.i++
			return sp, escaped, true
		case c == '\\':
			escaped = true
			s.i += 2
		case c < 0x20:
			return span{}, false, false
		default:
			s.i++
		}
	}
	return span{}, false, false
}

// plainString consumes a value; when it is a string without escapes its span is
// stored in dst.
func (s *scanner) plainString(dst *span) bool {
	if s.peek() != '"' {
		return s.value()
	}
	sp, escaped, ok := s.str()
	if ok && !escaped {
		*dst = sp
	}
	return ok
}

// object consumes an object, calling member for each key with the scanner placed
// before the value; member must consume the value.
func (s *scanner) object(member func(key []byte) bool) bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		key, _, ok := s.str()
		if !ok || s.peek() != ':' {
			return false
		}
		s.i++
		if !member(s.b[key.start:key.end]) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// value consumes any JSON value.
func (s *scanner) value() bool {
	switch c := s.peek(); {
	case c == '{':
		return s.object(func([]byte) bool { return s.value() })
	case c == '[':
		s.i++
		if s.peek() == ']' {
			s.i++
			return true
		}
		for {
			if !s.value() {
				return false
			}
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return true
			default:
				return false
			}
		}
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		start := s.i
		for s.i < len(s.b) && isNumByte(s.b[s.i]) {
			s.i++
		}
		_, err := strconv.ParseFloat(string(s.b[start:s.i]), 64)
		return err == nil
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
				s.i += len(lit)
				return true
			}
		}
		return false
	}
}

func isNumByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// parseDT parses a meta.dt value (RFC 3339) and returns it with the number of
// fractional-second digits it was written with, so it can be written back alike.
func parseDT(s []byte) (t time.Time, digits int, ok bool) {
	t, err := time.Parse(time.RFC3339Nano, string(s))
	if err != nil {
		return time.Time{}, 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			for j := i + 1; j < len(s) && s[j] >= '0' && s[j] <= '9'; j++ {
				digits++
			}
			break
		}
	}
	return t, digits, true
}

// formatDT writes t in UTC as RFC 3339 with exactly digits fractional digits,
// e.g. "2006-01-02T15:04:05Z" (0) or "2006-01-02T15:04:05.000Z" (3).
func formatDT(t time.Time, digits int) string {
	layout := "2006-01-02T15:04:05"
	if digits > 0 {
		layout += "." + "000000000"[:min(digits, 9)]
	}
	return t.UTC().Format(layout + "Z")
}

// rewrite returns a copy of data with meta.id replaced by id (when id is not empty),
// and meta.dt and timestamp moved by shift (whole seconds). Values that are absent
// or unparsable are left as they are.
func rewrite(data []byte, f fields, id string, shift time.Duration) []byte {
	type edit struct {
		sp  span
		val string
	}
	var edits [3]edit
	n := 0
	if id != "" && f.id.ok() {
		edits[n] = edit{f.id, id}
		n++
	}
	if shift != 0 && f.dt.ok() {
		if t, digits, ok := parseDT(data[f.dt.start:f.dt.end]); ok {
			edits[n] = edit{f.dt, formatDT(t.Add(shift), digits)}
			n++
		}
	}
	if shift != 0 && f.ts.ok() {
		if v, err := strconv.ParseInt(string(data[f.ts.start:f.ts.end]), 10, 64); err == nil {
			edits[n] = edit{f.ts, strconv.FormatInt(v+int64(shift/time.Second), 10)}
			n++
		}
	}
	if n == 0 {
		return data
	}
	es := edits[:n]
	// Sort the (at most three) edits by position.
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].sp.start < es[j-1].sp.start; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
	out := make([]byte, 0, len(data)+32)
	prev := 0
	for _, e := range es {
		out = append(out, data[prev:e.sp.start]...)
		out = append(out, e.val...)
		prev = e.sp.end
	}
	return append(out, data[prev:]...)
}

// uuidFor derives a deterministic RFC 4122 name-based (version 5 layout) UUID from a
// kind label and two numbers, e.g. ("loop", pass, index).
func uuidFor(kind string, a, b int64) string {
	h := sha1.New()
	h.Write([]byte("wikiflow-emulator/" + kind + "/"))
	var nums [16]byte
	binary.BigEndian.PutUint64(nums[:8], uint64(a))
	binary.BigEndian.PutUint64(nums[8:], uint64(b))
	h.Write(nums[:])
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], u[10:16])
	return string(s[:])
}
