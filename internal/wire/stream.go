package wire

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// streamNameForbidden are the characters a JetStream stream name cannot hold
// besides whitespace and control characters: subject tokens and wildcards ('.',
// '*', '>') and path separators (the server names the stream's folder after it).
const streamNameForbidden = `.*>/\`

// ValidStreamName reports why name cannot name a JetStream stream, or nil when it
// can. Every stage and tool that takes a stream name checks it with this.
func ValidStreamName(name string) error {
	if name == "" {
		return errors.New("must not be empty")
	}
	if strings.ContainsAny(name, streamNameForbidden) || strings.ContainsFunc(name, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}) {
		return fmt.Errorf("%q must not contain whitespace, control characters, '.', '*', '>', '/' or '\\'", name)
	}
	return nil
}
