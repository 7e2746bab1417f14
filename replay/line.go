package replay

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// errNotJSON marks a logged event that no JSON parser outside wikiflow would
// accept even once put on one line; the replay skips it with a warning.
var errNotJSON = errors.New("not a JSON text")

// compactLine appends raw to dst as one compact JSON text without line breaks.
// The log keeps each event's bytes as the feed sent them, and a feed may legally
// split an event's data over several SSE lines, which the reader joins with "\n";
// such an event, and any other with a control character (hasControl), is
// rewritten here: whitespace between tokens is dropped and control characters
// inside strings become escapes. The error wraps errNotJSON when the result is
// still not JSON.
func compactLine(dst, raw []byte) ([]byte, error) {
	inString, escaped := false, false
	for _, c := range raw {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString && c < 0x20:
			dst = appendEscape(dst, c)
			continue
		case inString:
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		}
		dst = append(dst, c)
	}
	var check json.RawMessage
	if err := json.Unmarshal(dst, &check); err != nil {
		return dst, fmt.Errorf("%w: %v", errNotJSON, err)
	}
	return dst, nil
}

// hasControl reports whether raw holds a byte below 0x20 (a line break, a tab or
// another control character), which JSON allows only as whitespace between
// tokens. It tests 32 bytes, then eight, at a time: in x - 0x20 per byte, the high bit of a
// byte is set where that byte was below 0x20 (borrowing), or 0x80 and above,
// which &^x leaves out.
func hasControl(raw []byte) bool {
	const below, high = 0x2020202020202020, 0x8080808080808080
	i := 0
	for ; i+32 <= len(raw); i += 32 {
		a := binary.LittleEndian.Uint64(raw[i:])
		b := binary.LittleEndian.Uint64(raw[i+8:])
		c := binary.LittleEndian.Uint64(raw[i+16:])
		d := binary.LittleEndian.Uint64(raw[i+24:])
		if ((a-below)&^a|(b-below)&^b|(c-below)&^c|(d-below)&^d)&high != 0 {
			return true
		}
	}
	for ; i+8 <= len(raw); i += 8 {
		x := binary.LittleEndian.Uint64(raw[i:])
		if (x-below)&^x&high != 0 {
			return true
		}
	}
	for ; i < len(raw); i++ {
		if raw[i] < 0x20 {
			return true
		}
	}
	return false
}

// appendEscape appends the JSON escape of the control character c.
func appendEscape(dst []byte, c byte) []byte {
	switch c {
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	const hex = "0123456789abcdef"
	return append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
}
