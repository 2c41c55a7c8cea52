// Package gateway is the front door of the MCP gateway: it merges the
// catalogs of many upstream MCP servers into one namespaced catalog, serves
// it over every transport MCP clients use (Streamable HTTP with sessions,
// stateless Streamable HTTP for 2026-07-28, and the 2024-11-05 HTTP+SSE pair),
// and routes each call to the upstream that owns it.
//
// # Shape
//
// One mcp.Server holds the public catalog; the SDK answers initialize, ping,
// logging/setLevel and the list methods (with paging and list_changed) from
// it. The gateway keeps the upstream connections (package upstream), the
// tables from public names to upstream names (catalog.go), the session
// bookkeeping for sessionful clients (streamable.go, sse.go, recorded through
// a sessionstore.Store) and the HTTP plumbing (http.go).
//
// A Gateway is safe for concurrent use. Close ends every session and stops
// every upstream, waiting for child processes to exit.
package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/auth"
	"github.com/mcpgw/gateway/sessionstore"
	"github.com/mcpgw/gateway/upstream"
)

// Options configure a Gateway. The zero value works.
type Options struct {
	// Logger receives the gateway's log. If nil, nothing is logged.
	Logger *slog.Logger
	// Version is reported to clients as the server version. If empty, "dev".
	Version string
	// Store records client sessions. If nil, an in-memory store.
	Store sessionstore.Store
	// KeepAlive is the interval of SSE keep-alive comments on idle streams.
	// If zero, 15s. Negative disables them.
	KeepAlive time.Duration
	// PageSize is the most entries a list result holds. If zero, 1000.
	PageSize int
	// idleTimeout, if set, replaces session_store.ttl as the idle timeout of
	// sessions; tests use it, since the config requires at least a minute.
	idleTimeout time.Duration
	// Upstream tunes every upstream connection (backoff, stop grace, ...).
	// Logger, OnChange and ClientInfo are set by the gateway.
	Upstream upstream.Options
}

// A Gateway serves one merged MCP catalog. Create it with New, start its
// upstreams with Start, serve Handler, and end it with Close.
type Gateway struct {
	cfg        *Config
	opts       Options
	impl       *mcp.Implementation // how the gateway names itself, to clients and upstreams
	auth       *auth.Authenticator
	filtering  bool // policies exist: list results depend on the caller
	log        *slog.Logger
	server     *mcp.Server
	metrics    *metrics
	mountsMu   sync.RWMutex // guards mounts, which Reload replaces
	reloadMu   sync.Mutex   // one Reload at a time
	mounts     []*mount
	catalog    *catalog
	store      sessionstore.Store
	ownStore   bool
	closeRedis func() error  // the Redis client the gateway made, if any
	events     *streamEvents // resumable stream events in Redis; nil without Redis

	// With a shared store (Redis), sessions outlive this replica: advertise
	// is how other replicas reach it, forwarder how it reaches them.
	sharedStore bool
	advertise   string
	forwarder   http.RoundTripper
	draining    atomic.Bool     // shutting down: not ready
	inflight    inflight        // MCP requests being handled, for draining
	calls       context.Context // ends when EndCalls ends every request in flight
	endCalls    context.CancelFunc

	progress progressRoutes
	subs     *subscriptions
	states   *stateSealer // requestStates of input_required results
	held     heldCalls    // calls waiting for a 2026-07-28 client's input

	stateless *mcp.StreamableHTTPHandler
	sessions  *sessions
	baseURL   *url.URL // public base URL, for advertised endpoints; may be nil

	closeOnce sync.Once
}

// mount is one configured upstream as the gateway offers it.
type mount struct {
	name    string
	prefix  string
	cfg     UpstreamConfig
	timeout time.Duration
	up      *upstream.Upstream
	http    *http.Client // for remote upstreams: carries the gateway's own credentials, if any
}

