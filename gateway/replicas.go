package gateway

// Replicas: any replica serves any request of a sessionful client.
//
// With a shared session store (Redis), a session lives on the replica that
// opened it, its owner, whose address is in the session's record. A request
// that names the session may land on any replica behind a plain load
// balancer:
//
//   - on the owner, it is served there (one store round trip: the sliding
//     TTL's touch);
//   - elsewhere, the replica reads the record (one round trip), checks that
//     the caller is the session's principal, and forwards the request to the
//     owner as it came (streams are relayed as they are written). The owner
//     authenticates it again; the token goes nowhere else;
//   - if the owner cannot be reached (it died or is shutting down), the
//     replica takes the session over: it rebuilds the session from the
//     record (the SDK's ServerSessionState: initialize parameters, log
//     level), re-applies its resource subscriptions, records itself as the
//     owner, and serves the request. The client sees no 404; a call that was
//     in flight on the dead owner failed with its connection.
//
// A legacy SSE session cannot move: its stream died with its replica, so a
// /message for it gets 404 and the client opens a new stream. Its /message
// POSTs that land elsewhere are forwarded to the owner like any other.
//
// Why forwarding and not a copy of the session on every replica: a session
// is one JSON-RPC conversation (its GET stream, its subscriptions, its own
// upstream connections, server-to-client requests in flight); one owner
// keeps each message on exactly one stream without cross-replica fan-out.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/auth"
	"github.com/mcpgw/gateway/sessionstore"
)

// headerForwarded marks a request one replica forwarded to another, so that
// it is never forwarded twice.
const headerForwarded = "Mcp-Gateway-Forwarded"

// retryAfter is what a client is told to wait when the session store is
// unreachable.
const retryAfter = "2"

