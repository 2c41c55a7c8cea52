package gateway

// Resource subscriptions. Clients subscribe to public URIs; the gateway
// subscribes upstream once per URI, however many clients want it, and
// unsubscribes when the last one leaves (by unsubscribing or by ending its
// session). The SDK's server remembers which session subscribed to what, so
// an upstream's notifications/resources/updated, rewritten to the public
// URI, reaches the subscribed sessions only. When an upstream reconnects,
// its subscriptions are made again on the new connection.

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type subscriptions struct {
	g *Gateway

	mu        sync.Mutex                              // guards the fields below
	bySession map[*mcp.ServerSession]map[string]route // session -> public URI -> route
	count     map[string]int                          // public URI -> subscribed sessions
	upstream  map[*mount]*mcp.ClientSession           // the connection each mount's subscriptions live on
}

func newSubscriptions(g *Gateway) *subscriptions {
	return &subscriptions{
		g:         g,
		bySession: map[*mcp.ServerSession]map[string]route{},
		count:     map[string]int{},
		upstream:  map[*mount]*mcp.ClientSession{},
	}
}

// subscribe is the server's SubscribeHandler.
func (s *subscriptions) subscribe(ctx context.Context, req *mcp.SubscribeRequest) error {
	uri := req.Params.URI
	r, ok := s.g.catalog.resolveURI(uri)
	if !ok {
		return resourceNotFound(resourceNotFoundCode(req.Session), uri)
	}
	s.mu.Lock()
	if s.bySession[req.Session][uri] == r {
		s.mu.Unlock()
		return nil // already subscribed
	}
	first := s.count[uri] == 0
	s.mu.Unlock()
	if first {
		if err := s.upstreamCall(ctx, r, true); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.bySession[req.Session] == nil {
		s.bySession[req.Session] = map[string]route{}
	}
	if _, dup := s.bySession[req.Session][uri]; !dup {
		s.bySession[req.Session][uri] = r
		s.count[uri]++
	}
	s.mu.Unlock()
	s.g.sessionChanged(ctx, req.Session)
	return nil
}

// of returns the public URIs a session is subscribed to.
func (s *subscriptions) of(ss *mcp.ServerSession) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var uris []string
	for uri := range s.bySession[ss] {
		uris = append(uris, uri)
	}
	return uris
}

// unsubscribe is the server's UnsubscribeHandler.
func (s *subscriptions) unsubscribe(ctx context.Context, req *mcp.UnsubscribeRequest) error {
	// A 2026-07-28 listen ends by its request being cancelled, and the
	// SDK unsubscribes with that cancelled context: the upstream's
	// unsubscribe must not inherit it.
	s.drop(context.WithoutCancel(ctx), req.Session, req.Params.URI)
	s.g.sessionChanged(ctx, req.Session)
	return nil
}

// sessionEnded drops every subscription of a session that ended.
func (s *subscriptions) sessionEnded(ss *mcp.ServerSession) {
	s.mu.Lock()
	var uris []string
	for uri := range s.bySession[ss] {
		uris = append(uris, uri)
	}
	s.mu.Unlock()
	if len(uris) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, uri := range uris {
		s.drop(ctx, ss, uri)
	}
}

func (s *subscriptions) drop(ctx context.Context, ss *mcp.ServerSession, uri string) {
	s.mu.Lock()
	r, ok := s.bySession[ss][uri]
	if !ok {
		s.mu.Unlock()
		return
	}
	delete(s.bySession[ss], uri)
	if len(s.bySession[ss]) == 0 {
		delete(s.bySession, ss)
	}
	s.count[uri]--
	last := s.count[uri] == 0
	if last {
		delete(s.count, uri)
	}
	s.mu.Unlock()
	if last {
		if err := s.upstreamCall(ctx, r, false); err != nil {
			s.g.log.LogAttrs(ctx, slog.LevelDebug, "upstream unsubscribe failed",
				slog.String("upstream", r.m.name), slog.Any("err", err))
		}
	}
}

// upstreamCall subscribes (or unsubscribes) r's URI on its upstream.
func (s *subscriptions) upstreamCall(ctx context.Context, r route, sub bool) error {
	session, err := r.m.up.Session()
	if err != nil {
		return s.g.upstreamError(ctx, r.m, "resources/subscribe", err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.m.timeout)
	defer cancel()
	if sub {
		err = session.Subscribe(ctx, &mcp.SubscribeParams{URI: r.name})
	} else {
		err = session.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: r.name})
	}
	if err != nil {
		return s.g.upstreamError(ctx, r.m, "resources/subscribe", err)
	}
	s.mu.Lock()
	s.upstream[r.m] = session
	s.mu.Unlock()
	return nil
}

// updated relays an upstream's resources/updated to the subscribed sessions.
func (s *subscriptions) updated(ctx context.Context, m *mount, params *mcp.ResourceUpdatedNotificationParams) {
	if params == nil {
		return
	}
	out := *params
	out.URI = publicURI(m.prefix, params.URI)
	s.g.server.ResourceUpdated(ctx, &out)
}

// resubscribe renews a mount's subscriptions after it reconnected.
func (s *subscriptions) resubscribe(m *mount) {
	session, err := m.up.Session()
	if err != nil {
		return
	}
	s.mu.Lock()
	if old, ok := s.upstream[m]; !ok || old == session {
		s.mu.Unlock()
		return
	}
	s.upstream[m] = session
	routes := map[string]route{}
	for _, subs := range s.bySession {
		for uri, r := range subs {
			if r.m == m {
				routes[uri] = r
			}
		}
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
	defer cancel()
	for _, r := range routes {
		if err := session.Subscribe(ctx, &mcp.SubscribeParams{URI: r.name}); err != nil {
			s.g.log.LogAttrs(ctx, slog.LevelWarn, "renewing subscription failed",
				slog.String("upstream", m.name), slog.Any("err", err))
		}
	}
}
