package gateway

// Metrics, end to end: real traffic through a real gateway (the demo
// upstream as a stdio child, go-sdk clients), then a scrape of the
// exposition as Prometheus would read it.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mcpgw/gateway/auth/authtest"
	"github.com/mcpgw/gateway/sessionstore/redistest"
	"github.com/mcpgw/gateway/upstream"
)

// scrape GETs url (or, if url is "", serves h) and parses the text
// exposition.
func scrape(t *testing.T, h http.Handler, url string) map[string]*dto.MetricFamily {
	t.Helper()
	var body string
	if url == "" {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", PathMetrics, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("metrics handler: status %d, want 200", rec.Code)
		}
		body = rec.Body.String()
	} else {
		resp, data := doRequest(t, "GET", url, "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d, want 200", url, resp.StatusCode)
		}
		body = string(data)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the exposition: %v\n%s", err, body)
	}
	return fams
}

// sample returns the value of the series of family name with exactly the
// given labels: a counter's or gauge's value, a histogram's sample count.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if len(got) != len(want) {
			continue
		}
		match := true
		for k, v := range want {
			if got[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// atLeast checks that a series exists with a value of at least min.
func atLeast(t *testing.T, fams map[string]*dto.MetricFamily, min float64, name string, labels ...string) {
	t.Helper()
	v, ok := sample(fams, name, labels...)
	if !ok {
		t.Errorf("%s%v: no such series", name, labels)
	} else if v < min {
		t.Errorf("%s%v = %v, want at least %v", name, labels, v, min)
	}
}

// equal checks that a series exists with exactly the value want.
func equal(t *testing.T, fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) {
	t.Helper()
	if v, ok := sample(fams, name, labels...); !ok || v != want {
		t.Errorf("%s%v = %v (exists: %t), want %v", name, labels, v, ok, want)
	}
}

// noClientStrings fails if a label value carries anything a client chose.
func noClientStrings(t *testing.T, fams map[string]*dto.MetricFamily, forbidden ...string) {
	t.Helper()
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				for _, s := range forbidden {
					if s != "" && strings.Contains(lp.GetValue(), s) {
						t.Errorf("%s has label %s=%q, which carries %q", name, lp.GetName(), lp.GetValue(), s)
					}
				}
			}
		}
	}
}