// upstreamConfig is the upstream package's view of m's config.
func (m *mount) upstreamConfig(cfgDir string, perSession bool) upstream.Config {
	uc := m.cfg
	return upstream.Config{
		Name:         uc.Name,
		Transport:    uc.Transport,
		Command:      uc.Command,
		Args:         uc.Args,
		Env:          uc.Env,
		Dir:          uc.WorkDir(cfgDir),
		URL:          uc.URL,
		Headers:      uc.Headers,
		Timeout:      uc.Timeout.Duration,
		PingInterval: uc.PingInterval.Duration,

		ProtocolVersion: uc.upstreamVersion(perSession),
	}
}

// New builds a Gateway for a validated config. It starts nothing.
func New(cfg *Config, opts *Options) (*Gateway, error) {
	g := &Gateway{cfg: cfg}
	if opts != nil {
		g.opts = *opts
	}
	if g.opts.Logger == nil {
		g.opts.Logger = slog.New(slog.DiscardHandler)
	}
	if g.opts.Version == "" {
		g.opts.Version = "dev"
	}
	if g.opts.KeepAlive == 0 {
		g.opts.KeepAlive = 15 * time.Second
	}
	g.log = g.opts.Logger
	g.store = g.opts.Store
	if g.store == nil && cfg.SessionStore.Type == "redis" && cfg.SessionStore.Redis != nil {
		client, err := sessionstore.NewRedisClient(cfg.SessionStore.Redis.ClientConfig())
		if err != nil {
			return nil, err
		}
		g.store = sessionstore.NewRedis(client, &sessionstore.RedisOptions{Prefix: cfg.SessionStore.Redis.Prefix})
		g.ownStore, g.closeRedis = true, client.Close
		g.events = newStreamEvents(sessionstore.NewRedisEventLog(client, &sessionstore.RedisEventLogOptions{Prefix: cfg.SessionStore.Redis.Prefix}), g.log)
	}
	if g.store == nil {
		g.store = sessionstore.NewMemory(nil)
		g.ownStore = true
	}
	_, isMemory := g.store.(*sessionstore.Memory)
	g.sharedStore = !isMemory
	g.forwarder = newForwarder()
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil {
			return nil, err
		}
		g.baseURL = u
	}

	a, err := auth.New(cfg.toAuth(), &auth.Options{Logger: g.log})
	if err != nil {
		return nil, err
	}
	g.auth = a
	g.filtering = len(cfg.Auth.Policies) > 0
	key, err := cfg.RequestState.StateKey()
	if err != nil {
		return nil, fmt.Errorf("request_state.key: %w", err)
	}
	if g.states, err = newStateSealer(key, cfg.RequestState.TTL.Duration, replicaID()); err != nil {
		return nil, err
	}
	if a.Mode() == auth.ModeNone {
		g.log.Warn("authentication is off: anyone who can reach the listener can use every upstream",
			slog.String("listen", cfg.Listen))
	}

	impl := &mcp.Implementation{Name: "mcp-gateway", Title: "MCP Gateway", Version: g.opts.Version}
	g.impl = impl
	// The SDK logs session ids at info level; the gateway's log must not
	// carry them, so the SDK gets warnings and errors only.
	sdkLog := slog.New(minLevel{g.log.Handler(), slog.LevelWarn})
	g.server = mcp.NewServer(impl, &mcp.ServerOptions{
		Logger:   sdkLog,
		PageSize: g.opts.PageSize,
		Capabilities: &mcp.ServerCapabilities{
			Tools:       &mcp.ToolCapabilities{ListChanged: true},
			Prompts:     &mcp.PromptCapabilities{ListChanged: true},
			Resources:   &mcp.ResourceCapabilities{ListChanged: true, Subscribe: true},
			Logging:     &mcp.LoggingCapabilities{},
			Completions: &mcp.CompletionCapabilities{},
		},
		CompletionHandler: g.complete,
		SubscribeHandler: func(ctx context.Context, req *mcp.SubscribeRequest) error {
			return g.subs.subscribe(ctx, req)
		},
		UnsubscribeHandler: func(ctx context.Context, req *mcp.UnsubscribeRequest) error {
			return g.subs.unsubscribe(ctx, req)
		},
		RootsListChangedHandler: g.rootsChanged,
		SetCacheable:            g.setCacheable,
	})
	g.subs = newSubscriptions(g)
	// resources/read is routed by the gateway itself, so that URIs that no
	// list names (resource links in tool results, template expansions) reach
	// their upstream too.
	g.server.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if err := g.gate(ctx, method, req); err != nil {
				return nil, err
			}
			switch method {
			case "tools/list", "prompts/list", "resources/list", "resources/templates/list":
				res, err := next(ctx, method, req)
				if err == nil && g.filtering {
					g.filterList(req, res)
				}
				return res, err
			}
			switch req := req.(type) {
			case *mcp.ReadResourceRequest:
				// Listed resources and template matches take the SDK's
				// path (which also stamps 2026-07-28 result fields); other
				// public URIs, such as links in tool results, are routed
				// here.
				if req.Params != nil && !g.catalog.offers(req.Params.URI) {
					return g.readResource(ctx, req)
				}
			case *mcp.CallToolRequest:
				if req.Params != nil {
					if m := g.catalog.retired(req.Params.Name, false); m != nil {
						return nil, g.upstreamError(ctx, m, method, upstream.ErrUnavailable)
					}
				}
			case *mcp.ServerRequest[*mcp.SetLoggingLevelParams]:
				res, err := next(ctx, method, req)
				if err == nil && req.Params != nil {
					g.setLevel(ctx, req.Session, req.Params.Level)
				}
				return res, err
			case *mcp.GetPromptRequest:
				if req.Params != nil {
					if m := g.catalog.retired(req.Params.Name, true); m != nil {
						return nil, g.upstreamError(ctx, m, method, upstream.ErrUnavailable)
					}
				}
			}
			return next(ctx, method, req)
		}
	})
	g.metrics = newMetrics(g) // after g.server, g.store and the middleware above, which it wraps

	for _, uc := range cfg.Upstreams {
		g.mounts = append(g.mounts, g.newMount(uc))
	}
	g.catalog = newCatalog(g.server, g.mounts, cfg.Namespace.Separator, cfg.Namespace.MaxNameLength, g.log, handlers{
		tool:   g.toolHandler,
		prompt: g.promptHandler,
		resource: func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return g.readResource(ctx, req)
		},
	})

	getServer := func(*http.Request) *mcp.Server { return g.server }
	g.stateless = mcp.NewStreamableHTTPHandler(getServer, &mcp.StreamableHTTPOptions{
		Stateless:                    true,
		Logger:                       sdkLog,
		MaxRequestBodyBytes:          cfg.MaxBodyBytes,
		PropagateRequestCancellation: true,
		// The gateway's own middleware checks Host and Origin for every path.
		DisableLocalhostProtection: true,
	})
	g.sessions = newSessions(g)
	g.calls, g.endCalls = context.WithCancel(context.Background())
	// Outermost: every request counts as in flight until it is answered.
	g.server.AddReceivingMiddleware(g.countInflight)
	return g, nil
}

