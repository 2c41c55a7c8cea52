// Package upstream keeps one supervised MCP client connection to each
// configured server: a stdio child process, a remote SSE server or a remote
// Streamable HTTP server.
//
// A connection that fails or drops is re-established with capped exponential
// backoff; while it is down its catalog is empty, Session fails at once with
// an error that wraps ErrUnavailable and names the upstream, and the OnChange
// hook fires so the gateway can withdraw its entries. The catalog (tools,
// prompts, resources, resource templates; every page) is read on connect and
// again, debounced, when the server sends a list_changed notification.
//
// All methods are safe for concurrent use. Close stops the supervisor, ends
// the connection and any child process, and returns when they have exited.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ErrUnavailable is wrapped by the errors of calls to an upstream that is not
// connected.
var ErrUnavailable = errors.New("upstream unavailable")

// Transports.
const (
	TransportStdio          = "stdio"
	TransportSSE            = "sse"
	TransportStreamableHTTP = "streamable-http"
)

// Config describes one upstream server.
type Config struct {
	Name      string
	Transport string // TransportStdio, TransportSSE or TransportStreamableHTTP

	// stdio
	Command string
	Args    []string
	Env     map[string]string // the child's environment, with Options.PassEnv
	Dir     string            // the child's working directory; "" = the gateway's

	// sse, streamable-http
	URL     string
	Headers map[string]string // sent on every request

	// Timeout bounds the initial handshake and each catalog read. If zero, 30s.
	Timeout time.Duration

	// PingInterval, if positive, pings a connected upstream that speaks a
	// revision with ping (2025-era) this often; two pings in a row that get
	// no answer within half the interval end the connection, which is then
	// re-established like any other lost one. A hung stdio child is
	// restarted this way. 2026-07-28 has no ping: its requests are
	// independent, so each one is its own health check.
	PingInterval time.Duration

	// ProtocolVersion is the MCP revision offered to the upstream. If empty,
	// 2025-11-25: the newest sessionful revision, which carries
	// server-to-client requests and notifications on the connection. If
	// 2026-07-28 and the server does not speak it, the connection falls back
	// to 2025-11-25. A 2026-07-28 upstream answers tools/call, prompts/get
	// and resources/read with input_required results instead of sending
	// requests; they reach the caller of CallTool, GetPrompt and
	// ReadResource as they are (see [mcp.CallToolResult.NeedsInput]).
	ProtocolVersion string
}

// Options configure an Upstream. The zero value works.
type Options struct {
	// Logger receives lifecycle events and stdio children's stderr.
	// If nil, nothing is logged.
	Logger *slog.Logger
	// ClientInfo names the gateway to the upstream. If nil, "mcp-gateway".
	ClientInfo *mcp.Implementation
	// OnChange is called, from the supervisor goroutine, after the catalog or
	// the connection state changed. It must not block for long.
	OnChange func()
	// OnProgress and OnResourceUpdated receive the upstream's progress and
	// resource-updated notifications. Either may be nil. They run on the
	// connection's reader and must not block for long.
	OnProgress        func(context.Context, *mcp.ProgressNotificationParams)
	OnResourceUpdated func(context.Context, *mcp.ResourceUpdatedNotificationParams)
	// OnLog receives the upstream's log messages (notifications/message).
	// If nil, they are dropped.
	OnLog func(context.Context, *mcp.LoggingMessageParams)

	// The upstream's requests to its client. Setting a handler declares the
	// matching capability (sampling, elicitation); a nil handler leaves it
	// undeclared, so a well-behaved server never asks.
	CreateMessageHandler func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error)
	ElicitationHandler   func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error)
	// Elicitation, if non-nil and ElicitationHandler is set, is the
	// elicitation capability declared (modes form and url), in place of
	// the SDK's default of form only: a relay declares what the client at
	// the other end declared.
	Elicitation *mcp.ElicitationCapabilities
	// Roots, if non-nil, declares the roots capability and answers
	// roots/list with these roots; SetRoots changes them. If nil, no roots
	// capability is declared: a shared connection has no roots to offer.
	Roots []*mcp.Root
	// ListRootsHandler, if non-nil, declares the roots capability and
	// answers every roots/list with its result, in place of Roots.
	ListRootsHandler func(context.Context, *mcp.ListRootsRequest) (*mcp.ListRootsResult, error)
	// MinBackoff is the first reconnect delay. If zero, 250ms.
	MinBackoff time.Duration
	// MaxBackoff caps the reconnect delay. If zero, 30s.
	MaxBackoff time.Duration
	// RefreshDelay debounces list_changed notifications. If zero, 100ms.
	RefreshDelay time.Duration
	// StopGrace is how long each stage of stopping a stdio child waits
	// (after closing stdin, after SIGTERM). If zero, 3s.
	StopGrace time.Duration
	// PassEnv names the variables of the gateway's environment that stdio
	// children get. If nil, PATH and HOME. Configured env values win.
	PassEnv []string
	// HTTPClient is used for remote upstreams. If nil, a client with no
	// overall timeout (streams are long-lived).
	HTTPClient *http.Client
}

