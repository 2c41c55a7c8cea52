package gateway

// The /mcp endpoint: Streamable HTTP for every revision on one path.
//
// The SDK serves the 2026-07-28 revision only in stateless mode and the
// 2025 revisions only in sessionful mode, so the gateway splits by request:
//
//   - a request with an Mcp-Session-Id header belongs to that session (404 if
//     the session is unknown, and the client re-initializes);
//   - a request without one that is 2026-07-28 (MCP-Protocol-Version header
//     at or past it, the per-request _meta protocol version, or
//     server/discover) goes to the SDK's stateless handler;
//   - an initialize without a session header opens a new session;
//   - anything else lacks its session header: 400.
//
// The gateway owns sessionful sessions itself, one StreamableServerTransport
// each, rather than through the SDK's handler, because the SDK's handler
// keeps sessions in a private map that no store can back. Each session is
// recorded in the sessionstore, touched on use (sliding TTL), closed after
// the TTL without requests, and deleted from the store when it ends.
//
// The body is read and checked here before the SDK sees it, so malformed
// JSON gets a JSON-RPC parse error (-32700), an oversized body 413, and a
// wrong Content-Type or Accept header 415 or 406.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/auth"
	"github.com/mcpgw/gateway/sessionstore"
	"github.com/mcpgw/gateway/upstream"
)

const (
	headerSessionID       = "Mcp-Session-Id"
	headerProtocolVersion = "Mcp-Protocol-Version"
	version20250618       = "2025-06-18"
	version20251125       = "2025-11-25"
	version20260728       = "2026-07-28"
)

func (g *Gateway) serveMCP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		g.postMCP(w, r)
	case http.MethodGet:
		g.getMCP(w, r)
	case http.MethodDelete:
		g.deleteMCP(w, r)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeRPCError(w, http.StatusMethodNotAllowed, jsonrpc.CodeInvalidRequest, "method not allowed")
	}
}

func (g *Gateway) postMCP(w http.ResponseWriter, r *http.Request) {
	if mediaType(r.Header.Get("Content-Type")) != "application/json" {
		writeRPCError(w, http.StatusUnsupportedMediaType, jsonrpc.CodeInvalidRequest, "Content-Type must be application/json")
		return
	}
	if jsonOK, streamOK := accepts(r.Header.Values("Accept")); !jsonOK || !streamOK {
		writeRPCError(w, http.StatusNotAcceptable, jsonrpc.CodeInvalidRequest, "Accept must list application/json and text/event-stream")
		return
	}
	version := r.Header.Get(headerProtocolVersion)
	msgs, isBatch, ok := readMessages(w, r)
	if !ok {
		return
	}
	// A POST is work in flight until its response is written (the MCP
	// handler returns before that); a listen is a stream, not work.
	if !hasMethod(msgs, "subscriptions/listen") {
		g.inflight.begin()
		defer g.inflight.end()
	}
	if isBatch && version >= version20250618 {
		writeRPCError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "JSON-RPC batches are not allowed from 2025-06-18 on")
		return
	}

	sid := r.Header.Get(headerSessionID)
	if sid == "" && isStateless(version, msgs) {
		if !isBatch && (g.forwardHeld(w, r, msgs[0]) || g.fastStatelessCall(w, r, msgs[0], version)) {
			return
		}
		// The SDK's stateless handler answers version problems itself, in
		// the 2026-07-28 form (-32022 with the supported versions).
		sw, stop := withKeepAlive(w, g.opts.KeepAlive, false)
		defer stop()
		g.stateless.ServeHTTP(sw, r)
		return
	}
	if version != "" && !slices.Contains(mcp.SupportedProtocolVersions(), version) {
		writeRPCError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("unsupported MCP-Protocol-Version %q (supported: %v)", version, mcp.SupportedProtocolVersions()))
		return
	}
	if sid != "" {
		ls := g.sessions.find(w, r, sid)
		if ls == nil {
			return
		}
		if !isBatch && g.fastToolCall(w, r, ls, msgs[0]) {
			return
		}
		ls.cancelFast(msgs)
		ls.serve(w, r, hasCall(msgs))
		return
	}
	if !hasMethod(msgs, "initialize") {
		writeRPCError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "Mcp-Session-Id header is required; send initialize first to open a session")
		return
	}
	g.sessions.open(w, r)
}

