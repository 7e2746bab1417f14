package api

import (
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wikiflow/wikiflow/api/apitypes"
)

// The hot responses are encoded by hand with these appenders, without reflection.

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD; '<', '>'
// and '&' are escaped like encoding/json does, so bodies are safe to embed in HTML.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendFloat appends v rounded to 3 decimals (non-finite values become 0).
func appendFloat(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	v = math.Round(v*1000) / 1000
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// appendTimeMs appends the Unix-millisecond time ms as an RFC 3339 UTC string
// (milliseconds shown only when not zero).
func appendTimeMs(b []byte, ms int64) []byte {
	b = append(b, '"')
	b = time.UnixMilli(ms).UTC().AppendFormat(b, apitypes.TimeLayout)
	return append(b, '"')
}

// formatTimeMs is appendTimeMs without the quotes.
func formatTimeMs(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(apitypes.TimeLayout)
}

// etagOf returns a strong entity tag: a hash of the body.
func etagOf(body []byte) string {
	h := fnv.New64a()
	h.Write(body)
	var b [20]byte
	out := append(b[:0], '"')
	out = strconv.AppendUint(out, h.Sum64(), 36)
	out = append(out, '"')
	return string(out)
}

// etagMatches reports whether an If-None-Match header value matches etag
// (weak comparison, as RFC 9110 asks for If-None-Match).
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" {
			return true
		}
		part = strings.TrimPrefix(part, "W/")
		if part == etag {
			return true
		}
	}
	return false
}