// defaultTransport reaches remote upstreams. http.DefaultTransport keeps
// two idle connections per host, so a gateway with more calls in flight to
// one upstream than that redials it all the time (the benchmark saw
// thousands of sockets in TIME_WAIT); a gateway talks to few hosts, a lot.
var defaultTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	return t
}()

// Catalog is what an upstream offers, as the upstream names it.
type Catalog struct {
	Tools     []*mcp.Tool
	Prompts   []*mcp.Prompt
	Resources []*mcp.Resource
	Templates []*mcp.ResourceTemplate
}

// State is the connection state of an upstream.
type State string

const (
	StateConnecting State = "connecting"
	StateUp         State = "up"
	StateDown       State = "down" // waiting to reconnect
	StateClosed     State = "closed"
)

// Status reports an upstream's health.
type Status struct {
	State     State
	Since     time.Time // when State was entered
	LastError error     // why it last failed, if it did
	Restarts  int       // reconnects after the first successful connection
	PID       int       // the stdio child's process id while it runs; 0 otherwise
}

// An Upstream is one supervised connection. Create it with New, start it
// with Start, end it with Close.
type Upstream struct {
	cfg  Config
	opts Options
	log  *slog.Logger

	refresh  chan struct{} // list_changed seen; buffered 1, coalescing
	progress progressWatch

	// lifetime of the supervisor, detached from Start's caller.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex // guards the fields below
	started   bool
	client    *mcp.Client   // of the current or last connection
	tried     chan struct{} // closed when the first connection attempt has ended
	session   *mcp.ClientSession
	catalog   Catalog
	status    Status
	everUp    bool
	connected time.Time
}

// New returns an Upstream for cfg. It does nothing until Start.
func New(cfg Config, opts *Options) *Upstream {
	u := &Upstream{cfg: cfg, refresh: make(chan struct{}, 1), done: make(chan struct{}), tried: make(chan struct{})}
	if opts != nil {
		u.opts = *opts
	}
	if u.cfg.Timeout <= 0 {
		u.cfg.Timeout = 30 * time.Second
	}
	if u.cfg.ProtocolVersion == "" {
		u.cfg.ProtocolVersion = "2025-11-25"
	}
	o := &u.opts
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ClientInfo == nil {
		o.ClientInfo = &mcp.Implementation{Name: "mcp-gateway", Version: "dev"}
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.RefreshDelay <= 0 {
		o.RefreshDelay = 100 * time.Millisecond
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 3 * time.Second
	}
	if o.PassEnv == nil {
		o.PassEnv = []string{"PATH", "HOME"}
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: defaultTransport}
	}
	u.log = o.Logger.With(slog.String("upstream", cfg.Name))
	u.ctx, u.cancel = context.WithCancel(context.Background())
	u.status = Status{State: StateConnecting, Since: time.Now()}
	return u
}

// Name returns the upstream's configured name.
func (u *Upstream) Name() string { return u.cfg.Name }

// Start launches the supervisor, which connects in the background. It
// returns at once.
func (u *Upstream) Start() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.started {
		return
	}
	u.started = true
	go u.supervise()
}