// Traffic of every kind shows up in the right series, with bounded labels,
// on MetricsHandler and on the main listener when metrics are public.
func TestMetricsAfterTraffic(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")}, func(c *Config, _ *Options) { c.Metrics.Public = true })
	cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	cs.waitTools(t, "demo up", hasAll("demo__multiply", "demo__slow_count"))
	legacy := connect(t, tg.sseURL(), "sse", "2024-11-05")
	ctx := context.Background()

	callText(t, cs.ClientSession, "demo__multiply", map[string]any{"a": 6, "b": 7})
	callText(t, legacy.ClientSession, "demo__multiply", map[string]any{"a": 2, "b": 3})
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "demo__multiply", Arguments: map[string]any{"a": 2}}); err != nil || !res.IsError {
		t.Fatalf("CallTool(multiply without b) = %v, %v; want a tool error", res, err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "demo__no_such_tool"}); err == nil {
		t.Fatal("CallTool(unknown tool) succeeded")
	}
	const steps = 3
	params := &mcp.CallToolParams{Name: "demo__slow_count", Arguments: map[string]any{"n": steps, "delay_ms": 1}}
	params.SetProgressToken("p")
	if _, err := cs.CallTool(ctx, params); err != nil {
		t.Fatalf("CallTool(slow_count): %v", err)
	}
	if _, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "demo__weather_briefing", Arguments: map[string]string{"state": "CA"}}); err != nil {
		t.Fatalf("GetPrompt: %v", err)
	}
	if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "demo+demo://alerts/sample"}); err != nil {
		t.Fatalf("ReadResource: %v", err)
	}
	if _, err := cs.Complete(ctx, &mcp.CompleteParams{
		Ref:      &mcp.CompleteReference{Type: "ref/prompt", Name: "demo__weather_briefing"},
		Argument: mcp.CompleteParamsArgument{Name: "state", Value: "c"},
	}); err != nil {
		t.Fatalf("Complete: %v", err)
	}

	for _, src := range []struct {
		name string
		url  string
	}{{"MetricsHandler", ""}, {"main listener", tg.srv.URL + PathMetrics}} {
		t.Run(src.name, func(t *testing.T) {
			fams := scrape(t, tg.g.MetricsHandler(), src.url)

			atLeast(t, fams, 1, "mcpgw_requests_total", "method", "initialize", "outcome", "ok")
			atLeast(t, fams, 1, "mcpgw_requests_total", "method", "tools/list", "outcome", "ok")
			atLeast(t, fams, 3, "mcpgw_requests_total", "method", "tools/call", "outcome", "ok")
			equal(t, fams, 1, "mcpgw_requests_total", "method", "tools/call", "outcome", "tool_error")
			equal(t, fams, 1, "mcpgw_requests_total", "method", "tools/call", "outcome", "error")
			equal(t, fams, 1, "mcpgw_requests_total", "method", "prompts/get", "outcome", "ok")
			equal(t, fams, 1, "mcpgw_requests_total", "method", "resources/read", "outcome", "ok")
			equal(t, fams, 5, "mcpgw_request_duration_seconds", "method", "tools/call")

			equal(t, fams, 3, "mcpgw_upstream_requests_total", "upstream", "demo", "method", "tools/call", "outcome", "ok")
			equal(t, fams, 1, "mcpgw_upstream_requests_total", "upstream", "demo", "method", "tools/call", "outcome", "tool_error")
			equal(t, fams, 1, "mcpgw_upstream_requests_total", "upstream", "demo", "method", "prompts/get", "outcome", "ok")
			equal(t, fams, 1, "mcpgw_upstream_requests_total", "upstream", "demo", "method", "resources/read", "outcome", "ok")
			equal(t, fams, 1, "mcpgw_upstream_requests_total", "upstream", "demo", "method", "completion/complete", "outcome", "ok")
			equal(t, fams, 4, "mcpgw_upstream_request_duration_seconds", "upstream", "demo", "method", "tools/call")

			equal(t, fams, 1, "mcpgw_upstream_up", "upstream", "demo")
			equal(t, fams, 1, "mcpgw_upstream_state", "upstream", "demo", "state", "up")
			equal(t, fams, 0, "mcpgw_upstream_state", "upstream", "demo", "state", "down")
			equal(t, fams, 0, "mcpgw_upstream_restarts_total", "upstream", "demo")

			atLeast(t, fams, 1, "mcpgw_sessions_active", "transport", "streamable", "revision", "2025-11-25")
			equal(t, fams, 1, "mcpgw_sessions_active", "transport", "sse", "revision", "2024-11-05")

			// The tool result follows its progress, and the relay counts
			// each notification before it returns.
			atLeast(t, fams, steps, "mcpgw_notifications_relayed_total", "kind", "progress")

			equal(t, fams, 1, "mcpgw_build_info", "version", "dev")
			if _, ok := fams["go_goroutines"]; !ok {
				t.Error("go_goroutines is missing: the Go collector is not registered")
			}
			if _, ok := fams["process_start_time_seconds"]; !ok {
				t.Error("process_start_time_seconds is missing: the process collector is not registered")
			}
			if _, ok := fams["mcpgw_auth_total"]; ok {
				t.Error("mcpgw_auth_total is served without authentication configured")
			}
			noClientStrings(t, fams, "multiply", "slow_count", "weather", "alerts", cs.ID())
		})
	}
}

// Metrics are on the main listener only with metrics.public; MetricsHandler
// serves them either way (for metrics.listen).
func TestMetricsNotPublicByDefault(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{{Name: "echo", Transport: TransportStreamableHTTP, URL: startSDKServer(t, echoServer("e", "echo"), false)}})
	if resp, _ := doRequest(t, "GET", tg.srv.URL+PathMetrics, "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET %s on the main listener: status %d, want 404", PathMetrics, resp.StatusCode)
	}
	fams := scrape(t, tg.g.MetricsHandler(), "")
	equal(t, fams, 1, "mcpgw_build_info", "version", "dev")
}

