package api

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// Error codes of the error body.
const (
	codeBadParameter     = "bad_parameter"
	codeBadRequest       = "bad_request"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeUnavailable      = "unavailable"
	codeInternal         = "internal"
)

// apiError is an error answered with the stable error body
// {"error":{"status","code","parameter"?,"message"}}.
type apiError struct {
	Status    int
	Code      string
	Parameter string
	Message   string
	cause     error
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.Message + ": " + e.cause.Error()
	}
	return e.Message
}

func (e *apiError) Unwrap() error { return e.cause }

// unavailable wraps a failure to read Redis as a 503.
func unavailable(what string, err error) error {
	msg := "the projection store (Redis) is unavailable"
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "the projection store (Redis) did not answer in time"
	}
	return &apiError{Status: fiber.StatusServiceUnavailable, Code: codeUnavailable, Message: msg + " (" + what + ")", cause: err}
}

// appendError appends the error body of e.
func appendError(b []byte, e *apiError) []byte {
	b = append(b, `{"error":{"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"code":`...)
	b = appendString(b, e.Code)
	if e.Parameter != "" {
		b = append(b, `,"parameter":`...)
		b = appendString(b, e.Parameter)
	}
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	return append(b, "}}"...)
}

// toAPIError classifies any error returned by a handler or by fiber.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case fiber.StatusNotFound:
			return &apiError{Status: fe.Code, Code: codeNotFound, Message: fe.Message}
		case fiber.StatusMethodNotAllowed:
			return &apiError{Status: fe.Code, Code: codeMethodNotAllowed, Message: fe.Message + "; the API answers GET and HEAD only"}
		case fiber.StatusServiceUnavailable, fiber.StatusRequestTimeout, fiber.StatusGatewayTimeout:
			return &apiError{Status: fiber.StatusServiceUnavailable, Code: codeUnavailable, Message: fe.Message}
		}
		if fe.Code >= 400 && fe.Code < 500 {
			return &apiError{Status: fe.Code, Code: codeBadRequest, Message: fe.Message}
		}
		return &apiError{Status: fiber.StatusInternalServerError, Code: codeInternal, Message: "internal error", cause: err}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &apiError{Status: fiber.StatusServiceUnavailable, Code: codeUnavailable, Message: "the request timed out", cause: err}
	}
	return &apiError{Status: fiber.StatusInternalServerError, Code: codeInternal, Message: "internal error", cause: err}
}

// errorHandler is the fiber ErrorHandler: every error becomes the stable JSON body.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	e := toAPIError(err)
	switch {
	case e.Status >= 500 && e.Code == codeInternal:
		s.stats.InternalErrors.Add(1)
		s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
	case e.Code == codeUnavailable:
		s.stats.Unavailable.Add(1)
		s.logLimited("redis unavailable", err)
	}
	if e.Status == fiber.StatusMethodNotAllowed {
		c.Set(fiber.HeaderAllow, "GET, HEAD")
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	c.Status(e.Status)
	return c.Send(appendError(make([]byte, 0, 160), e))
}

// routedMethods are the methods fiber routes (fiber.DefaultMethods); it answers
// any other one with a 400 text/plain before middleware or ErrorHandler run.
var routedMethods = func() map[string]bool {
	m := map[string]bool{}
	for _, v := range fiber.DefaultMethods {
		m[v] = true
	}
	return m
}()

// unknownMethods wraps fiber's request handler: a request whose method fiber
// does not route (QUERY, FOO, a lower-case get …) gets the JSON 405 that every
// method the API does not serve gets, and is counted like other requests.
func (s *Server) unknownMethods(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if routedMethods[string(ctx.Method())] {
			next(ctx)
			return
		}
		start := time.Now()
		e := &apiError{Status: fiber.StatusMethodNotAllowed, Code: codeMethodNotAllowed, Message: "Method Not Allowed; the API answers GET and HEAD only"}
		ctx.Response.Header.Set(fiber.HeaderAllow, "GET, HEAD")
		ctx.Response.Header.Set(fiber.HeaderCacheControl, "no-store")
		ctx.SetContentType(fiber.MIMEApplicationJSONCharsetUTF8)
		ctx.SetStatusCode(e.Status)
		ctx.SetBody(appendError(make([]byte, 0, 128), e))
		s.stats.RequestsServed.Add(1)
		s.metrics.observe(otherRoute, e.Status, time.Since(start))
	}
}
