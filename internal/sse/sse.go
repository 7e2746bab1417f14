// Package sse reads and writes Server-Sent Events streams as specified by the
// WHATWG HTML standard and as served by Wikimedia EventStreams: LF, CRLF or CR line
// endings, comment lines, multi-line data, a persistent last event id, and lines of
// any length up to a configurable limit (far beyond bufio.Scanner's 64 KiB).
package sse

import (
	"bytes"
	"errors"
	"io"
	"strconv"
)

// DefaultMaxLine is the default limit on one line, and so on one event's data.
const DefaultMaxLine = 8 << 20

// Event is one dispatched SSE event.
type Event struct {
	// Type is the event type ("message" when the frame named none).
	Type string
	// ID is the last event id in force when the event was dispatched: the stream
	// position to send back as Last-Event-ID to resume after this event.
	ID string
	// Data is the event's data, data lines joined by "\n". The slice is owned by the
	// caller after Next returns.
	Data []byte
	// Retry is the reconnection time in milliseconds the frame asked for, or -1.
	Retry int
	// Oversize reports that a line of this frame exceeded the reader's limit; Data
	// then holds only the first bytes of that line.
	Oversize bool
}

// ErrTruncated is returned by Next at the end of input when a frame had started but
// was never terminated by a blank line. Per the standard the frame is not dispatched.
var ErrTruncated = errors.New("sse: stream ended inside a frame")

// Reader parses an SSE stream.
type Reader struct {
	src      io.Reader
	buf      []byte // buffered input; buf[pos:end] is unread
	pos, end int
	srcErr   error
	maxLine  int
	lastID   string
	comments int64
	line     []byte
	// skipLF is set when the previous line ended with '\r': a '\n' that follows
	// belongs to that line ending.
	skipLF bool
}

// NewReader returns a Reader over r that accepts lines up to maxLine bytes
// (DefaultMaxLine when maxLine <= 0).
func NewReader(r io.Reader, maxLine int) *Reader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	return &Reader{src: r, buf: make([]byte, 64<<10), maxLine: maxLine}
}

// SetLastID sets the last event id buffer, e.g. to the id a reconnection resumed from.
func (r *Reader) SetLastID(id string) { r.lastID = id }

// Comments returns how many comment lines (such as ":ok") have been read.
func (r *Reader) Comments() int64 { return r.comments }

// fill reads more input into the buffer; it reports false when none can come.
func (r *Reader) fill() bool {
	if r.srcErr != nil {
		return false
	}
	if r.pos == r.end {
		r.pos, r.end = 0, 0
	}
	if r.end == len(r.buf) {
		copy(r.buf, r.buf[r.pos:r.end])
		r.end -= r.pos
		r.pos = 0
	}
	n, err := r.src.Read(r.buf[r.end:])
	r.end += n
	if err != nil {
		r.srcErr = err
	}
	return n > 0 || err == nil
}

// readLine returns the next line without its terminator. A line longer than maxLine
// is consumed whole but only its first maxLine bytes are returned, with long=true.
func (r *Reader) readLine() (line []byte, long bool, err error) {
	r.line = r.line[:0]
	for {
		if r.pos == r.end && !r.fill() {
			if len(r.line) > 0 || long {
				return r.line, long, io.ErrUnexpectedEOF
			}
			if errors.Is(r.srcErr, io.EOF) {
				return nil, false, io.EOF
			}
			return nil, false, r.srcErr
		}
		chunk := r.buf[r.pos:r.end]
		if r.skipLF {
			r.skipLF = false
			if chunk[0] == '\n' {
				r.pos++
				continue
			}
		}
		i := lineEnd(chunk)
		if i < 0 {
			r.appendLimited(chunk, &long)
			r.pos = r.end
			continue
		}
		r.appendLimited(chunk[:i], &long)
		r.pos += i + 1
		if chunk[i] == '\r' {
			r.skipLF = true
		}
		return r.line, long, nil
	}
}

