package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// sseClient is one connected reader of the event stream; it counts the message
// frames it reads and, when sampled, the delay of each since its publication.
type sseClient struct {
	events atomic.Int64
	failed atomic.Pointer[error]
	cancel context.CancelFunc

	sampled bool
	mu      sync.Mutex
	delays  []float64 // ms
}

// published says when the event at a stream sequence was published (zero when
// it was not published by the measurement).
type published func(seq uint64) time.Time

// openClients connects n clients to url, 50 at a time, and returns once each
// has read the stream's opening ":ok"; every tenth client records delays.
func openClients(ctx context.Context, url string, n int, at published) ([]*sseClient, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}
	hc := &http.Client{Transport: tr}
	clients := make([]*sseClient, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 50)
	for i := range clients {
		c := &sseClient{sampled: i%10 == 0}
		clients[i] = c
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- c.connect(ctx, hc, url, at)
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			closeClients(clients)
			return nil, err
		}
	}
	return clients, nil
}

// connect opens the stream, checks its opening and reads on in the background.
func (c *sseClient) connect(ctx context.Context, hc *http.Client, url string, at published) error {
	cctx, cancel := context.WithCancel(ctx)
	c.cancel = cancel
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		return fmt.Errorf("connect: HTTP %d: %s", resp.StatusCode, b)
	}
	rd := bufio.NewReaderSize(resp.Body, 16<<10)
	line, err := rd.ReadSlice('\n')
	if err != nil || string(line) != ":ok\n" {
		resp.Body.Close()
		return fmt.Errorf("opening %q: %v", line, err)
	}
	go func() {
		defer resp.Body.Close()
		c.read(rd, at)
	}()
	return nil
}

var offsetKey = []byte(`"offset":`)

// read counts message frames until the stream ends.
func (c *sseClient) read(rd *bufio.Reader, at published) {
	for {
		line, err := rd.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			for err == bufio.ErrBufferFull { // a long data line: skip the rest
				_, err = rd.ReadSlice('\n')
			}
			continue
		}
		if err != nil {
			c.failed.Store(&err)
			return
		}
		switch {
		case bytes.HasPrefix(line, []byte("event: message")):
			c.events.Add(1)
		case c.sampled && bytes.HasPrefix(line, []byte("id: ")):
			c.delay(line, at)
		}
	}
}

func (c *sseClient) delay(idLine []byte, at published) {
	i := bytes.Index(idLine, offsetKey)
	if i < 0 {
		return
	}
	rest := idLine[i+len(offsetKey):]
	j := bytes.IndexByte(rest, '}')
	if j < 0 {
		return
	}
	seq, err := strconv.ParseUint(string(rest[:j]), 10, 64)
	if err != nil {
		return
	}
	if t := at(seq); !t.IsZero() {
		c.mu.Lock()
		c.delays = append(c.delays, float64(time.Since(t).Microseconds())/1000)
		c.mu.Unlock()
	}
}

func closeClients(clients []*sseClient) {
	for _, c := range clients {
		if c != nil && c.cancel != nil {
			c.cancel()
		}
	}
}