// readMessages reads and checks a POST body, restoring it for the SDK. It
// writes the error response itself and returns ok=false on failure.
func readMessages(w http.ResponseWriter, r *http.Request) (msgs []wireMessage, isBatch, ok bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeRPCError(w, http.StatusRequestEntityTooLarge, jsonrpc.CodeInvalidRequest, fmt.Sprintf("request body exceeds %d bytes", mbe.Limit))
		} else {
			writeRPCError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "could not read request body")
		}
		return nil, false, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	body = bytes.TrimSpace(body)
	if !json.Valid(body) {
		writeRPCError(w, http.StatusBadRequest, jsonrpc.CodeParseError, "parse error: body is not valid JSON")
		return nil, false, false
	}
	var raws []json.RawMessage
	if len(body) > 0 && body[0] == '[' {
		isBatch = true
		if err := json.Unmarshal(body, &raws); err != nil || len(raws) == 0 {
			writeRPCError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "invalid request: empty batch")
			return nil, false, false
		}
	} else {
		raws = []json.RawMessage{body}
	}
	for _, raw := range raws {
		msg, ok := decodeWire(raw)
		if !ok {
			writeRPCError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "invalid request: not a JSON-RPC 2.0 message")
			return nil, false, false
		}
		msgs = append(msgs, msg)
	}
	return msgs, isBatch, true
}

// wireMessage is what the front door needs of a JSON-RPC message before the
// SDK decodes it in full: whether it is a request, its method and params.
type wireMessage struct {
	request bool
	method  string
	id      json.RawMessage // nil for a notification
	params  json.RawMessage
}

// decodeWire checks a message the way the SDK's decoder will (version
// "2.0"; an id, if any, a string or a number; a method, or else an id, for
// a response) without decoding the params, which the SDK does once.
func decodeWire(raw json.RawMessage) (wireMessage, bool) {
	var m struct {
		Version string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  *string         `json:"method"`
		Params  json.RawMessage `json:"params"`
	}
	if exceedsDepth(raw, maxJSONDepth) || strictUnmarshal(raw, &m) != nil || m.Version != "2.0" {
		return wireMessage{}, false
	}
	id := bytes.TrimSpace(m.ID)
	switch {
	case len(id) == 0 || string(id) == "null":
		id = nil
	case id[0] == '"' || id[0] == '-' || id[0] >= '0' && id[0] <= '9':
	default:
		return wireMessage{}, false
	}
	if m.Method != nil {
		return wireMessage{request: true, method: *m.Method, id: id, params: m.Params}, true
	}
	hasID := id != nil
	return wireMessage{}, hasID
}

// isStateless reports whether a request without session header speaks the
// 2026-07-28 revision.
func isStateless(version string, msgs []wireMessage) bool {
	if version >= version20260728 {
		return true
	}
	for _, msg := range msgs {
		if !msg.request {
			continue
		}
		if msg.method == "server/discover" {
			return true
		}
		var p struct {
			Meta map[string]json.RawMessage `json:"_meta"`
		}
		if len(msg.params) > 0 && strictUnmarshal(msg.params, &p) == nil {
			if _, ok := p.Meta[mcp.MetaKeyProtocolVersion]; ok {
				return true
			}
		}
	}
	return false
}

// hasCall reports whether msgs hold a request that expects a response
// (other than initialize, which the SDK answers at once).
func hasCall(msgs []wireMessage) bool {
	for _, m := range msgs {
		if m.request && m.id != nil && m.method != "initialize" {
			return true
		}
	}
	return false
}

func hasMethod(msgs []wireMessage, method string) bool {
	for _, msg := range msgs {
		if msg.request && msg.method == method {
			return true
		}
	}
	return false
}

func (g *Gateway) getMCP(w http.ResponseWriter, r *http.Request) {
	if _, streamOK := accepts(r.Header.Values("Accept")); !streamOK {
		writeRPCError(w, http.StatusNotAcceptable, jsonrpc.CodeInvalidRequest, "Accept must list text/event-stream")
		return
	}
	sid := r.Header.Get(headerSessionID)
	if sid == "" {
		// Stateless (2026-07-28) clients have no standalone stream.
		w.Header().Set("Allow", "POST, DELETE")
		writeRPCError(w, http.StatusMethodNotAllowed, jsonrpc.CodeInvalidRequest, "GET needs an Mcp-Session-Id header")
		return
	}
	if ls := g.sessions.find(w, r, sid); ls != nil && !ls.resumeFast(w, r) {
		ls.serve(w, r, false)
	}
}

