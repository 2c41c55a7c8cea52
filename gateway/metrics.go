package gateway

// Metrics: one Prometheus registry per Gateway, never the global default,
// so that several gateways in one process (tests, embedding) do not
// collide. MetricsHandler serves it.
//
// Where each measure is taken:
//
//   - requests at the front door: a receiving middleware on the MCP server,
//     around the gateway's own routing middleware (gate marks the requests
//     the policy denies);
//   - requests to upstreams: around each upstream call in forward.go, and
//     calls refused because the upstream is down in upstreamError;
//   - upstream health and live sessions: collectors that read the
//     gateway's state at scrape time, so nothing can drift from it;
//   - notifications sent to clients: a sending middleware on the MCP server;
//   - authentication: around the auth middleware, in Handler;
//   - a shared session store (Redis): a timing decorator around it.
//
// Labels are low-cardinality by construction: upstream names come from the
// config, methods from the SDK's method table, outcomes and kinds from
// fixed sets, revisions from the supported ones. Nothing a client chooses
// (tool names, arguments, users, session ids) becomes a label.

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mcpgw/gateway/auth"
	"github.com/mcpgw/gateway/sessionstore"
	"github.com/mcpgw/gateway/upstream"
)

// PathMetrics is where metrics are served: on metrics.listen, and on the
// main listener with metrics.public.
const PathMetrics = "/metrics"

// Outcomes of requests, in metrics and audit lines.
const (
	outcomeOK            = "ok"
	outcomeError         = auth.OutcomeError // a JSON-RPC error
	outcomeDenied        = auth.OutcomeDenied
	outcomeToolError     = "tool_error"     // a tool result with isError
	outcomeInputRequired = "input_required" // a 2026-07-28 input_required result
	// Upstream calls only: the kinds of failure worth telling apart.
	outcomeTimeout     = "timeout"
	outcomeCancelled   = "cancelled"
	outcomeUnavailable = "unavailable"
)

// durationBuckets cover MCP calls, from a cached list to a long tool run
// (upstream timeouts default to 30s).
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// metrics are the gateway's Prometheus metrics. A nil *metrics records
// nothing.
type metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	requests         *prometheus.CounterVec   // method, outcome
	requestDuration  *prometheus.HistogramVec // method
	upstreamRequests *prometheus.CounterVec   // upstream, method, outcome
	upstreamDuration *prometheus.HistogramVec // upstream, method
	auth             *prometheus.CounterVec   // outcome
	notifications    *prometheus.CounterVec   // kind
	storeErrors      *prometheus.CounterVec   // op
	storeDuration    *prometheus.HistogramVec // op
}

// newMetrics builds g's registry and hooks it into the gateway: a receiving
// and a sending middleware on g.server, and a timing decorator around a
// shared g.store. New must call it after g.server and g.store are set, and
// after adding the receiving middleware that routes and gates requests, so
// that the requests it answers itself are counted too.
func newMetrics(g *Gateway) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpgw_requests_total",
			Help: "MCP requests handled at the front door, by method and outcome (ok, error, tool_error, input_required, denied).",
		}, []string{"method", "outcome"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mcpgw_request_duration_seconds",
			Help:    "Time to answer an MCP request at the front door, by method (subscriptions/listen lasts as long as the listen).",
			Buckets: durationBuckets,
		}, []string{"method"}),
		upstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpgw_upstream_requests_total",
			Help: "Requests sent to upstreams (tools/call, prompts/get, resources/read, completion/complete) and calls refused because the upstream was down, by outcome (ok, error, tool_error, input_required, timeout, cancelled, unavailable).",
		}, []string{"upstream", "method", "outcome"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mcpgw_upstream_request_duration_seconds",
			Help:    "Time an upstream took to answer a request.",
			Buckets: durationBuckets,
		}, []string{"upstream", "method"}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpgw_auth_total",
			Help: "Authentication decisions on MCP endpoints (auth.mode oauth2), by outcome (ok, unauthorized, forbidden, invalid_request, unavailable).",
		}, []string{"outcome"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpgw_notifications_relayed_total",
			Help: "Notifications sent to clients, by kind (progress, resources_updated, log, list_changed).",
		}, []string{"kind"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpgw_session_store_errors_total",
			Help: "Failed operations on the shared session store (a missing record is not a failure), by operation.",
		}, []string{"op"}),
		storeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mcpgw_session_store_duration_seconds",
			Help:    "Time of operations on the shared session store, by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op"}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "mcpgw_build_info",
		Help:        "Always 1; the version label names the running gateway.",
		ConstLabels: prometheus.Labels{"version": g.opts.Version},
	})
	build.Set(1)
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build,
		m.requests, m.requestDuration,
		m.upstreamRequests, m.upstreamDuration,
		m.auth, m.notifications,
		newUpstreamCollector(g),
		newSessionCollector(g),
	)
	m.handler = promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg,
	}))

	g.server.AddReceivingMiddleware(m.countRequests)
	g.server.AddSendingMiddleware(m.countNotifications)
	if g.sharedStore {
		// A memory store neither waits nor fails; a shared one does both.
		m.reg.MustRegister(m.storeErrors, m.storeDuration)
		g.store = &timedStore{Store: g.store, m: m}
	}
	return m
}

