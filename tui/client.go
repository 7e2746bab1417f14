package tui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wikiflow/wikiflow/api/apitypes"
	"github.com/wikiflow/wikiflow/internal/sse"
)

// maxBody bounds how much of one API response is read.
const maxBody = 32 << 20

// doer sends HTTP requests; *http.Client implements it.
type doer interface {
	Do(req *http.Request) (*http.Response, error)
}

// The bodies the API answers with, declared once in api/apitypes.
type (
	apiTime            = apitypes.Time
	statsResponse      = apitypes.Stats
	timeseriesResponse = apitypes.Timeseries
	topPagesResponse   = apitypes.TopPages
	topEditorsResponse = apitypes.TopEditors
	pageItem           = apitypes.PageItem
	editorItem         = apitypes.EditorItem
)

// apiError is a non-2xx answer of the API, decoded from its stable error shape
// when the body has it.
type apiError struct {
	Status    int
	Code      string
	Parameter string
	Message   string
}

func (e *apiError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Code != "" {
		return fmt.Sprintf("%d %s: %s", e.Status, e.Code, msg)
	}
	return fmt.Sprintf("%d: %s", e.Status, msg)
}

// errStreamUnsupported is returned by stream when the API has no usable
// /stats/stream route.
var errStreamUnsupported = errors.New("the API offers no /stats/stream")

// client reads the wikiflow HTTP API.
type client struct {
	base *url.URL
	http doer
}

// newClient returns a client for the API at base.
func newClient(base string, hc doer) (*client, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil {
		return nil, fmt.Errorf("parse API URL: %w", err)
	}
	return &client{base: u, http: hc}, nil
}

// endpoint is the URL of path with query q.
func (c *client) endpoint(path string, q url.Values) string {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = q.Encode()
	return u.String()
}

// get fetches path?q and decodes its JSON body into out.
func (c *client) get(ctx context.Context, path string, q url.Values, out any) error {
	target := c.endpoint(path, q)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("GET %s: read body: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %w", path, decodeError(resp.StatusCode, body))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: decode: %w", path, err)
	}
	return nil
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the method and
// the whole URL, keeping the cause (connection refused, timeout…).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// decodeError builds the error for a non-2xx answer.
func decodeError(status int, body []byte) error {
	var shape struct {
		Error *struct {
			Status    int    `json:"status"`
			Code      string `json:"code"`
			Parameter string `json:"parameter"`
			Message   string `json:"message"`
		} `json:"error"`
	}
	e := &apiError{Status: status}
	if json.Unmarshal(body, &shape) == nil && shape.Error != nil {
		e.Code, e.Parameter, e.Message = shape.Error.Code, shape.Error.Parameter, shape.Error.Message
	} else if text := strings.TrimSpace(string(body)); text != "" && len(text) < 200 && !bytes.ContainsAny(body, "<{") {
		e.Message = text
	}
	return e
}

// getJSON fetches path?q and decodes its JSON body as a T.
func getJSON[T any](ctx context.Context, c *client, path string, q url.Values) (T, error) {
	var r T
	err := c.get(ctx, path, q, &r)
	return r, err
}

// stats fetches GET /stats.
func (c *client) stats(ctx context.Context, q url.Values) (statsResponse, error) {
	return getJSON[statsResponse](ctx, c, "/stats", q)
}

// timeseries fetches GET /stats/timeseries.
func (c *client) timeseries(ctx context.Context, q url.Values) (timeseriesResponse, error) {
	return getJSON[timeseriesResponse](ctx, c, "/stats/timeseries", q)
}

// topPages fetches GET /stats/top/pages.
func (c *client) topPages(ctx context.Context, q url.Values) (topPagesResponse, error) {
	return getJSON[topPagesResponse](ctx, c, "/stats/top/pages", q)
}

// topEditors fetches GET /stats/top/editors.
func (c *client) topEditors(ctx context.Context, q url.Values) (topEditorsResponse, error) {
	return getJSON[topEditorsResponse](ctx, c, "/stats/top/editors", q)
}

// stream follows GET /stats/stream?q and calls onOpen once connected, then fn for
// every stats event, until ctx ends (nil), the stream breaks (an error) or stays
// silent longer than idle. It returns errStreamUnsupported when the API answers
// the route with 404, 405 or 501 or with something other than an event stream.
func (c *client) stream(parent context.Context, q url.Values, idle time.Duration, onOpen func(), fn func(statsResponse)) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint("/stats/stream", q), nil)
	if err != nil {
		return fmt.Errorf("GET /stats/stream: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		if parent.Err() != nil {
			return nil
		}
		return fmt.Errorf("GET /stats/stream: %w", unwrapURLError(err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return errStreamUnsupported
	}
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("GET /stats/stream: %w", decodeError(resp.StatusCode, body))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return errStreamUnsupported
	}
	onOpen()

	// A watchdog cancels the request when nothing (not even a keep-alive
	// comment) arrives for idle.
	activity := make(chan struct{}, 1)
	go func() {
		t := time.NewTimer(idle)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-activity:
				t.Reset(idle)
			case <-t.C:
				cancel()
				return
			}
		}
	}()
	body := &touchReader{r: resp.Body, touch: activity}
	rd := sse.NewReader(body, 0)
	for {
		ev, err := rd.Next()
		if err != nil {
			if parent.Err() != nil {
				return nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("GET /stats/stream: silent for %s", idle)
			}
			if errors.Is(err, io.EOF) {
				return errors.New("GET /stats/stream: closed by the server")
			}
			return fmt.Errorf("GET /stats/stream: %w", err)
		}
		if ev.Type != "stats" && ev.Type != "message" {
			continue
		}
		var r statsResponse
		if err := json.Unmarshal(ev.Data, &r); err != nil {
			return fmt.Errorf("GET /stats/stream: decode event: %w", err)
		}
		fn(r)
	}
}

// touchReader signals touch on every successful read.
type touchReader struct {
	r     io.Reader
	touch chan struct{}
}

func (t *touchReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		select {
		case t.touch <- struct{}{}:
		default:
		}
	}
	return n, err
}
