package gateway

// The access log: one line per HTTP request, written when the response is
// done, so a stream (GET /mcp, GET /sse, an SSE answer to a POST) is logged
// when it ends, with its lifetime as duration.
//
// A line holds what an operator needs and nothing a client must keep
// secret: the path without its query string (tokens and the legacy
// sessionId travel there), never a header but the User-Agent, never a
// session id. The MCP method of a POST is taken from the first bytes of
// the body as the handler reads it, so no body is read twice.

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// methodPeekBytes is how much of a POST body is kept to find its method.
// Clients put "method" before "params"; a body whose method lies further
// in is logged without it.
const methodPeekBytes = 512

// logAccess writes one access line per request once it is answered.
func (g *Gateway) logAccess(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &responseRecorder{ResponseWriter: w}
		var peek *bodyPeek
		if r.Method == http.MethodPost && r.Body != nil && (r.URL.Path == PathMCP || r.URL.Path == PathMessage) {
			peek = &bodyPeek{ReadCloser: r.Body, buf: make([]byte, 0, methodPeekBytes)}
			r.Body = peek
		}
		defer func() {
			// Deferred, so that a handler aborted with a panic is logged too.
			attrs := []slog.Attr{
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", rec.Status()),
				slog.Int64("bytes", rec.bytes.Load()),
				slog.Float64("duration_ms", milliseconds(time.Since(start))),
				slog.String("remote", r.RemoteAddr),
				slog.String("user_agent", r.UserAgent()),
			}
			if peek != nil {
				if m := peekMethod(peek.buf); m != "" {
					attrs = append(attrs, slog.String("mcp_method", m))
				}
			}
			g.log.LogAttrs(r.Context(), slog.LevelInfo, "http", attrs...)
		}()
		next.ServeHTTP(rec, r)
	})
}

func milliseconds(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// responseRecorder notes the status and body size of a response. Stream
// writers may outlive a handler's view of them, so the counts are atomic.
type responseRecorder struct {
	http.ResponseWriter
	status atomic.Int32
	bytes  atomic.Int64
}

// Status is the response's status: 200 if the handler wrote a body without
// one, 0 if it wrote nothing.
func (rr *responseRecorder) Status() int { return int(rr.status.Load()) }

func (rr *responseRecorder) WriteHeader(code int) {
	if code >= 200 { // 1xx are interim; the final status comes later
		rr.status.CompareAndSwap(0, int32(code))
	}
	rr.ResponseWriter.WriteHeader(code)
}

func (rr *responseRecorder) Write(b []byte) (int, error) {
	rr.status.CompareAndSwap(0, http.StatusOK)
	n, err := rr.ResponseWriter.Write(b)
	rr.bytes.Add(int64(n))
	return n, err
}

func (rr *responseRecorder) Flush() {
	rr.status.CompareAndSwap(0, http.StatusOK)
	http.NewResponseController(rr.ResponseWriter).Flush()
}

func (rr *responseRecorder) Unwrap() http.ResponseWriter { return rr.ResponseWriter }

// bodyPeek keeps the first bytes of a request body as the handler reads
// them (in its own goroutine: the body is read before ServeHTTP returns).
type bodyPeek struct {
	io.ReadCloser
	buf []byte // at most cap(buf) bytes
}

func (b *bodyPeek) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if room := cap(b.buf) - len(b.buf); room > 0 && n > 0 {
		b.buf = append(b.buf, p[:min(n, room)]...)
	}
	return n, err
}

// peekMethod returns the JSON-RPC method at the start of a body: the
// method of a single message, "batch" for an array, or "" when the prefix
// does not show one (a response, or a method past the prefix). Only
// method-like strings are returned: the log carries nothing arbitrary.
func peekMethod(prefix []byte) string {
	dec := json.NewDecoder(bytes.NewReader(prefix))
	switch tok, err := dec.Token(); {
	case err != nil:
		return ""
	case tok == json.Delim('['):
		return "batch"
	case tok != json.Delim('{'):
		return ""
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return ""
		}
		if key != "method" {
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return ""
			}
			continue
		}
		v, err := dec.Token()
		if s, ok := v.(string); ok && err == nil && isMethodName(s) {
			return s
		}
		return ""
	}
	return ""
}

// isMethodName reports whether s looks like an MCP method name
// ("tools/call", "notifications/initialized").
func isMethodName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '/' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