// MetricsHandler serves the gateway's metrics in the Prometheus exposition
// formats. It does no authentication: serve it on an address only
// Prometheus reaches (metrics.listen). The main listener serves it at
// PathMetrics only with metrics.public.
func (g *Gateway) MetricsHandler() http.Handler { return g.metrics.handler }

// countRequests is the receiving middleware that counts and times every
// MCP request (not notifications) the front door answers.
func (m *metrics) countRequests(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if strings.HasPrefix(method, "notifications/") {
			return next(ctx, method, req)
		}
		start := time.Now()
		var denied bool
		res, err := next(context.WithValue(ctx, deniedKey{}, &denied), method, req)
		if errors.Is(err, errNeedsStream) {
			return res, err // counted where it goes on
		}
		outcome := callOutcome(res, err)
		if denied {
			outcome = outcomeDenied
		}
		// method is one of the SDK's: it answers unknown methods before
		// any middleware runs.
		m.requests.WithLabelValues(method, outcome).Inc()
		m.requestDuration.WithLabelValues(method).Observe(time.Since(start).Seconds())
		return res, err
	}
}

// deniedKey marks, in a request's context, the flag that says the policy
// refused the request: its answer looks like any unknown name's.
type deniedKey struct{}

// markDenied notes that the policy refused the request of ctx.
func markDenied(ctx context.Context) {
	if denied, _ := ctx.Value(deniedKey{}).(*bool); denied != nil {
		*denied = true
	}
}

// countNotifications is the sending middleware that counts the
// notifications sent to clients. A notification is counted as it is sent,
// so that a client that has it can already see it counted; one that fails
// (its session just ended) is counted all the same.
func (m *metrics) countNotifications(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if kind := notificationKind(method); kind != "" {
			m.notifications.WithLabelValues(kind).Inc()
		}
		return next(ctx, method, req)
	}
}

func notificationKind(method string) string {
	switch method {
	case "notifications/progress":
		return "progress"
	case "notifications/resources/updated":
		return "resources_updated"
	case "notifications/message":
		return "log"
	case "notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed":
		return "list_changed"
	}
	return ""
}

// observeUpstream runs one request to an upstream (call) and records it.
func observeUpstream[R mcp.Result](m *metrics, upstreamName, method string, call func() (R, error)) (R, error) {
	start := time.Now()
	res, err := call()
	if m != nil {
		m.upstreamRequests.WithLabelValues(upstreamName, method, upstreamOutcome(res, err)).Inc()
		m.upstreamDuration.WithLabelValues(upstreamName, method).Observe(time.Since(start).Seconds())
	}
	return res, err
}