// Authentication outcomes are counted by kind, and a call the policy
// denies is counted as denied.
func TestMetricsAuthAndDenied(t *testing.T) {
	env := startAuthGateway(t, nil)
	base := env.tg.srv.URL
	if resp, _ := doRequest(t, "POST", base+PathMCP, initBody, jsonHeaders); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: status %d, want 401", resp.StatusCode)
	}
	noScope := env.idp.Token(t, authtest.Claims{Subject: "eve", Audience: []string{testAudience}, Scope: "other"})
	if resp, _ := doRequest(t, "POST", base+PathMCP, initBody, with(jsonHeaders, "Authorization", "Bearer "+noScope)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("missing scope: status %d, want 403", resp.StatusCode)
	}
	if resp, _ := doRequest(t, "POST", base+PathMCP+"?access_token="+env.alice, initBody, jsonHeaders); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("token in the query: status %d, want 400", resp.StatusCode)
	}
	bob := authedClient(t, env.tg.mcpURL(), "streamable", env.bob)
	if _, err := bob.CallTool(context.Background(), &mcp.CallToolParams{Name: "admin__echo", Arguments: map[string]any{"text": "x"}}); err == nil {
		t.Fatal("bob called admin__echo; the policy should deny it")
	}

	fams := scrape(t, env.tg.g.MetricsHandler(), "")
	equal(t, fams, 1, "mcpgw_auth_total", "outcome", "unauthorized")
	equal(t, fams, 1, "mcpgw_auth_total", "outcome", "forbidden")
	equal(t, fams, 1, "mcpgw_auth_total", "outcome", "invalid_request")
	atLeast(t, fams, 2, "mcpgw_auth_total", "outcome", "ok")
	equal(t, fams, 1, "mcpgw_requests_total", "method", "tools/call", "outcome", "denied")
	if _, ok := sample(fams, "mcpgw_upstream_requests_total", "upstream", "admin", "method", "tools/call", "outcome", "ok"); ok {
		t.Error("a denied call was counted as sent upstream")
	}
	noClientStrings(t, fams, "alice", "bob", "eve", env.alice, env.bob)
}

// An upstream that cannot be reached is down in the health series, and a
// request routed to it counts as unavailable.
func TestMetricsUnavailableUpstream(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/mcp"
	dead.Close()
	tg := startGateway(t, []UpstreamConfig{
		demoUpstream("demo"),
		{Name: "gone", Transport: TransportStreamableHTTP, URL: deadURL},
	})
	cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	cs.waitTools(t, "demo up", hasAll("demo__multiply"))
	if _, err := cs.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: "gone+file:///x"}); err == nil {
		t.Fatal("reading from an unreachable upstream succeeded")
	}

	fams := scrape(t, tg.g.MetricsHandler(), "")
	equal(t, fams, 1, "mcpgw_upstream_requests_total", "upstream", "gone", "method", "resources/read", "outcome", "unavailable")
	equal(t, fams, 0, "mcpgw_upstream_up", "upstream", "gone")
	equal(t, fams, 0, "mcpgw_upstream_state", "upstream", "gone", "state", "up")
	equal(t, fams, 1, "mcpgw_upstream_up", "upstream", "demo")
	equal(t, fams, 1, "mcpgw_requests_total", "method", "resources/read", "outcome", "error")
}

