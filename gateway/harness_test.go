package gateway

// Test harness: real upstreams (the demo server built once per run and
// started as a stdio child, go-sdk servers on httptest for Streamable HTTP
// and SSE), a real gateway on httptest, and real go-sdk clients. Tests wait
// on events (list_changed notifications, process exits), never on sleeps.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/upstream"
)

// demoBin is the demo server binary, built by TestMain.
var demoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gateway-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	demoBin = filepath.Join(dir, "demo")
	build := exec.Command("go", "build", "-o", demoBin, "../cmd/demo")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the demo server:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// waitTimeout bounds every wait for an event in these tests.
const waitTimeout = 30 * time.Second

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// demoUpstream mounts the demo server as a stdio child.
func demoUpstream(name string) UpstreamConfig {
	return UpstreamConfig{Name: name, Transport: TransportStdio, Command: demoBin, Args: []string{"--stdio", "--name", name}}
}

// startSDKServer serves s over Streamable HTTP (sse=false) or the legacy SSE
// transport (sse=true) on httptest and returns its URL.
func startSDKServer(t *testing.T, s *mcp.Server, sse bool) string {
	t.Helper()
	var h http.Handler
	path := "/mcp"
	if sse {
		h = mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return s }, nil)
		path = "/sse"
	} else {
		h = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + path
}

// echoServer is a go-sdk server with one tool, name, that echoes its "text"
// argument prefixed with tag, plus extra no-op tools.
func echoServer(tag, name string, extra ...string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: tag, Version: "1"}, nil)
	type in struct {
		Text string `json:"text"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: name, Description: "echo"}, func(ctx context.Context, req *mcp.CallToolRequest, in in) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: tag + ":" + in.Text}}}, nil, nil
	})
	for _, n := range extra {
		s.AddTool(&mcp.Tool{Name: n, InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: n}}}, nil
		})
	}
	return s
}

type testGateway struct {
	g   *Gateway
	srv *httptest.Server
}

func (tg *testGateway) mcpURL() string { return tg.srv.URL + PathMCP }
func (tg *testGateway) sseURL() string { return tg.srv.URL + PathSSE }

// startGateway builds, starts and serves a gateway over ups; cleanup closes it.
func startGateway(t testing.TB, ups []UpstreamConfig, mutate ...func(*Config, *Options)) *testGateway {
	t.Helper()
	cfg := &Config{Listen: "127.0.0.1:0", Upstreams: ups, Dir: t.TempDir()}
	cfg.ApplyDefaults()
	opts := &Options{
		Logger: testLogger(t),
		Upstream: upstream.Options{
			MinBackoff: 20 * time.Millisecond,
			MaxBackoff: 500 * time.Millisecond,
			StopGrace:  2 * time.Second,
		},
	}
	for _, f := range mutate {
		f(cfg, opts)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config invalid: %v", err)
	}
	g, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	g.Start()
	srv := httptest.NewServer(g.Handler())
	g.SetAdvertiseURL(srv.Listener.Addr())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		g.Close()
		srv.Close()
	})
	return &testGateway{g: g, srv: srv}
}

// testClient is a go-sdk client session that records list_changed.
type testClient struct {
	*mcp.ClientSession
	toolsChanged chan struct{}
}

// connect opens a client session through the gateway. transport is
// "streamable" or "sse"; version is the protocol revision the client asks
// for ("" = the SDK's newest, 2026-07-28, which is served statelessly).
func connect(t testing.TB, url, transport, version string) *testClient {
	t.Helper()
	tc := &testClient{toolsChanged: make(chan struct{}, 100)}
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case tc.toolsChanged <- struct{}{}:
			default:
			}
		},
	})
	var tr mcp.Transport
	switch transport {
	case "streamable":
		tr = &mcp.StreamableClientTransport{Endpoint: url}
	case "sse":
		tr = &mcp.SSEClientTransport{Endpoint: url}
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	// The SSE transport's stream lives on the context Connect gets, so the
	// handshake is bounded by a timer that closes the session instead.
	timer := time.AfterFunc(waitTimeout, func() { t.Errorf("connecting to %s timed out", url) })
	cs, err := c.Connect(context.Background(), tr, &mcp.ClientSessionOptions{ProtocolVersion: version})
	timer.Stop()
	if err != nil {
		t.Fatalf("connecting to %s over %s: %v", url, transport, err)
	}
	t.Cleanup(func() { cs.Close() })
	tc.ClientSession = cs
	return tc
}

// toolNames lists every tool, following pages.
func toolNames(t testing.TB, cs *mcp.ClientSession) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var names []string
	for tool, err := range cs.Tools(ctx, nil) {
		if err != nil {
			t.Fatalf("listing tools: %v", err)
		}
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

// waitTools waits until the tool list satisfies ok, re-listing whenever the
// gateway says the list changed. It returns the last list.
func (tc *testClient) waitTools(t testing.TB, what string, ok func([]string) bool) []string {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		names := toolNames(t, tc.ClientSession)
		if ok(names) {
			return names
		}
		select {
		case <-tc.toolsChanged:
		case <-deadline.C:
			t.Fatalf("timed out waiting for tools: %s; have %v", what, names)
		}
	}
}

func hasAll(want ...string) func([]string) bool {
	return func(names []string) bool {
		for _, w := range want {
			if !slices.Contains(names, w) {
				return false
			}
		}
		return true
	}
}

func hasNone(unwanted ...string) func([]string) bool {
	return func(names []string) bool {
		for _, w := range unwanted {
			if slices.Contains(names, w) {
				return false
			}
		}
		return true
	}
}

// callText calls a tool and returns the text of its first content item.
func callText(t *testing.T, cs *mcp.ClientSession, name string, args any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("CallTool(%q) failed: %v", name, err)
	}
	if res.IsError {
		t.Fatalf("CallTool(%q) returned a tool error: %v", name, contentText(res.Content))
	}
	return contentText(res.Content)
}

func contentText(content []mcp.Content) string {
	var b strings.Builder
	for _, c := range content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}