func (g *Gateway) deleteMCP(w http.ResponseWriter, r *http.Request) {
	sid := r.Header.Get(headerSessionID)
	if sid == "" {
		writeRPCError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, "DELETE needs an Mcp-Session-Id header")
		return
	}
	if ls := g.sessions.find(w, r, sid); ls != nil {
		ls.close()
		w.WriteHeader(http.StatusNoContent)
	}
}

// sessions tracks the live sessionful sessions of this replica (Streamable
// HTTP and legacy SSE).
type sessions struct {
	g       *Gateway
	ttl     time.Duration
	watches sync.WaitGroup // one per live session

	mu              sync.Mutex // guards the fields below
	live            map[string]*liveSession
	byServerSession map[*mcp.ServerSession]*liveSession
	owners          ownerCache // sessions this replica forwards, by id
	closed          bool
}

type liveSession struct {
	s          *sessions
	id         string
	streamable *mcp.StreamableServerTransport // nil for SSE sessions
	sse        *mcp.SSEServerTransport        // nil for Streamable HTTP sessions
	principal  *auth.Principal                // who opened it; nil without auth

	ended   chan struct{} // closed when the session has ended and is forgotten
	created time.Time

	mu          sync.Mutex         // guards the fields below
	session     *mcp.ServerSession // nil until connected
	closing     bool               // close was called, or the session ended
	keep        bool               // dropped from this replica only: its record stays for another
	active      int                // requests in flight; the idle timer runs at zero
	idle        *time.Timer
	ups         map[*mount]*upstream.Upstream // per-session upstream connections
	calls       map[*mount][]context.Context  // requests in flight on them, by mount (persession.go)
	logLevel    mcp.LoggingLevel              // as the client set it
	fast        map[string]context.CancelFunc // fast calls in flight, by JSON-RPC id (fastpath.go)
	fastStreams map[string]*fastCall          // fast calls in flight whose streams can be resumed, by stream id
	handback    *handback                     // a fast call's first round, given back to the SDK's path
}

func newSessions(g *Gateway) *sessions {
	ttl := g.cfg.SessionStore.TTL.Duration
	if g.opts.idleTimeout > 0 {
		ttl = g.opts.idleTimeout
	}
	return &sessions{g: g, ttl: ttl, live: map[string]*liveSession{}, byServerSession: map[*mcp.ServerSession]*liveSession{}}
}

// open serves an initialize request on a new session.
func (s *sessions) open(w http.ResponseWriter, r *http.Request) {
	t := &mcp.StreamableServerTransport{SessionID: rand.Text(), EventStore: s.g.eventStore()}
	ls, err := s.connect(r.Context(), t.SessionID, t, "streamable")
	if errors.Is(err, sessionstore.ErrUnavailable) {
		storeFailed(w)
		return
	}
	if err != nil {
		writeRPCError(w, http.StatusServiceUnavailable, jsonrpc.CodeInternalError, "gateway is shutting down")
		return
	}
	ls.serve(w, r, false) // initialize, answered at once
	if ls.session.InitializeParams() == nil {
		// The handshake failed; the client never learned this session.
		ls.session.Close()
		return
	}
	s.recordSession(r.Context(), ls)
}

// connect records a new session and connects the front door's server over
// t. The session is findable before the handshake starts: an SSE client
// may POST to the endpoint the moment the stream names it.
func (s *sessions) connect(ctx context.Context, id string, t mcp.Transport, kind string) (*liveSession, error) {
	now := time.Now()
	rec := &sessionstore.Record{ID: id, Principal: auth.PrincipalFromContext(ctx).Key(), Transport: kind, Owner: s.g.advertise, CreatedAt: now, UpdatedAt: now}
	if err := s.g.store.Create(ctx, rec, s.ttl); err != nil {
		s.g.log.LogAttrs(ctx, slog.LevelWarn, "recording session failed", slog.Any("err", err))
		return nil, err
	}
	return s.connectWith(ctx, id, t, rec, nil)
}