// newMount builds (without starting) the mount of one configured upstream.
func (g *Gateway) newMount(uc UpstreamConfig) *mount {
	m := &mount{name: uc.Name, prefix: uc.PublicPrefix(), cfg: uc, timeout: uc.Timeout.Duration, http: g.opts.Upstream.HTTPClient}
	if uc.Credentials != nil && uc.Credentials.OAuth2ClientCredentials != nil {
		var base http.RoundTripper
		if m.http != nil {
			base = m.http.Transport
		}
		m.http = &http.Client{Transport: auth.ClientCredentials(uc.Credentials.OAuth2ClientCredentials.toAuth(), &auth.CredentialsOptions{Base: base})}
	}
	uopts := g.upstreamOptions(m)
	uopts.OnChange = func() {
		g.catalog.rebuild()
		g.subs.resubscribe(m)
	}
	uopts.OnResourceUpdated = func(ctx context.Context, p *mcp.ResourceUpdatedNotificationParams) { g.subs.updated(ctx, m, p) }
	m.up = upstream.New(m.upstreamConfig(g.cfg.Dir, false), &uopts)
	return m
}

// upstreamOptions are the options every connection to m starts from: the
// mount's HTTP client (with its credentials), the gateway's logger and
// name, and progress relayed to the calls that asked for it.
func (g *Gateway) upstreamOptions(m *mount) upstream.Options {
	uopts := g.opts.Upstream
	uopts.HTTPClient = m.http
	uopts.Logger = g.log
	uopts.ClientInfo = g.impl
	uopts.OnProgress = func(_ context.Context, p *mcp.ProgressNotificationParams) { g.progress.relay(p) }
	return uopts
}

