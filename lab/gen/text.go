package gen

import (
	"math/rand/v2"
	"strconv"
	"strings"
)

// words make up titles, comments and user names. A few are not ASCII so that
// generated events exercise UTF-8 and percent-encoding like real ones do.
var words = []string{
	"History", "River", "Station", "Church", "School", "Album", "Football", "Club",
	"Season", "Election", "County", "Village", "Railway", "Museum", "Island", "Bridge",
	"Castle", "Lake", "Mountain", "Park", "Street", "Battle", "Festival", "Library",
	"Airport", "University", "Company", "Bank", "Theatre", "Hospital", "Tower", "Road",
	"North", "South", "East", "West", "Old", "New", "Saint", "Royal", "National",
	"Grand", "Little", "Upper", "Lower", "Central", "Great", "First", "Second", "Third",
	"list", "of", "and", "the", "in", "at", "for", "with", "from", "to", "on", "by",
	"species", "family", "team", "river", "film", "song", "novel", "poem", "language",
	"Smith", "Müller", "García", "Nakamura", "Kowalski", "Rossi", "Dubois", "Silva",
	"Война", "Москва", "東京", "北京", "Αθήνα", "São", "Ærø", "İstanbul", "مدينة",
	"1998", "2004", "2012", "2019", "2025", "I", "II", "III", "(film)", "(album)",
}

// commentWords are what edit summaries are made of.
var commentWords = []string{
	"fix", "typo", "added", "removed", "updated", "source", "citation", "reference",
	"link", "links", "category", "image", "infobox", "template", "section", "copyedit",
	"cleanup", "revert", "vandalism", "per", "talk", "page", "date", "format", "wording",
	"data", "statements", "label", "description", "claim", "structured", "file",
	"license", "author", "translation", "minor", "changes", "expand", "article", "stub",
	"redirect", "merge", "see", "also", "external", "grammar", "spelling", "the", "a",
	"of", "to", "and", "in", "for", "with", "new", "old", "Quelle", "ergänzt", "修正",
}

// namespacePrefix returns the canonical English title prefix of a namespace.
func namespacePrefix(ns int) string {
	switch ns {
	case 1:
		return "Talk:"
	case 2:
		return "User:"
	case 3:
		return "User talk:"
	case 4:
		return "Project:"
	case 5:
		return "Project talk:"
	case 6:
		return "File:"
	case 7:
		return "File talk:"
	case 8:
		return "MediaWiki:"
	case 10:
		return "Template:"
	case 11:
		return "Template talk:"
	case 12:
		return "Help:"
	case 14:
		return "Category:"
	case 15:
		return "Category talk:"
	case 100:
		return "Portal:"
	case 104:
		return "Page:"
	case 106:
		return "Index:"
	case 118:
		return "Draft:"
	case 120:
		return "Property:"
	case 146:
		return "Lexeme:"
	case 828:
		return "Module:"
	case 2600:
		return "Topic:"
	case -1:
		return "Special:"
	default:
		return ""
	}
}

// appendWords appends words from list, separated by spaces, until b has grown by
// at least n bytes (at least one word).
func appendWords(b []byte, r *rand.Rand, list []string, n int) []byte {
	start := len(b)
	for {
		b = append(b, list[r.IntN(len(list))]...)
		if len(b)-start >= n {
			return b
		}
		b = append(b, ' ')
	}
}

// sample returns a random element of an empirical distribution, or def when empty.
func sample(r *rand.Rand, xs []int, def int) int {
	if len(xs) == 0 {
		return def
	}
	return xs[r.IntN(len(xs))]
}

const hexDigits = "0123456789abcdef"

// jsonSafe marks the bytes a JSON string may hold unescaped; urlSafe the bytes
// MediaWiki leaves unencoded in title URLs.
var jsonSafe, urlSafe [256]bool

func init() {
	for c := 0x20; c < 256; c++ {
		jsonSafe[c] = c != '"' && c != '\\'
	}
	for c := 0; c < 128; c++ {
		urlSafe[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("-_.:/()!*,~;@$", byte(c)) >= 0
	}
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString[S ~string | ~[]byte](b []byte, s S) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if jsonSafe[c] {
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
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendTitleURL appends a title as MediaWiki puts it in URLs: spaces become
// underscores, and bytes outside the characters MediaWiki leaves alone are
// percent-encoded.
func appendTitleURL[S ~string | ~[]byte](b []byte, s S) []byte {
	const upper = "0123456789ABCDEF"
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if urlSafe[c] {
			continue
		}
		b = append(b, s[start:i]...)
		if c == ' ' {
			b = append(b, '_')
		} else {
			b = append(b, '%', upper[c>>4], upper[c&0xf])
		}
		start = i + 1
	}
	return append(b, s[start:]...)
}

// appendUUID4 appends a random (version 4) UUID in its canonical form.
func appendUUID4(b []byte, r *rand.Rand) []byte {
	var u [16]byte
	hi, lo := r.Uint64(), r.Uint64()
	for i := 0; i < 8; i++ {
		u[i] = byte(hi >> (56 - 8*i))
		u[8+i] = byte(lo >> (56 - 8*i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return b
}

// appendUserName appends the name of user number k of a deterministic pool; bots'
// names end in "Bot" or "bot" like most real ones.
func appendUserName(b []byte, k uint64, bot bool) []byte {
	h := mix64(k ^ 0x5bd1e995)
	w1 := words[h%uint64(len(words))]
	w2 := words[(h>>16)%uint64(len(words))]
	switch {
	case bot && h>>40&1 == 0:
		return append(append(b, w1...), "Bot"...)
	case bot:
		return append(append(append(b, w1...), ' '), "bot"...)
	}
	switch h >> 40 % 4 {
	case 0:
		return append(append(append(b, w1...), ' '), w2...)
	case 1:
		return strconv.AppendUint(append(b, w1...), h>>48%1000, 10)
	case 2:
		return append(append(b, w1...), w2...)
	default:
		return append(b, w1...)
	}
}

// appendIP appends a random IPv4 or (as MediaWiki shows them, upper-case) IPv6 address.
func appendIP(b []byte, r *rand.Rand) []byte {
	if r.IntN(10) < 6 {
		b = strconv.AppendInt(b, int64(1+r.IntN(223)), 10)
		for range 3 {
			b = strconv.AppendInt(append(b, '.'), int64(r.IntN(256)), 10)
		}
		return b
	}
	b = append(b, "2A02"...)
	const upper = "0123456789ABCDEF"
	for range 7 {
		b = append(b, ':')
		v := r.Uint32() & 0xffff
		started := false
		for shift := 12; shift >= 0; shift -= 4 {
			d := v >> shift & 0xf
			if d != 0 || started || shift == 0 {
				b = append(b, upper[d])
				started = true
			}
		}
	}
	return b
}

// mix64 is the splitmix64 finaliser: a bijective hash of 64-bit values.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// hashString is FNV-1a, for stable per-wiki bases of ids.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
