package gateway

// The legacy HTTP+SSE transport of the 2024-11-05 revision: GET /sse opens
// the stream, whose first event names the POST endpoint
// (/message?sessionId=...); responses and server messages travel on the
// stream. A POST to /sse is refused with 405, which is what tells a modern
// client probing the URL to fall back to this transport.

import (
	"crypto/rand"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func (g *Gateway) serveSSE(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeRPCError(w, http.StatusMethodNotAllowed, jsonrpc.CodeInvalidRequest,
			"this is the 2024-11-05 SSE endpoint: open it with GET, or use Streamable HTTP at "+PathMCP)
		return
	}
	id := rand.Text()
	sw, stop := withKeepAlive(w, g.opts.KeepAlive, false)
	defer stop()
	h := sw.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // keep reverse proxies from buffering the stream

	t := &mcp.SSEServerTransport{
		Endpoint:            g.basePath() + PathMessage + "?sessionId=" + id,
		Response:            sw,
		MaxRequestBodyBytes: g.cfg.MaxBodyBytes,
	}
	ls, err := g.sessions.connect(r.Context(), id, t, "sse")
	if err != nil {
		writeRPCError(w, http.StatusServiceUnavailable, jsonrpc.CodeInternalError, "gateway is shutting down")
		return
	}
	defer ls.session.Close()
	// The open stream is activity: the idle timer waits while it lasts.
	ls.begin()
	defer ls.end()
	select {
	case <-r.Context().Done():
	case <-ls.ended:
	}
}

func (g *Gateway) serveMessage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeRPCError(w, http.StatusMethodNotAllowed, jsonrpc.CodeInvalidRequest, "method not allowed")
		return
	}
	if mediaType(r.Header.Get("Content-Type")) != "application/json" {
		writeRPCError(w, http.StatusUnsupportedMediaType, jsonrpc.CodeInvalidRequest, "Content-Type must be application/json")
		return
	}
	id := r.URL.Query().Get("sessionId")
	if id == "" {
		id = r.URL.Query().Get("sessionid")
	}
	if id == "" {
		writeRPCError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "sessionId query parameter is required")
		return
	}
	if _, _, ok := readMessages(w, r); !ok {
		return
	}
	ls := g.sessions.find(w, r, id)
	if ls == nil {
		return
	}
	if ls.sse == nil {
		writeRPCError(w, http.StatusNotFound, jsonrpc.CodeInvalidRequest, "session not found; open a new one with GET "+PathSSE)
		return
	}
	ls.serve(w, r, false)
}

// basePath is the path of public_url, so advertised endpoints work behind a
// reverse proxy that mounts the gateway under a path.
func (g *Gateway) basePath() string {
	if g.baseURL == nil {
		return ""
	}
	return strings.TrimSuffix(g.baseURL.Path, "/")
}