func TestCallOutcome(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  mcp.Result
		err  error
		want string
	}{
		{"ok", &mcp.CallToolResult{}, nil, "ok"},
		{"tool error", &mcp.CallToolResult{IsError: true}, nil, "tool_error"},
		{"rpc error", nil, context.Canceled, "error"},
		{"nil result", (*mcp.CallToolResult)(nil), nil, "ok"},
		{"prompt", &mcp.GetPromptResult{}, nil, "ok"},
	} {
		if got := callOutcome(tc.res, tc.err); got != tc.want {
			t.Errorf("callOutcome(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "timeout"},
		{context.Canceled, "cancelled"},
		{fmt.Errorf("upstream %q is down: %w", "x", upstream.ErrUnavailable), "unavailable"},
		{errors.New("broken pipe"), "error"},
	} {
		if got := upstreamOutcome(nil, tc.err); got != tc.want {
			t.Errorf("upstreamOutcome(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// A shared session store's operations are timed, and its failures counted
// (a missing record is no failure).
func TestMetricsSessionStore(t *testing.T) {
	rdb := redistest.Start(t)
	r := startReplicas(t, 1, rdb.URL(), []UpstreamConfig{demoUpstream("demo")})[0]
	cs := connect(t, r.srv.URL+PathMCP, "streamable", "2025-11-25")
	cs.waitTools(t, "demo up", hasAll("demo__multiply"))
	if resp, _ := doRequest(t, "POST", r.srv.URL+PathMCP, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		with(jsonHeaders, headerSessionID, "no-such-session", headerProtocolVersion, "2025-11-25")); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown session: status %d, want 404", resp.StatusCode)
	}
	fams := scrape(t, r.g.MetricsHandler(), "")
	atLeast(t, fams, 1, "mcpgw_session_store_duration_seconds", "op", "create")
	atLeast(t, fams, 1, "mcpgw_session_store_duration_seconds", "op", "touch")
	atLeast(t, fams, 1, "mcpgw_session_store_duration_seconds", "op", "get")
	if _, ok := fams["mcpgw_session_store_errors_total"]; ok {
		t.Errorf("store errors counted with Redis up: %v", fams["mcpgw_session_store_errors_total"])
	}

	rdb.Stop()
	if resp, _ := doRequest(t, "GET", r.srv.URL+PathReady, "", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with Redis down: status %d, want 503", resp.StatusCode)
	}
	if resp, _ := doRequest(t, "POST", r.srv.URL+PathMCP, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		with(jsonHeaders, headerSessionID, cs.ID(), headerProtocolVersion, "2025-11-25")); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("request with Redis down: status %d, want 503", resp.StatusCode)
	}
	fams = scrape(t, r.g.MetricsHandler(), "")
	equal(t, fams, 1, "mcpgw_session_store_errors_total", "op", "ping")
	equal(t, fams, 1, "mcpgw_session_store_errors_total", "op", "touch")
}

// Notifications are counted by kind as the gateway relays them.
func TestMetricsNotificationKinds(t *testing.T) {
	var subs atomic.Int32
	url := startSDKServer(t, watchServer(&subs, make(chan struct{}, 10)), false)
	tg := startGateway(t, []UpstreamConfig{{Name: "w", Transport: TransportStreamableHTTP, URL: url}})
	updates := make(chan string, 10)
	toolsChanged := make(chan struct{}, 10)
	c := mcp.NewClient(&mcp.Implementation{Name: "sub", Version: "1"}, &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) { updates <- req.Params.URI },
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { toolsChanged <- struct{}{} },
	})
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: tg.mcpURL()}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	(&testClient{ClientSession: cs, toolsChanged: toolsChanged}).waitTools(t, "w up", hasAll("w__touch", "w__grow"))

	if err := cs.Subscribe(context.Background(), &mcp.SubscribeParams{URI: "w+file:///a.txt"}); err != nil {
		t.Fatal(err)
	}
	callText(t, cs, "w__touch", map[string]any{"uri": "file:///a.txt"})
	recvTimeout(t, updates, "resources/updated")
	for len(toolsChanged) > 0 {
		<-toolsChanged
	}
	callText(t, cs, "w__grow", map[string]any{"uri": ""})
	recvTimeout(t, toolsChanged, "tools/list_changed")

	fams := scrape(t, tg.g.MetricsHandler(), "")
	equal(t, fams, 1, "mcpgw_notifications_relayed_total", "kind", "resources_updated")
	atLeast(t, fams, 1, "mcpgw_notifications_relayed_total", "kind", "list_changed")
	if _, ok := sample(fams, "mcpgw_notifications_relayed_total", "kind", "progress"); ok {
		t.Error("progress counted without any progress")
	}
}

func TestForgetUpstream(t *testing.T) {
	g := &Gateway{opts: Options{Version: "v"}, log: slog.New(slog.DiscardHandler), server: mcp.NewServer(&mcp.Implementation{Name: "t"}, nil)}
	m := newMetrics(g)
	for _, up := range []string{"a", "b"} {
		observeUpstream(m, up, "tools/call", func() (*mcp.CallToolResult, error) { return &mcp.CallToolResult{}, nil })
	}
	m.forgetUpstream("a")
	fams := scrape(t, m.handler, "")
	if _, ok := sample(fams, "mcpgw_upstream_requests_total", "upstream", "a", "method", "tools/call", "outcome", "ok"); ok {
		t.Error("a's series outlived forgetUpstream")
	}
	equal(t, fams, 1, "mcpgw_upstream_requests_total", "upstream", "b", "method", "tools/call", "outcome", "ok")
	equal(t, fams, 1, "mcpgw_upstream_request_duration_seconds", "upstream", "b", "method", "tools/call")
}