// upstreamUnavailable counts a call refused because its upstream is down;
// it never reached the upstream, so it has no duration.
func (m *metrics) upstreamUnavailable(upstreamName, method string) {
	if m == nil {
		return
	}
	m.upstreamRequests.WithLabelValues(upstreamName, method, outcomeUnavailable).Inc()
}

// forgetUpstream drops the request series of an upstream that a reload
// removed, so that they do not linger until the process ends. (Its health
// series go by themselves: they are read from the mounts at scrape time.)
func (m *metrics) forgetUpstream(name string) {
	if m == nil {
		return
	}
	m.upstreamRequests.DeletePartialMatch(prometheus.Labels{"upstream": name})
	m.upstreamDuration.DeletePartialMatch(prometheus.Labels{"upstream": name})
}

// callOutcome classifies the answer to a request: ok, error, tool_error or
// input_required.
func callOutcome(res mcp.Result, err error) string {
	if err != nil {
		return outcomeError
	}
	switch r := res.(type) {
	case *mcp.CallToolResult:
		switch {
		case r == nil:
		case r.IsError:
			return outcomeToolError
		case r.NeedsInput():
			return outcomeInputRequired
		}
	case *mcp.GetPromptResult:
		if r != nil && r.NeedsInput() {
			return outcomeInputRequired
		}
	case *mcp.ReadResourceResult:
		if r != nil && r.NeedsInput() {
			return outcomeInputRequired
		}
	}
	return outcomeOK
}

// upstreamOutcome is callOutcome, with failures that are not the
// upstream's own answer told apart.
func upstreamOutcome(res mcp.Result, err error) string {
	switch {
	case err == nil:
		return callOutcome(res, nil)
	case errors.Is(err, context.DeadlineExceeded):
		return outcomeTimeout
	case errors.Is(err, context.Canceled):
		return outcomeCancelled
	case errors.Is(err, upstream.ErrUnavailable):
		return outcomeUnavailable
	}
	return outcomeError
}

// authCounted returns a's middleware, counting its decisions. In mode none
// there are none to count.
func (m *metrics) authCounted(a *auth.Authenticator) func(http.Handler) http.Handler {
	if m == nil || a.Mode() == auth.ModeNone {
		return a.Middleware
	}
	return func(next http.Handler) http.Handler {
		passed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ok, _ := r.Context().Value(authPassedKey{}).(*bool); ok != nil {
				*ok = true
			}
			m.auth.WithLabelValues("ok").Inc()
			next.ServeHTTP(w, r)
		})
		protected := a.Middleware(passed)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ok := false
			rec := &responseRecorder{ResponseWriter: w}
			protected.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), authPassedKey{}, &ok)))
			if ok {
				return
			}
			// The authenticator answered itself: its status says why.
			outcome := "unauthorized"
			switch rec.Status() {
			case http.StatusForbidden:
				outcome = "forbidden"
			case http.StatusBadRequest:
				outcome = "invalid_request" // e.g. a token in the query string
			case http.StatusServiceUnavailable:
				outcome = "unavailable" // the identity provider is unreachable
			}
			m.auth.WithLabelValues(outcome).Inc()
		})
	}
}

// authPassedKey marks, in a request's context, a flag the authenticated
// handler sets.
type authPassedKey struct{}

// upstreamCollector reports each upstream's health at scrape time.
type upstreamCollector struct {
	g                  *Gateway
	up, state, restart *prometheus.Desc
}

func newUpstreamCollector(g *Gateway) *upstreamCollector {
	return &upstreamCollector{
		g:       g,
		up:      prometheus.NewDesc("mcpgw_upstream_up", "1 if the upstream's shared connection is up, else 0.", []string{"upstream"}, nil),
		state:   prometheus.NewDesc("mcpgw_upstream_state", "1 for the state the upstream's shared connection is in (connecting, up, down, closed), 0 for the others.", []string{"upstream", "state"}, nil),
		restart: prometheus.NewDesc("mcpgw_upstream_restarts_total", "Reconnects of the upstream's shared connection after its first successful one.", []string{"upstream"}, nil),
	}
}

