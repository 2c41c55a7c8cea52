package gateway

// Per-session upstream connections (sharing: per-session).
//
// A shared upstream connection serves every client, so the gateway cannot
// tell which client an upstream's request or log message is for: it declares
// no client capabilities on it (no sampling, elicitation or roots) and drops
// its log messages. An upstream mounted with sharing: per-session instead
// gets one connection per client session, opened on the session's first use
// of it and closed when the session ends. That connection declares exactly
// the capabilities the client declared, and everything the upstream sends on
// it goes to that client alone:
//
//   - sampling/createMessage and elicitation/create are forwarded to the
//     client as real requests, and their answers returned upstream;
//   - roots/list is answered with the client's roots, read when the
//     connection opens and again when the client says they changed;
//   - logging/setLevel from the client is passed on, and the upstream's log
//     messages are relayed to the client (the SDK filters them by level).
//
// The catalog still comes from the mount's shared connection. Stateless
// 2026-07-28 requests have no session to bind a connection to; they use the
// shared connection.

import (
	"context"
	"log/slog"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/upstream"
)

// upstreamFor returns the connection a request on ss should use for m, and
// the Upstream that owns it.
func (g *Gateway) upstreamFor(ctx context.Context, ss *mcp.ServerSession, m *mount) (*mcp.ClientSession, *upstream.Upstream, error) {
	if m.cfg.Sharing == SharingPerSession {
		if ls := g.sessions.byServer(ss); ls != nil {
			u, created, err := ls.upstream(ctx, m)
			if err != nil {
				return nil, nil, err
			}
			cs, err := u.WaitSession(ctx)
			if err != nil {
				return nil, nil, err
			}
			if created {
				if level := ls.level(); level != "" {
					if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: level}); err != nil {
						g.log.LogAttrs(ctx, slog.LevelDebug, "setting upstream log level failed",
							slog.String("upstream", m.name), slog.Any("err", err))
					}
				}
			}
			return cs, u, nil
		}
	}
	cs, err := m.up.Session()
	return cs, m.up, err
}

// upstream returns the session's connection to m, creating and starting it
// on first use.
func (ls *liveSession) upstream(ctx context.Context, m *mount) (u *upstream.Upstream, created bool, err error) {
	ls.mu.Lock()
	if ls.closing {
		ls.mu.Unlock()
		return nil, false, errClosed
	}
	u = ls.ups[m]
	ls.mu.Unlock()
	if u != nil {
		return u, false, nil
	}

	u = ls.s.g.newSessionUpstream(ctx, ls, m)
	ls.mu.Lock()
	if ls.closing {
		ls.mu.Unlock()
		u.Close()
		return nil, false, errClosed
	}
	if prev := ls.ups[m]; prev != nil {
		// Another request of this session won the race.
		ls.mu.Unlock()
		u.Close()
		return prev, false, nil
	}
	if ls.ups == nil {
		ls.ups = map[*mount]*upstream.Upstream{}
	}
	ls.ups[m] = u
	ls.mu.Unlock()
	u.Start()
	return u, true, nil
}

// newSessionUpstream builds (without starting) a connection to m that
// carries ls's client capabilities.
func (g *Gateway) newSessionUpstream(ctx context.Context, ls *liveSession, m *mount) *upstream.Upstream {
	ss := ls.session
	uopts := g.upstreamOptions(m)
	uopts.OnLog = func(ctx context.Context, p *mcp.LoggingMessageParams) {
		if p != nil {
			ss.Log(context.WithoutCancel(ctx), p)
		}
	}
	var caps *mcp.ClientCapabilities
	if ip := ss.InitializeParams(); ip != nil {
		caps = ip.Capabilities
	}
	if caps != nil && caps.Sampling != nil {
		uopts.CreateMessageHandler = func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return ss.CreateMessage(ctx, req.Params)
		}
	}
	if caps != nil && caps.Elicitation != nil {
		uopts.ElicitationHandler = func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return ss.Elicit(ctx, req.Params)
		}
		uopts.Elicitation = caps.Elicitation
	}
	if caps != nil && caps.RootsV2 != nil {
		uopts.Roots = []*mcp.Root{}
		if res, err := ss.ListRoots(ctx, nil); err == nil {
			uopts.Roots = append(uopts.Roots, res.Roots...)
		} else {
			g.log.LogAttrs(ctx, slog.LevelDebug, "listing client roots failed", slog.Any("err", err))
		}
	}
	return upstream.New(m.upstreamConfig(g.cfg.Dir, true), &uopts)
}

// level returns the log level the client set, if any.
func (ls *liveSession) level() mcp.LoggingLevel {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.logLevel
}

// setLevel records the client's log level and passes it to the session's
// own upstream connections.
func (g *Gateway) setLevel(ctx context.Context, ss *mcp.ServerSession, level mcp.LoggingLevel) {
	ls := g.sessions.byServer(ss)
	if ls == nil {
		return
	}
	defer g.sessionChanged(ctx, ss)
	ls.mu.Lock()
	ls.logLevel = level
	ups := make([]*upstream.Upstream, 0, len(ls.ups))
	for _, u := range ls.ups {
		ups = append(ups, u)
	}
	ls.mu.Unlock()
	for _, u := range ups {
		if cs, err := u.Session(); err == nil {
			cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: level})
		}
	}
}

// rootsChanged re-reads the client's roots and passes them to the session's
// own upstream connections.
func (g *Gateway) rootsChanged(ctx context.Context, req *mcp.RootsListChangedRequest) {
	ls := g.sessions.byServer(req.Session)
	if ls == nil {
		return
	}
	res, err := req.Session.ListRoots(ctx, nil)
	if err != nil {
		g.log.LogAttrs(ctx, slog.LevelDebug, "listing client roots failed", slog.Any("err", err))
		return
	}
	ls.mu.Lock()
	ups := make([]*upstream.Upstream, 0, len(ls.ups))
	for _, u := range ls.ups {
		ups = append(ups, u)
	}
	ls.mu.Unlock()
	for _, u := range ups {
		u.SetRoots(res.Roots)
	}
}

// closeUpstreams closes the session's own upstream connections and waits
// for them (and their child processes) to end.
func (ls *liveSession) closeUpstreams() {
	ls.mu.Lock()
	ups := ls.ups
	ls.ups = nil
	ls.mu.Unlock()
	var wg sync.WaitGroup
	for _, u := range ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u.Close()
		}()
	}
	wg.Wait()
}