// Close stops the supervisor and the connection, and returns when any child
// process has exited. It is idempotent.
func (u *Upstream) Close() error {
	u.cancel()
	u.mu.Lock()
	if !u.started {
		u.started = true // a later Start must not launch anything
		close(u.done)    // and there is no supervisor to wait for
	}
	u.mu.Unlock()
	<-u.done
	u.mu.Lock()
	if u.status.State != StateClosed {
		u.status = Status{State: StateClosed, Since: time.Now(), Restarts: u.status.Restarts}
	}
	u.mu.Unlock()
	return nil
}

// Session returns the live client session, or an error wrapping
// ErrUnavailable that names the upstream and the last failure.
func (u *Upstream) Session() (*mcp.ClientSession, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.session != nil {
		return u.session, nil
	}
	if u.status.LastError != nil {
		return nil, fmt.Errorf("upstream %q is %s: %w (last error: %v)", u.cfg.Name, u.status.State, ErrUnavailable, u.status.LastError)
	}
	return nil, fmt.Errorf("upstream %q is %s: %w", u.cfg.Name, u.status.State, ErrUnavailable)
}

// WaitSession is Session, but while the first connection attempt is still
// under way it waits for it (or for ctx) first.
func (u *Upstream) WaitSession(ctx context.Context) (*mcp.ClientSession, error) {
	select {
	case <-u.tried:
	case <-u.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return u.Session()
}

// SetRoots replaces the roots offered to the upstream (see Options.Roots);
// a connected upstream is told with notifications/roots/list_changed.
func (u *Upstream) SetRoots(roots []*mcp.Root) {
	u.mu.Lock()
	old := u.opts.Roots
	u.opts.Roots = roots
	client := u.client
	u.mu.Unlock()
	if client == nil {
		return
	}
	uris := make([]string, len(old))
	for i, r := range old {
		uris[i] = r.URI
	}
	client.RemoveRoots(uris...)
	client.AddRoots(roots...)
}

// Catalog returns what the upstream offers now; empty while it is down. The
// returned values are shared: callers must not modify them.
func (u *Upstream) Catalog() Catalog {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.catalog
}

// Status returns the upstream's health.
func (u *Upstream) Status() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.status
}

// Refresh asks the supervisor to re-read the catalog (debounced).
func (u *Upstream) Refresh() {
	select {
	case u.refresh <- struct{}{}:
	default:
	}
}

func (u *Upstream) supervise() {
	defer close(u.done)
	attempt := 0
	for {
		// Each connection has a context of its own: it outlives the
		// handshake and ends once the session is over.
		life, end := context.WithCancel(u.ctx)
		session, cat, pid, err := u.connect(life, end)
		if err == nil {
			u.setUp(session, cat, pid)
			u.log.LogAttrs(u.ctx, slog.LevelInfo, "upstream connected",
				slog.Int("tools", len(cat.Tools)), slog.Int("prompts", len(cat.Prompts)),
				slog.Int("resources", len(cat.Resources)), slog.Int("templates", len(cat.Templates)))
			err = u.serve(session)
			session.Close()
			end()
			if u.ctx.Err() != nil {
				u.setDown(nil)
				return
			}
			// A connection that stayed up for a while earns a fresh backoff;
			// one that drops at once keeps growing it (a crash loop).
			if time.Since(u.connectedAt()) >= u.opts.MaxBackoff {
				attempt = 0
			}
			u.log.LogAttrs(u.ctx, slog.LevelWarn, "upstream disconnected", slog.Any("err", err))
		} else {
			end()
			if u.ctx.Err() != nil {
				u.setDown(nil)
				return
			}
			u.log.LogAttrs(u.ctx, slog.LevelWarn, "upstream connect failed",
				slog.Any("err", err), slog.Int("attempt", attempt+1))
		}
		u.setDown(err)
		delay := backoff(attempt, u.opts.MinBackoff, u.opts.MaxBackoff)
		attempt++
		t := time.NewTimer(delay)
		select {
		case <-u.ctx.Done():
			t.Stop()
			u.setDown(nil)
			return
		case <-t.C:
		}
	}
}

