package gateway

// HTTP plumbing: the mux, the middleware chain (access log, panic
// recovery, Host and Origin checks, body cap) and the response writer that
// adds keep-alive comments to idle event streams.
//
// The chain, outermost first:
//
//	logAccess -> recoverPanics -> checkHostAndOrigin -> capBody -> mux
//
// Every ResponseWriter wrapper implements Flush and Unwrap, or streaming
// would silently stop.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/mcpgw/gateway/upstream"

	"github.com/mcpgw/gateway/auth"
)

// Paths of the front door.
const (
	PathMCP     = "/mcp"
	PathSSE     = "/sse"
	PathMessage = "/message"
	PathHealth  = "/healthz"
	PathReady   = "/readyz"

	PathResourceMetadata = "/.well-known/oauth-protected-resource"
)

// Handler returns the gateway's HTTP handler: /mcp, /sse, /message, the
// health endpoints and, with metrics.public, /metrics.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	// Every MCP endpoint needs a caller the auth config accepts.
	authenticated := g.metrics.authCounted(g.auth)
	mux.Handle(PathMCP, authenticated(http.HandlerFunc(g.serveMCP)))
	mux.Handle(PathSSE, authenticated(http.HandlerFunc(g.serveSSE)))
	mux.Handle(PathMessage, authenticated(http.HandlerFunc(g.serveMessage)))
	if g.auth.Mode() != auth.ModeNone {
		// Protected resource metadata (RFC 9728), at the root and at the
		// path-inserted form for /mcp. Public: it tells clients where to
		// get a token.
		mux.Handle(PathResourceMetadata, g.auth.MetadataHandler())
		mux.Handle(PathResourceMetadata+PathMCP, g.auth.MetadataHandler())
	}
	mux.HandleFunc(PathHealth, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc(PathReady, g.serveReady)
	if g.cfg.Metrics.Public {
		// Unauthenticated, like the health endpoints; otherwise metrics
		// are served on metrics.listen only (MetricsHandler).
		mux.Handle(PathMetrics, g.MetricsHandler())
	}
	return g.logAccess(g.recoverPanics(g.checkHostAndOrigin(g.capBody(mux))))
}

// serveReady reports readiness and each upstream's state. Upstreams that are
// down do not make the gateway unready: it serves the rest.
func (g *Gateway) serveReady(w http.ResponseWriter, r *http.Request) {
	type upstreamJSON struct {
		State     string    `json:"state"`
		Required  bool      `json:"required,omitempty"`
		Since     time.Time `json:"since"`
		Restarts  int       `json:"restarts"`
		LastError string    `json:"lastError,omitempty"`
	}
	ups := map[string]upstreamJSON{}
	var missing []string // required upstreams that are not up
	for _, m := range g.mountList() {
		st := m.up.Status()
		j := upstreamJSON{State: healthState(st), Required: m.cfg.Required, Since: st.Since, Restarts: st.Restarts}
		if st.LastError != nil {
			j.LastError = "unavailable" // detail stays in the log
		}
		ups[m.name] = j
		if m.cfg.Required && st.State != upstream.StateUp {
			missing = append(missing, m.name)
		}
	}
	tools, prompts, resources, templates := g.catalog.counts()
	status, store, code := "ready", "ok", http.StatusOK
	if len(missing) > 0 {
		status, code = "required upstreams down: "+strings.Join(missing, ", "), http.StatusServiceUnavailable
	}
	if p, ok := g.store.(interface{ Ping(context.Context) error }); ok {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		if err := p.Ping(ctx); err != nil {
			status, store, code = "unready", "unavailable", http.StatusServiceUnavailable
			g.log.LogAttrs(ctx, slog.LevelWarn, "session store unreachable", slog.Any("err", err))
		}
		cancel()
	}
	if g.draining.Load() {
		status, code = "shutting down", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{
		"status":       status,
		"sessionStore": store,
		"upstreams":    ups,
		"catalog":      map[string]int{"tools": tools, "prompts": prompts, "resources": resources, "resourceTemplates": templates},
	})
}

// crashLoopRestarts is how many restarts make an upstream that is not up
// crash-looping rather than merely down.
const crashLoopRestarts = 3

// healthState names an upstream's state for operators: up, connecting,
// restarting (reconnecting after having been up), down (waiting to retry),
// crash-looping (down again after crashLoopRestarts restarts), or closed.
func healthState(st upstream.Status) string {
	switch {
	case st.State == upstream.StateUp || st.State == upstream.StateClosed:
		return string(st.State)
	case st.Restarts >= crashLoopRestarts:
		return "crash-looping"
	case st.State == upstream.StateConnecting && st.Restarts > 0:
		return "restarting"
	default:
		return string(st.State)
	}
}