// advertiseURL is how other replicas reach this one: the configured URL, or
// http://<host name>:<port> of the listener (loopback listeners advertise
// their loopback address, for single-machine setups and tests).
func advertiseURL(configured string, addr net.Addr) string {
	if configured != "" {
		return strings.TrimSuffix(configured, "/")
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return ""
	}
	if tcp.IP.IsLoopback() {
		return "http://" + tcp.String()
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "http://" + tcp.String()
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// SetAdvertiseURL sets how other replicas reach this one, once the listener
// is known (see ReplicaConfig.AdvertiseURL). Call it before serving.
func (g *Gateway) SetAdvertiseURL(addr net.Addr) {
	g.advertise = advertiseURL(g.cfg.Replica.AdvertiseURL, addr)
	g.states.owner = g.advertise
}

// storeFailed answers a request whose session could not be checked because
// the store is unreachable: 503 with Retry-After, never a guess.
func storeFailed(w http.ResponseWriter) {
	w.Header().Set("Retry-After", retryAfter)
	writeRPCError(w, http.StatusServiceUnavailable, -32603, "session store unavailable; retry shortly")
}

// shuttingDown answers a request for a session that this replica, shutting
// down, leaves to the others: 503 with Retry-After, so that the client
// tries again and lands on a replica that takes the session over.
func shuttingDown(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	writeRPCError(w, http.StatusServiceUnavailable, -32603, "this replica is shutting down; retry")
}

// find resolves the session a request names. It returns the session to
// serve here, or nil when it has answered the request itself (404, 503) or
// forwarded it to the session's owner.
func (s *sessions) find(w http.ResponseWriter, r *http.Request, id string) *liveSession {
	ctx := r.Context()
	caller := auth.PrincipalFromContext(ctx)
	notFound := func() *liveSession {
		writeRPCError(w, http.StatusNotFound, -32600, "session not found; initialize a new session")
		return nil
	}
	s.mu.Lock()
	ls := s.live[id]
	s.mu.Unlock()
	if ls != nil {
		if caller.Key() != ls.principal.Key() {
			auth.Audit(ctx, s.g.log, caller, "session", "session of another principal", auth.OutcomeDenied)
			return notFound()
		}
		ls.mu.Lock()
		closing, handedOver := ls.closing, ls.keep
		ls.mu.Unlock()
		switch {
		case closing && handedOver:
			// This replica is shutting down and leaves the session to
			// the others: the client's retry lands on one that takes
			// it over.
			shuttingDown(w)
			return nil
		case closing:
			// Deleted, expired or closed: it leaves the table shortly.
			return notFound()
		}
		switch err := s.g.store.Touch(ctx, id, s.ttl); {
		case err == nil:
			return ls
		case errors.Is(err, sessionstore.ErrNotFound):
			if s.g.sharedStore {
				// Expired or deleted in the store: the session is over.
				ls.close()
				return notFound()
			}
			return ls
		case errors.Is(err, sessionstore.ErrUnavailable):
			storeFailed(w)
			return nil
		default:
			s.g.log.LogAttrs(ctx, slog.LevelWarn, "touching session record failed", slog.Any("err", err))
			return ls
		}
	}
	if !s.g.sharedStore {
		return notFound()
	}
	// A session this replica forwarded recently goes to the same owner
	// without reading its record again: the owner's touch is the one
	// round trip. If the owner is gone, the record decides.
	if owner, ok := s.owners.get(id, caller.Key()); ok && r.Header.Get(headerForwarded) == "" {
		if s.forward(w, r, owner) == forwarded {
			return nil
		}
		s.owners.drop(id)
	}
	rec, err := s.g.store.Get(ctx, id)
	switch {
	case errors.Is(err, sessionstore.ErrNotFound):
		return notFound()
	case errors.Is(err, sessionstore.ErrUnavailable):
		storeFailed(w)
		return nil
	case err != nil:
		s.g.log.LogAttrs(ctx, slog.LevelWarn, "reading session record failed", slog.Any("err", err))
		return notFound()
	}
	if rec.Principal != caller.Key() {
		auth.Audit(ctx, s.g.log, caller, "session", "session of another principal", auth.OutcomeDenied)
		return notFound()
	}
	if rec.Owner != "" && rec.Owner != s.g.advertise && r.Header.Get(headerForwarded) != "" {
		// Forwarded here on an old belief: another replica owns it now.
		// Nothing is served; the forwarding replica reads the record.
		writeRPCError(w, http.StatusMisdirectedRequest, -32600, "session is held by another replica")
		return nil
	}
	if rec.Owner != "" && rec.Owner != s.g.advertise {
		switch s.forward(w, r, rec.Owner) {
		case forwarded:
			s.owners.put(id, rec.Principal, rec.Owner)
			return nil
		case misdirected:
			// The session moved between our read and the owner's.
			storeFailed(w)
			return nil
		}
		s.g.log.LogAttrs(ctx, slog.LevelInfo, "session owner unreachable; taking the session over",
			slog.String("owner", rec.Owner))
	}
	if rec.Transport != "streamable" {
		// A legacy SSE session's stream died with its replica.
		return notFound()
	}
	ls, err = s.adopt(ctx, rec)
	if errors.Is(err, sessionstore.ErrUnavailable) {
		storeFailed(w)
		return nil
	}
	if errors.Is(err, errClosed) {
		shuttingDown(w)
		return nil
	}
	if err != nil {
		s.g.log.LogAttrs(ctx, slog.LevelWarn, "taking a session over failed", slog.Any("err", err))
		return notFound()
	}
	return ls
}

// Outcomes of forward.
type forwardOutcome int

const (
	forwarded   forwardOutcome = iota // the owner answered; w holds its response
	unreachable                       // the owner could not be reached; nothing was written
	misdirected                       // the replica does not hold the session; nothing was written
)

// errMisdirected marks an owner's 421: it does not hold the session.
var errMisdirected = errors.New("misdirected")

// forward relays r to the replica at owner.
func (s *sessions) forward(w http.ResponseWriter, r *http.Request, owner string) forwardOutcome {
	target, err := url.Parse(owner)
	if err != nil {
		return unreachable
	}
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
	}
	outcome := forwarded
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path = pr.In.URL.Path // the public path may have a prefix; replicas serve the plain one
			pr.Out.URL.RawPath = ""
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(headerForwarded, s.g.advertise)
		},
		Transport:     s.g.forwarder,
		FlushInterval: -1, // event streams go through as written
		ErrorLog:      slog.NewLogLogger(s.g.log.Handler(), slog.LevelDebug),
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusMisdirectedRequest {
				return errMisdirected
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var op *net.OpError
			switch {
			case errors.Is(err, errMisdirected):
				outcome = misdirected
				return
			case errors.As(err, &op) && op.Op == "dial":
				outcome = unreachable
				return
			case r.Context().Err() == nil && !ownerListening(r.Context(), target.Host):
				// A kept-alive connection to an owner that has just
				// died fails on the request itself, not on a dial;
				// a fresh dial tells a dead owner from a failing one.
				// The request may have reached it, and runs again on
				// the replica that takes over: its answer died with
				// the owner.
				outcome = unreachable
				return
			}
			s.g.log.LogAttrs(r.Context(), slog.LevelWarn, "forwarding to the session's owner failed", slog.Any("err", err))
			writeRPCError(w, http.StatusBadGateway, -32603, "the replica holding this session failed to answer; retry")
		},
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	// A rewindable body lets the transport resend a request that a
	// kept-alive connection closed before it was written.
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	proxy.ServeHTTP(w, r)
	if outcome != forwarded {
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	return outcome
}

// ownerListening reports whether a replica accepts connections at
// hostport.
func ownerListening(ctx context.Context, hostport string) bool {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// newForwarder is the HTTP client transport replicas use to reach each
// other: a short dial timeout, so that a dead owner is taken over quickly.
func newForwarder() http.RoundTripper {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
}

// adopt rebuilds a Streamable HTTP session from its record on this replica,
// makes this replica its owner, and re-applies its subscriptions.
func (s *sessions) adopt(ctx context.Context, rec *sessionstore.Record) (*liveSession, error) {
	var state mcp.ServerSessionState
	if err := json.Unmarshal(rec.State, &state); err != nil || state.InitializeParams == nil {
		return nil, errors.New("the record holds no session state")
	}
	s.mu.Lock()
	if ls := s.live[rec.ID]; ls != nil {
		// Another request adopted it meanwhile.
		s.mu.Unlock()
		return ls, nil
	}
	closed := s.closed
	s.mu.Unlock()
	if closed {
		// Shutting down: the record must not name this replica.
		return nil, errClosed
	}
	rec.Owner = s.g.advertise
	if err := s.g.store.Update(ctx, rec, s.ttl); err != nil {
		return nil, err
	}
	t := &mcp.StreamableServerTransport{SessionID: rec.ID, EventStore: s.g.eventStore()}
	ls, err := s.connectWith(ctx, rec.ID, t, rec, &state)
	if err != nil {
		return nil, err
	}
	ls.mu.Lock()
	ls.logLevel = state.LogLevel
	ls.mu.Unlock()
	for _, uri := range rec.Subscriptions {
		if err := ls.replay(ctx, "resources/subscribe", map[string]any{"uri": uri}); err != nil {
			s.g.log.LogAttrs(ctx, slog.LevelWarn, "renewing a subscription after takeover failed", slog.String("uri", uri), slog.Any("err", err))
		}
	}
	s.g.log.LogAttrs(ctx, slog.LevelInfo, "took a session over", slog.Int("subscriptions", len(rec.Subscriptions)))
	return ls, nil
}

// replay sends the session's server one request as if its client had sent
// it, and discards the answer: how state the SDK keeps only from requests
// (resource subscriptions) is rebuilt on a new replica.
func (ls *liveSession) replay(ctx context.Context, method string, params any) error {
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": "gw-replay", "method": method, "params": params})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, PathMCP, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(headerSessionID, ls.id)
	if p := ls.session.InitializeParams(); p != nil {
		req.Header.Set(headerProtocolVersion, p.ProtocolVersion)
	}
	rw := &discardWriter{header: http.Header{}}
	ls.streamable.ServeHTTP(rw, req)
	if rw.status >= 300 {
		return errors.New(http.StatusText(rw.status))
	}
	return nil
}

// discardWriter is an http.ResponseWriter that keeps only the status.
type discardWriter struct {
	header http.Header
	status int
}

func (d *discardWriter) Header() http.Header { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	return len(b), nil
}
func (d *discardWriter) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
}
func (d *discardWriter) Flush() {}

// recordSession keeps the session's record in step with what a takeover
// needs: its state (initialize parameters, log level) and subscriptions.
func (s *sessions) recordSession(ctx context.Context, ls *liveSession) {
	ss := ls.session
	if ss == nil || ss.InitializeParams() == nil {
		return
	}
	ls.mu.Lock()
	state := mcp.ServerSessionState{
		InitializeParams:          ss.InitializeParams(),
		InitializedParams:         &mcp.InitializedParams{},
		NegotiatedProtocolVersion: ss.InitializeParams().ProtocolVersion,
		LogLevel:                  ls.logLevel,
	}
	ls.mu.Unlock()
	raw, err := json.Marshal(state)
	if err != nil {
		return
	}
	rec := &sessionstore.Record{
		ID: ls.id, Principal: ls.principal.Key(), Transport: ls.kind(), ProtocolVersion: state.NegotiatedProtocolVersion,
		State: raw, LogLevel: string(state.LogLevel), Subscriptions: s.g.subs.of(ss), Owner: s.g.advertise, CreatedAt: ls.created,
	}
	if err := s.g.store.Update(context.WithoutCancel(ctx), rec, s.ttl); err != nil && !errors.Is(err, sessionstore.ErrNotFound) {
		s.g.log.LogAttrs(ctx, slog.LevelWarn, "recording session failed", slog.Any("err", err))
	}
}

// kind is the session's transport as records name it.
func (ls *liveSession) kind() string {
	if ls.sse != nil {
		return "sse"
	}
	return "streamable"
}

// sessionChanged records a session's new subscriptions or log level, so
// that a replica taking it over restores them.
func (g *Gateway) sessionChanged(ctx context.Context, ss *mcp.ServerSession) {
	if !g.sharedStore {
		return
	}
	if ls := g.sessions.byServer(ss); ls != nil {
		g.sessions.recordSession(ctx, ls)
	}
}

// ownerCache remembers, for a short while, which replica owns a session
// this replica forwarded to, and for which principal, so that forwarding
// costs no store round trip. It is bounded; an entry that is wrong (the
// owner died) is dropped on the first failed forward, and one whose
// session ended is answered by the owner with 404.
type ownerCache struct {
	mu      sync.Mutex
	entries map[string]ownerEntry
}

type ownerEntry struct {
	principal, owner string
	expires          time.Time
}

const (
	ownerCacheTTL = 30 * time.Second
	ownerCacheMax = 100_000
)

func (c *ownerCache) get(id, principal string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || e.principal != principal || time.Now().After(e.expires) {
		return "", false
	}
	return e.owner, true
}

func (c *ownerCache) put(id, principal, owner string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]ownerEntry{}
	}
	if len(c.entries) >= ownerCacheMax {
		now := time.Now()
		for k, e := range c.entries {
			if now.After(e.expires) || len(c.entries) >= ownerCacheMax {
				delete(c.entries, k)
			}
		}
	}
	c.entries[id] = ownerEntry{principal: principal, owner: owner, expires: time.Now().Add(ownerCacheTTL)}
}

func (c *ownerCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
}