// backoff returns min * 2^attempt, capped at max.
func backoff(attempt int, min, max time.Duration) time.Duration {
	d := min
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	return time.Duration(min64(int64(d), int64(max)))
}

func min64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

// connect opens a session and reads the whole catalog. The connection lives
// in life; end ends life.
func (u *Upstream) connect(life context.Context, end context.CancelFunc) (*mcp.ClientSession, Catalog, int, error) {
	transport, err := u.transport()
	if err != nil {
		return nil, Catalog{}, 0, err
	}
	pid := 0
	if st, ok := transport.(*mcp.IOTransport); ok {
		pid = st.Writer.(stdinCloser).p.cmd.Process.Pid
	}
	caps := &mcp.ClientCapabilities{}
	u.mu.Lock()
	roots := u.opts.Roots
	u.mu.Unlock()
	if roots != nil {
		caps.RootsV2 = &mcp.RootCapabilities{ListChanged: true}
	}
	if u.opts.ListRootsHandler != nil {
		caps.RootsV2 = &mcp.RootCapabilities{}
	}
	if u.opts.ElicitationHandler != nil && u.opts.Elicitation != nil {
		e := *u.opts.Elicitation
		caps.Elicitation = &e
	}
	client := mcp.NewClient(u.opts.ClientInfo, &mcp.ClientOptions{
		Logger: u.log,
		// input_required results go back to the caller as they are: the
		// answers must come from the client at the other end of the
		// gateway, which only the caller knows.
		MultiRoundTrip:            &mcp.MultiRoundTripOptions{Disabled: true},
		KeepAlive:                 u.cfg.PingInterval,
		KeepAliveFailureThreshold: 2,
		Capabilities:              caps,
		CreateMessageHandler:      u.opts.CreateMessageHandler,
		ElicitationHandler:        u.opts.ElicitationHandler,
		LoggingMessageHandler: func(ctx context.Context, req *mcp.LoggingMessageRequest) {
			if u.opts.OnLog != nil {
				u.opts.OnLog(ctx, req.Params)
			}
		},
		ToolListChangedHandler:     func(context.Context, *mcp.ToolListChangedRequest) { u.Refresh() },
		PromptListChangedHandler:   func(context.Context, *mcp.PromptListChangedRequest) { u.Refresh() },
		ResourceListChangedHandler: func(context.Context, *mcp.ResourceListChangedRequest) { u.Refresh() },
		ProgressNotificationHandler: func(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
			if u.opts.OnProgress != nil {
				u.opts.OnProgress(ctx, req.Params)
			}
			if tok, ok := req.Params.ProgressToken.(string); ok {
				u.progress.done(tok)
			}
		},
		ResourceUpdatedHandler: func(ctx context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			if u.opts.OnResourceUpdated != nil {
				u.opts.OnResourceUpdated(ctx, req.Params)
			}
		},
	})
	if h := u.opts.ElicitationHandler; h != nil {
		client.AddReceivingMiddleware(relayElicitation(h))
	}
	if h := u.opts.ListRootsHandler; h != nil {
		client.AddReceivingMiddleware(answerRoots(h))
	} else if roots == nil {
		// The SDK answers roots/list even when roots were not declared;
		// a server that asks anyway learns that there are none to give.
		client.AddReceivingMiddleware(refuseRoots)
	}
	client.AddRoots(roots...)
	u.mu.Lock()
	u.client = client
	u.mu.Unlock()
	ctx, cancel := context.WithTimeout(u.ctx, u.cfg.Timeout)
	defer cancel()
	// The handshake is bounded by ctx; the connection itself (for SSE, the
	// hanging GET) lives in life, until the session is over.
	lived := lifetimeTransport{Transport: transport, ctx: life, cancel: end}
	session, err := client.Connect(ctx, lived, &mcp.ClientSessionOptions{ProtocolVersion: u.cfg.ProtocolVersion})
	if err != nil {
		// A child that died during the handshake says more than the
		// handshake error does.
		if st, ok := transport.(*mcp.IOTransport); ok {
			p := st.Writer.(stdinCloser).p
			p.stop()
			if perr := p.exitError(); perr != nil {
				return nil, Catalog{}, 0, fmt.Errorf("initializing: %w (%v)", err, perr)
			}
		}
		return nil, Catalog{}, 0, fmt.Errorf("initializing: %w", err)
	}
	cat, err := readCatalog(ctx, session)
	if err != nil {
		session.Close()
		return nil, Catalog{}, 0, err
	}
	return session, cat, pid, nil
}