// lineEnd returns the index of the first CR or LF in b, or -1. Two IndexByte
// scans (vectorised) cost less than one IndexAny over a data line of a kilobyte
// or more: bytes.IndexAny walks a set of bytes one byte at a time.
func lineEnd(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	head := b
	if i >= 0 {
		head = b[:i]
	}
	if j := bytes.IndexByte(head, '\r'); j >= 0 {
		return j
	}
	return i
}

func (r *Reader) appendLimited(b []byte, long *bool) {
	if room := r.maxLine - len(r.line); len(b) > room {
		b = b[:max(room, 0)]
		*long = true
	}
	r.line = append(r.line, b...)
}

// Next returns the next dispatched event. At the end of input it returns io.EOF,
// or ErrTruncated when an unterminated frame was dropped. Other errors come from
// the underlying reader.
func (r *Reader) Next() (Event, error) {
	var (
		ev      = Event{Retry: -1}
		data    []byte
		hasData bool
		started bool
	)
	for {
		line, long, err := r.readLine()
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || (started && errors.Is(err, io.EOF)) {
				return Event{}, ErrTruncated
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if !hasData {
				ev, data, started = Event{Retry: -1}, data[:0], false
				continue
			}
			if ev.Type == "" {
				ev.Type = "message"
			}
			ev.ID = r.lastID
			ev.Data = append([]byte(nil), data...)
			return ev, nil
		}
		started = true
		if line[0] == ':' {
			r.comments++
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "event":
			ev.Type = string(value)
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
			if long {
				ev.Oversize = true
			}
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				r.lastID = string(value)
			}
		case "retry":
			if n, err := strconv.Atoi(string(value)); err == nil && n >= 0 {
				ev.Retry = n
			}
		}
	}
}

// WriteEvent writes ev as one frame in Wikimedia's layout: "event:", "id:" (when
// set), one "data:" line per line of Data, then a blank line.
func WriteEvent(w io.Writer, ev Event) error {
	var b bytes.Buffer
	b.Grow(len(ev.Data) + len(ev.ID) + 32)
	AppendEvent(&b, ev)
	_, err := w.Write(b.Bytes())
	return err
}

// AppendEvent appends ev's frame to b (see WriteEvent).
func AppendEvent(b *bytes.Buffer, ev Event) {
	typ := ev.Type
	if typ == "" {
		typ = "message"
	}
	f := appendHead(b.AvailableBuffer(), typ, ev.ID, "\n")
	if ev.Retry > 0 {
		f = strconv.AppendInt(append(f, "retry: "...), int64(ev.Retry), 10)
		f = append(f, '\n')
	}
	b.Write(appendData(f, ev.Data, "\n"))
}

// AppendFrame appends to b the frame of one event in Wikimedia's layout: "event:
// typ", "id: id" when id is not empty, a "data:" line per line of data (split at
// "\n"), then a blank line; every line ends with nl, "\n" or "\r\n". It
// allocates nothing but what b needs to grow.
func AppendFrame[ID string | []byte](b []byte, typ string, id ID, data []byte, nl string) []byte {
	return appendData(appendHead(b, typ, id, nl), data, nl)
}

// appendHead appends a frame's event line and, when id is not empty, its id line.
func appendHead[ID string | []byte](b []byte, typ string, id ID, nl string) []byte {
	b = append(b, "event: "...)
	b = append(b, typ...)
	b = append(b, nl...)
	if len(id) > 0 {
		b = append(b, "id: "...)
		b = append(b, id...)
		b = append(b, nl...)
	}
	return b
}

// appendData appends a data line per line of data and the blank line that ends
// the frame.
func appendData(b, data []byte, nl string) []byte {
	for {
		line, rest, more := bytes.Cut(data, []byte{'\n'})
		b = append(b, "data: "...)
		b = append(b, line...)
		b = append(b, nl...)
		if !more {
			return append(b, nl...)
		}
		data = rest
	}
}

// WriteComment writes a comment line such as ":ok".
func WriteComment(w io.Writer, text string) error {
	_, err := io.WriteString(w, ":"+text+"\n")
	return err
}