var upstreamStates = []upstream.State{upstream.StateConnecting, upstream.StateUp, upstream.StateDown, upstream.StateClosed}

func (c *upstreamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.state
	ch <- c.restart
}

func (c *upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	for name, st := range c.g.UpstreamStatus() {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, boolValue(st.State == upstream.StateUp), name)
		for _, s := range upstreamStates {
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, boolValue(st.State == s), name, string(s))
		}
		if !slices.Contains(upstreamStates, st.State) {
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, 1, name, string(st.State))
		}
		ch <- prometheus.MustNewConstMetric(c.restart, prometheus.CounterValue, float64(st.Restarts), name)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// sessionCollector counts the live sessionful sessions at scrape time.
// Stateless (2026-07-28) requests have no session to count.
type sessionCollector struct {
	g      *Gateway
	active *prometheus.Desc
}

func newSessionCollector(g *Gateway) *sessionCollector {
	return &sessionCollector{g: g, active: prometheus.NewDesc("mcpgw_sessions_active",
		"Live client sessions on this replica, by transport (streamable, sse) and negotiated protocol revision (pending during the handshake).",
		[]string{"transport", "revision"}, nil)}
}

func (c *sessionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.active }

func (c *sessionCollector) Collect(ch chan<- prometheus.Metric) {
	if c.g.sessions == nil {
		return
	}
	type key struct{ transport, revision string }
	counts := map[key]int{}
	for _, ls := range c.g.sessions.snapshot() {
		ls.mu.Lock()
		ss := ls.session
		ls.mu.Unlock()
		revision := "pending"
		if ss != nil {
			if p := ss.InitializeParams(); p != nil {
				revision = revisionLabel(p.ProtocolVersion)
			}
		}
		counts[key{ls.kind(), revision}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(n), k.transport, k.revision)
	}
}

// revisionLabel bounds a client-sent protocol version to the supported
// ones.
func revisionLabel(v string) string {
	if slices.Contains(mcp.SupportedProtocolVersions(), v) {
		return v
	}
	return "other"
}

// timedStore times and counts the operations of a session store.
type timedStore struct {
	sessionstore.Store
	m *metrics
}

var _ sessionstore.Store = (*timedStore)(nil)

func (s *timedStore) observe(op string, start time.Time, err error) {
	s.m.storeDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, sessionstore.ErrNotFound) {
		s.m.storeErrors.WithLabelValues(op).Inc()
	}
}

func (s *timedStore) Create(ctx context.Context, rec *sessionstore.Record, ttl time.Duration) error {
	start := time.Now()
	err := s.Store.Create(ctx, rec, ttl)
	s.observe("create", start, err)
	return err
}

func (s *timedStore) Get(ctx context.Context, id string) (*sessionstore.Record, error) {
	start := time.Now()
	rec, err := s.Store.Get(ctx, id)
	s.observe("get", start, err)
	return rec, err
}

func (s *timedStore) Update(ctx context.Context, rec *sessionstore.Record, ttl time.Duration) error {
	start := time.Now()
	err := s.Store.Update(ctx, rec, ttl)
	s.observe("update", start, err)
	return err
}

func (s *timedStore) Touch(ctx context.Context, id string, ttl time.Duration) error {
	start := time.Now()
	err := s.Store.Touch(ctx, id, ttl)
	s.observe("touch", start, err)
	return err
}

func (s *timedStore) Delete(ctx context.Context, id string) error {
	start := time.Now()
	err := s.Store.Delete(ctx, id)
	s.observe("delete", start, err)
	return err
}

// Ping passes readiness checks through to stores that have them; a store
// without one is always reachable.
func (s *timedStore) Ping(ctx context.Context) error {
	p, ok := s.Store.(interface{ Ping(context.Context) error })
	if !ok {
		return nil
	}
	start := time.Now()
	err := p.Ping(ctx)
	s.observe("ping", start, err)
	return err
}