func (u *Upstream) transport() (mcp.Transport, error) {
	switch u.cfg.Transport {
	case TransportStdio:
		p, err := startProcess(u.cfg, u.opts.PassEnv, u.opts.StopGrace, u.opts.Logger)
		if err != nil {
			return nil, fmt.Errorf("starting %q: %w", u.cfg.Command, err)
		}
		return &mcp.IOTransport{Reader: &lineObserver{r: p.stdout, fn: u.progress.observeLine}, Writer: stdinCloser{p}}, nil
	case TransportSSE:
		return &mcp.SSEClientTransport{Endpoint: u.cfg.URL, HTTPClient: u.httpClient()}, nil
	case TransportStreamableHTTP:
		return &mcp.StreamableClientTransport{Endpoint: u.cfg.URL, HTTPClient: u.httpClient(), MaxRetries: -1}, nil
	default:
		return nil, fmt.Errorf("unknown transport %q", u.cfg.Transport)
	}
}

func (u *Upstream) httpClient() *http.Client {
	c := *u.opts.HTTPClient
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if len(u.cfg.Headers) > 0 {
		base = &headerTransport{base: base, headers: u.cfg.Headers}
	}
	c.Transport = &observingTransport{base: base, fn: u.progress.observeLine}
	return &c
}

// relayElicitation hands elicitation/create to h as it arrived. The SDK's
// client would first check the requested schema against the subset of JSON
// Schema it knows, and the answer against the schema, filling in defaults;
// a relay leaves both to the client at the other end, which owns the form.
func relayElicitation(h func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error)) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if er, ok := req.(*mcp.ElicitRequest); ok && method == "elicitation/create" {
				return h(ctx, er)
			}
			return next(ctx, method, req)
		}
	}
}

// answerRoots answers roots/list with h.
func answerRoots(h func(context.Context, *mcp.ListRootsRequest) (*mcp.ListRootsResult, error)) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if lr, ok := req.(*mcp.ListRootsRequest); ok && method == "roots/list" {
				return h(ctx, lr)
			}
			return next(ctx, method, req)
		}
	}
}

// refuseRoots answers roots/list with "method not found".
func refuseRoots(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if method == "roots/list" {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: "this client offers no roots"}
		}
		return next(ctx, method, req)
	}
}

// lifetimeTransport connects its transport with a context of its own
// rather than the caller's, which bounds only the handshake.
type lifetimeTransport struct {
	mcp.Transport
	ctx    context.Context    // the connection's lifetime
	cancel context.CancelFunc // ends ctx
}

// Connect gives up, ending t.ctx, if the handshake's ctx ends first: an SSE
// server that accepts the GET and never sends its endpoint must not hold the
// supervisor past Config.Timeout.
func (t lifetimeTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	stop := context.AfterFunc(ctx, t.cancel)
	conn, err := t.Transport.Connect(t.ctx)
	if !stop() { // ctx ended during Connect, and t.ctx with it
		if err == nil {
			conn.Close()
		}
		return nil, ctx.Err()
	}
	return conn, err
}

// headerTransport adds the upstream's static headers to every request.
type headerTransport struct {
	base    http.RoundTripper
	headers map[string]string
}

func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range t.headers {
		req.Header.Set(k, v)
	}
	return t.base.RoundTrip(req)
}