// mountList returns the current mounts, in config order.
func (g *Gateway) mountList() []*mount {
	g.mountsMu.RLock()
	defer g.mountsMu.RUnlock()
	return g.mounts
}

// Start connects to every upstream concurrently, in the background. The
// gateway serves at once; entries appear as their upstreams come up.
func (g *Gateway) Start() {
	for _, m := range g.mountList() {
		m.up.Start()
	}
}

// CloseSessions ends every client session, ending their event streams, and
// refuses new ones. An http.Server's Shutdown waits for open streams, so
// call this from RegisterOnShutdown; Close later stops the upstreams.
func (g *Gateway) CloseSessions() {
	g.draining.Store(true)
	g.sessions.closeAll()
}

// Close ends every client session and stops every upstream (and child
// process), returning when they are gone. It is idempotent.
func (g *Gateway) Close() error {
	var err error
	g.closeOnce.Do(func() {
		g.endCalls()
		g.sessions.closeAll()
		g.held.closeAll()
		var wg sync.WaitGroup
		for _, m := range g.mountList() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.up.Close()
			}()
		}
		wg.Wait()
		if g.events != nil {
			g.events.close()
			g.events.log.Close()
		}
		if g.ownStore {
			err = g.store.Close()
			if g.closeRedis != nil {
				g.closeRedis()
			}
		}
	})
	return err
}

// UpstreamStatus reports the health of each upstream, by name.
func (g *Gateway) UpstreamStatus() map[string]upstream.Status {
	mounts := g.mountList()
	out := make(map[string]upstream.Status, len(mounts))
	for _, m := range mounts {
		out[m.name] = m.up.Status()
	}
	return out
}

// Server returns the front door's MCP server (for tests and embedding).
func (g *Gateway) Server() *mcp.Server { return g.server }

// listenerIsLoopback reports whether addr (host:port) binds only loopback.
func listenerIsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hostIsLoopback reports whether a Host header or URL host names loopback.
func hostIsLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var errClosed = errors.New("gateway closed")

// minLevel drops records below its level.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.level}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.level}
}

// replicaID names this process among the gateway's replicas: the host name
// (a pod's name on Kubernetes) and a random suffix, so that a restarted pod
// is a new replica.
func replicaID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "gateway"
	}
	return host + "-" + rand.Text()[:8]
}

// setCacheable settles ttlMs and cacheScope on 2026-07-28 results. With
// authentication on, what a caller may list and read depends on its token,
// so no result may be served from a cache shared between callers: private.
// Without it, the handler's (or upstream's) values stand.
func (g *Gateway) setCacheable(_ context.Context, _ mcp.Request, c *mcp.Cacheable) {
	if g.auth.Mode() != auth.ModeNone {
		c.CacheScope = "private"
	}
}

// eventStore is the SDK's view of g.events: nil (no resumability) without
// Redis.
func (g *Gateway) eventStore() mcp.EventStore {
	if g.events == nil {
		return nil
	}
	return g.events
}
