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
// The upstream's requests and log messages go out on the stream of the
// client's request that caused them (as the spec has it), when that can be
// known for certain: the only request of the session in flight on that
// connection. Otherwise, on the session's standalone stream.
//
// The catalog still comes from the mount's shared connection. Stateless
// 2026-07-28 requests have no session to bind a connection to; they use the
// shared connection.

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/upstream"
)

// upstreamFor returns the connection a request on ss should use for m, and
// the Upstream that owns it. Call done when the request is over: until
// then, a request the upstream sends on a per-session connection may go out
// on this request's stream.
func (g *Gateway) upstreamFor(ctx context.Context, ss *mcp.ServerSession, m *mount) (_ *mcp.ClientSession, _ *upstream.Upstream, done func(), _ error) {
	if m.cfg.Sharing == SharingPerSession {
		if ls := g.sessions.byServer(ss); ls != nil {
			u, created, err := ls.upstream(ctx, m)
			if err != nil {
				return nil, nil, nil, err
			}
			cs, err := u.WaitSession(ctx)
			if err != nil {
				return nil, nil, nil, err
			}
			if created {
				if level := ls.level(); level != "" {
					if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: level}); err != nil {
						g.log.LogAttrs(ctx, slog.LevelDebug, "setting upstream log level failed",
							slog.String("upstream", m.name), slog.Any("err", err))
					}
				}
			}
			return cs, u, ls.inFlight(m, ctx), nil
		}
	}
	cs, err := m.up.Session()
	return cs, m.up, func() {}, err
}

// inFlight records ctx as a request of the session in flight on its
// connection to m, until the returned function is called.
func (ls *liveSession) inFlight(m *mount, ctx context.Context) func() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.calls == nil {
		ls.calls = map[*mount][]context.Context{}
	}
	ls.calls[m] = append(ls.calls[m], ctx)
	return func() {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		calls := ls.calls[m]
		for i, c := range calls {
			if c == ctx {
				ls.calls[m] = append(calls[:i:i], calls[i+1:]...)
				break
			}
		}
		if len(ls.calls[m]) == 0 {
			delete(ls.calls, m)
		}
	}
}

// relate returns the context to send an upstream's message to the client
// with: one that the SDK relates to the client's request that caused it
// (so it goes out on that request's stream), if there is exactly one in
// flight on the connection to m; else upCtx itself (related is false).
// Either way it lasts as long as upCtx, the upstream's request: not the
// call's, which may end first (the upstream may ask after its own call
// has ended at the gateway, or in the background).
func (ls *liveSession) relate(upCtx context.Context, m *mount) (ctx context.Context, cancel context.CancelFunc, related bool) {
	ls.mu.Lock()
	calls := ls.calls[m]
	var call context.Context
	if len(calls) == 1 {
		call = calls[0]
	}
	ls.mu.Unlock()
	if call == nil {
		ctx, cancel = context.WithCancel(upCtx)
		return ctx, cancel, false
	}
	// The call's values (the SDK's request id among them) and the
	// upstream request's lifetime.
	rctx, rcancel := context.WithCancel(context.WithoutCancel(call))
	stop := context.AfterFunc(upCtx, rcancel)
	return rctx, func() { stop(); rcancel() }, true
}

// codeRejected is the code of the SDK's refusal to send a message (its
// transport's ErrRejected): the stream it was for has ended.
const codeRejected = -32005

// toClient sends an upstream's message to the client with send: on the
// stream of the call that caused it if relate finds it, else, or if that
// stream has ended meanwhile, on the session's standalone stream.
func toClient[R any](ls *liveSession, upCtx context.Context, m *mount, send func(context.Context) (R, error)) (R, error) {
	ctx, cancel, related := ls.relate(upCtx, m)
	res, err := send(ctx)
	cancel()
	var refused *jsonrpc.Error
	if related && errors.As(err, &refused) && refused.Code == codeRejected && upCtx.Err() == nil {
		return send(upCtx)
	}
	return res, err
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
		if p == nil {
			return
		}
		// A message that reaches the gateway as its call's stream ends
		// (the upstream's client hands notifications over concurrently
		// with results) goes on the standalone stream.
		toClient(ls, context.WithoutCancel(ctx), m, func(ctx context.Context) (struct{}, error) { return struct{}{}, ss.Log(ctx, p) })
	}
	var caps *mcp.ClientCapabilities
	if ip := ss.InitializeParams(); ip != nil {
		caps = ip.Capabilities
	}
	if caps != nil && caps.Sampling != nil {
		uopts.CreateMessageHandler = func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return toClient(ls, ctx, m, func(ctx context.Context) (*mcp.CreateMessageResult, error) { return ss.CreateMessage(ctx, req.Params) })
		}
	}
	if caps != nil && caps.Elicitation != nil {
		uopts.ElicitationHandler = func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return toClient(ls, ctx, m, func(ctx context.Context) (*mcp.ElicitResult, error) { return ss.Elicit(ctx, req.Params) })
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