// connectWith registers a session whose record exists and connects the
// server over t, from state if the session is being rebuilt.
func (s *sessions) connectWith(ctx context.Context, id string, t mcp.Transport, rec *sessionstore.Record, state *mcp.ServerSessionState) (*liveSession, error) {
	ls := &liveSession{s: s, id: id, ended: make(chan struct{}), principal: auth.PrincipalFromContext(ctx), created: rec.CreatedAt}
	switch t := t.(type) {
	case *mcp.StreamableServerTransport:
		ls.streamable = t
	case *mcp.SSEServerTransport:
		ls.sse = t
	}
	ls.idle = time.AfterFunc(s.ttl, ls.close)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.forget(ls)
		return nil, errClosed
	}
	s.live[id] = ls
	s.watches.Add(1)
	s.mu.Unlock()

	ss, err := s.g.server.Connect(ctx, t, &mcp.ServerSessionOptions{State: state})
	if err != nil {
		s.forget(ls)
		s.watches.Done()
		return nil, err
	}
	ls.mu.Lock()
	ls.session = ss
	closing := ls.closing
	ls.mu.Unlock()
	s.mu.Lock()
	s.byServerSession[ss] = ls
	s.mu.Unlock()
	if closing {
		ss.Close()
	}
	go func() {
		defer s.watches.Done()
		ss.Wait()
		s.forget(ls)
		close(ls.ended)
	}()
	return ls, nil
}

// forget drops an ended session from the table, the store and its
// resource subscriptions.
func (s *sessions) forget(ls *liveSession) {
	ls.mu.Lock()
	ls.idle.Stop()
	ls.closing = true
	ss := ls.session
	keep := ls.keep
	ls.mu.Unlock()
	if ss != nil {
		s.g.subs.sessionEnded(ss)
	}
	ls.closeUpstreams()
	s.mu.Lock()
	if s.live[ls.id] == ls {
		delete(s.live, ls.id)
	}
	if ss != nil && s.byServerSession[ss] == ls {
		delete(s.byServerSession, ss)
	}
	s.mu.Unlock()
	if keep {
		return
	}
	if s.g.events != nil {
		s.g.events.deleteSession(context.Background(), ls.id)
	}
	if err := s.g.store.Delete(context.Background(), ls.id); err != nil {
		s.g.log.LogAttrs(context.Background(), slog.LevelWarn, "deleting session record failed", slog.Any("err", err))
	}
}

// close ends the session, now or, if it is still connecting, as soon as it
// has connected.
func (ls *liveSession) close() {
	ls.mu.Lock()
	ls.closing = true
	ss := ls.session
	ls.mu.Unlock()
	if ss != nil {
		ss.Close()
	}
}

// drop ends this replica's hold on the session but keeps its record, so
// that another replica takes it over (shutdown with a shared store).
func (ls *liveSession) drop() {
	ls.mu.Lock()
	ls.keep = true
	ls.mu.Unlock()
	ls.close()
}

// serve hands one HTTP request to the session's transport, pausing the idle
// timer while it runs.
// serve hands r to the session's transport. calls: r is a POST of calls
// (no initialize) on a Streamable HTTP session, which the SDK answers with
// an event stream; one it has not answered by the first keep-alive is
// committed to that stream then (see streamWriter).
func (ls *liveSession) serve(w http.ResponseWriter, r *http.Request, calls bool) {
	ls.begin()
	defer ls.end()
	sw, stop := withKeepAlive(w, ls.s.g.opts.KeepAlive, calls && ls.streamable != nil)
	defer stop()
	if ls.streamable != nil {
		ls.streamable.ServeHTTP(sw, r)
	} else {
		ls.sse.ServeHTTP(sw, r)
	}
}

// begin and end bracket activity on the session; the idle timer runs only
// while none is in progress.
func (ls *liveSession) begin() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.active++
	ls.idle.Stop()
}

func (ls *liveSession) end() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.active--
	if ls.active == 0 {
		ls.idle.Reset(ls.s.ttl)
	}
}

// closeAll ends every session and waits until they are gone. New sessions
// are refused from then on. With a shared store, Streamable HTTP sessions
// only leave this replica: their records stay, and the next request of
// each goes to another replica, which takes it over.
func (s *sessions) closeAll() {
	s.mu.Lock()
	s.closed = true
	all := make([]*liveSession, 0, len(s.live))
	for _, ls := range s.live {
		all = append(all, ls)
	}
	s.mu.Unlock()
	for _, ls := range all {
		if s.g.sharedStore && ls.streamable != nil {
			ls.drop()
		} else {
			ls.close()
		}
	}
	s.watches.Wait()
}

// byServer returns the live session of a server session, or nil (for
// stateless requests).
func (s *sessions) byServer(ss *mcp.ServerSession) *liveSession {
	if ss == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byServerSession[ss]
}

// count returns the number of live sessions.
func (s *sessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// snapshot returns the live sessions (for the sessions gauge).
func (s *sessions) snapshot() []*liveSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*liveSession, 0, len(s.live))
	for _, ls := range s.live {
		out = append(out, ls)
	}
	return out
}