// serve waits until the session ends or the upstream is closed, re-reading
// the catalog when the server says it changed.
func (u *Upstream) serve(session *mcp.ClientSession) error {
	ended := make(chan error, 1)
	go func() { ended <- session.Wait() }()
	var debounce <-chan time.Time
	for {
		select {
		case <-u.ctx.Done():
			return nil
		case err := <-ended:
			if err == nil {
				err = errors.New("connection closed")
			}
			return err
		case <-u.refresh:
			if debounce == nil {
				debounce = time.After(u.opts.RefreshDelay)
			}
		case <-debounce:
			debounce = nil
			ctx, cancel := context.WithTimeout(u.ctx, u.cfg.Timeout)
			cat, err := readCatalog(ctx, session)
			cancel()
			if err != nil {
				// Keep the last good catalog; a dead session ends the loop
				// through ended.
				u.log.LogAttrs(u.ctx, slog.LevelWarn, "upstream catalog refresh failed", slog.Any("err", err))
				continue
			}
			u.setCatalog(cat)
		}
	}
}

// readCatalog reads every page of every list the server supports.
func readCatalog(ctx context.Context, s *mcp.ClientSession) (Catalog, error) {
	var cat Catalog
	caps := s.InitializeResult().Capabilities
	if caps == nil {
		caps = &mcp.ServerCapabilities{}
	}
	var err error
	if caps.Tools != nil {
		if cat.Tools, err = collect(s.Tools(ctx, nil)); err != nil {
			return Catalog{}, fmt.Errorf("listing tools: %w", err)
		}
	}
	if caps.Prompts != nil {
		if cat.Prompts, err = collect(s.Prompts(ctx, nil)); err != nil {
			return Catalog{}, fmt.Errorf("listing prompts: %w", err)
		}
	}
	if caps.Resources != nil {
		if cat.Resources, err = collect(s.Resources(ctx, nil)); err != nil {
			return Catalog{}, fmt.Errorf("listing resources: %w", err)
		}
		if cat.Templates, err = collect(s.ResourceTemplates(ctx, nil)); err != nil {
			return Catalog{}, fmt.Errorf("listing resource templates: %w", err)
		}
	}
	return cat, nil
}

func collect[T any](seq func(func(T, error) bool)) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (u *Upstream) connectedAt() time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.connected
}

// markTriedLocked records that the first connection attempt has ended.
func (u *Upstream) markTriedLocked() {
	select {
	case <-u.tried:
	default:
		close(u.tried)
	}
}

func (u *Upstream) setUp(s *mcp.ClientSession, cat Catalog, pid int) {
	u.mu.Lock()
	u.markTriedLocked()
	u.session = s
	u.catalog = cat
	restarts := u.status.Restarts
	if u.everUp {
		restarts++
	}
	u.everUp = true
	u.connected = time.Now()
	u.status = Status{State: StateUp, Since: u.connected, Restarts: restarts, PID: pid}
	u.mu.Unlock()
	u.changed()
}

func (u *Upstream) setCatalog(cat Catalog) {
	u.mu.Lock()
	same := reflect.DeepEqual(u.catalog, cat)
	u.catalog = cat
	u.mu.Unlock()
	if !same {
		u.log.LogAttrs(u.ctx, slog.LevelInfo, "upstream catalog changed",
			slog.Int("tools", len(cat.Tools)), slog.Int("prompts", len(cat.Prompts)),
			slog.Int("resources", len(cat.Resources)), slog.Int("templates", len(cat.Templates)))
		u.changed()
	}
}

// setDown records that the connection is gone; err is why (nil when closing).
func (u *Upstream) setDown(err error) {
	u.mu.Lock()
	u.markTriedLocked()
	wasUp := u.session != nil || len(u.catalog.Tools)+len(u.catalog.Prompts)+len(u.catalog.Resources)+len(u.catalog.Templates) > 0
	u.session = nil
	u.catalog = Catalog{}
	state := StateDown
	if err == nil && u.ctx.Err() != nil {
		state = StateClosed
	}
	switch {
	case u.status.State != state:
		u.status = Status{State: state, Since: time.Now(), LastError: err, Restarts: u.status.Restarts}
	case err != nil:
		// Still down, for a new reason; but down since the first failure.
		u.status.LastError = err
	}
	u.mu.Unlock()
	if wasUp {
		u.changed()
	}
}

func (u *Upstream) changed() {
	if u.opts.OnChange != nil {
		u.opts.OnChange()
	}
}