func (g *Gateway) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				g.log.LogAttrs(r.Context(), slog.LevelError, "handler panicked",
					slog.String("path", r.URL.Path), slog.Any("panic", v))
				writeRPCError(w, http.StatusInternalServerError, jsonrpc.CodeInternalError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// checkHostAndOrigin refuses DNS-rebinding and cross-origin requests with
// 403. On a loopback listener the Host must be loopback too, and loopback
// origins are allowed; otherwise an Origin must be listed in
// allowed_origins (or be public_url's). Requests without Origin (non-browser
// clients) pass.
func (g *Gateway) checkHostAndOrigin(next http.Handler) http.Handler {
	loopback := listenerIsLoopback(g.cfg.Listen)
	allowed := map[string]bool{}
	for _, o := range g.cfg.AllowedOrigins {
		allowed[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
	}
	if g.baseURL != nil {
		allowed[strings.ToLower(g.baseURL.Scheme+"://"+g.baseURL.Host)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if loopback && !hostIsLoopback(r.Host) {
			writeRPCError(w, http.StatusForbidden, jsonrpc.CodeInvalidRequest, fmt.Sprintf("host %q is not allowed on a loopback listener", r.Host))
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" && !allowed[strings.ToLower(origin)] {
			u, err := url.Parse(origin)
			if err != nil || !loopback || !hostIsLoopback(u.Host) {
				writeRPCError(w, http.StatusForbidden, jsonrpc.CodeInvalidRequest, "origin not allowed")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// capBody limits request bodies to max_body_bytes; reading past it fails
// with *http.MaxBytesError, which handlers turn into 413.
func (g *Gateway) capBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// writeRPCError writes a JSON-RPC error response without id.
func writeRPCError(w http.ResponseWriter, status int, code int64, msg string) {
	body, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"id":      nil,
		"error":   map[string]any{"code": code, "message": msg},
	})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// mediaType returns the base media type of a Content-Type value.
func mediaType(v string) string {
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return ""
	}
	return mt
}

// accepts reports whether an Accept header admits JSON and event streams.
func accepts(values []string) (json, stream bool) {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			base, _, _ := strings.Cut(part, ";")
			switch strings.ToLower(strings.TrimSpace(base)) {
			case "application/json", "application/*":
				json = true
			case "text/event-stream", "text/*":
				stream = true
			case "*/*":
				json, stream = true, true
			}
		}
	}
	return json, stream
}

// streamWriter serializes writes to a response so that keep-alive comments
// can be interleaved with the SDK's events. The SDK writes each event with a
// single Write, so a comment never lands inside an event. Comments are sent
// only once the response has committed to text/event-stream, and never after
// the handler returned.
//
// The SDK answers a POST of calls on a session with an event stream whose
// headers it writes with the first event, which may come minutes later; a
// proxy may give up on a response that long silent. With commitIdle, a
// response still unwritten at the first keep-alive is committed to
// text/event-stream then: every other answer the SDK gives such a POST (an
// error status, 202) is written at once. The handler gets a header map of
// its own, copied out when it writes, so that committing from the timer
// never touches a map the handler writes to.
type streamWriter struct {
	http.ResponseWriter
	interval   time.Duration
	commitIdle bool
	header     http.Header // the handler's

	mu          sync.Mutex // guards the fields below and writes
	wroteHeader bool
	stream      bool
	done        bool
	timer       *time.Timer
}

// withKeepAlive wraps w for the duration of a handler; call the returned
// stop function before the handler returns. commitIdle: see streamWriter.
func withKeepAlive(w http.ResponseWriter, interval time.Duration, commitIdle bool) (*streamWriter, func()) {
	sw := &streamWriter{ResponseWriter: w, interval: interval, commitIdle: commitIdle, header: w.Header().Clone()}
	if interval > 0 {
		sw.mu.Lock() // tick may run before the timer is stored
		sw.timer = time.AfterFunc(interval, sw.tick)
		sw.mu.Unlock()
	}
	return sw, func() {
		sw.mu.Lock()
		sw.done = true
		if sw.timer != nil {
			sw.timer.Stop()
		}
		sw.mu.Unlock()
	}
}

func (sw *streamWriter) tick() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.done {
		return
	}
	if !sw.wroteHeader && sw.commitIdle {
		h := sw.ResponseWriter.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache, no-transform")
		sw.ResponseWriter.WriteHeader(http.StatusOK)
		sw.wroteHeader, sw.stream = true, true
	}
	if sw.stream {
		if _, err := sw.ResponseWriter.Write([]byte(": keep-alive\n\n")); err != nil {
			return
		}
		http.NewResponseController(sw.ResponseWriter).Flush()
	}
	sw.timer.Reset(sw.interval)
}

func (sw *streamWriter) writeHeaderLocked(code int) {
	if sw.wroteHeader {
		return
	}
	sw.wroteHeader = true
	h := sw.ResponseWriter.Header()
	for k, v := range sw.header {
		h[k] = v
	}
	for k := range h {
		if _, ok := sw.header[k]; !ok {
			delete(h, k)
		}
	}
	sw.stream = code == http.StatusOK && mediaType(sw.header.Get("Content-Type")) == "text/event-stream"
	sw.ResponseWriter.WriteHeader(code)
}

// Header returns the handler's header map.
func (sw *streamWriter) Header() http.Header { return sw.header }

func (sw *streamWriter) WriteHeader(code int) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.writeHeaderLocked(code)
}

func (sw *streamWriter) Write(b []byte) (int, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.writeHeaderLocked(http.StatusOK)
	return sw.ResponseWriter.Write(b)
}

func (sw *streamWriter) Flush() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.writeHeaderLocked(http.StatusOK)
	http.NewResponseController(sw.ResponseWriter).Flush()
}

func (sw *streamWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }
