// Servers in this process: the gateway, configured as cmd/gateway
// configures it, and go-sdk upstreams for the scenarios that need many of
// them. Their goroutines carry the pprof label role=gateway or
// role=upstream (goroutines inherit the labels of the one that started
// them), so a CPU profile of the whole process can be split by role.

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/gateway"
	"github.com/mcpgw/gateway/sessionstore"
)

// shutdownTimeout bounds each server's graceful shutdown.
const shutdownTimeout = 10 * time.Second

// gatewayServer is a gateway serving on a loopback port.
type gatewayServer struct {
	g      *gateway.Gateway
	srv    *http.Server
	addr   string // host:port
	served chan error

	closeOnce sync.Once
}

// mcpURL is the gateway's Streamable HTTP endpoint.
func (s *gatewayServer) mcpURL() string { return "http://" + s.addr + gateway.PathMCP }

// gatewayConfig returns the config cmd/gateway would load for ups:
// defaults applied, validated.
func gatewayConfig(ups []gateway.UpstreamConfig) (*gateway.Config, error) {
	cfg := &gateway.Config{Listen: "127.0.0.1:0", Upstreams: ups}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	return cfg, nil
}

// startGateway starts a gateway over ups on a free loopback port. store
// may be nil (the in-memory store). It does not wait for the upstreams.
func startGateway(ctx context.Context, ups []gateway.UpstreamConfig, store sessionstore.Store, log *slog.Logger) (*gatewayServer, error) {
	cfg, err := gatewayConfig(ups)
	if err != nil {
		return nil, err
	}
	g, err := gateway.New(cfg, &gateway.Options{Logger: log, Version: "bench", Store: store})
	if err != nil {
		return nil, fmt.Errorf("building the gateway: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.Close()
		return nil, err
	}
	s := &gatewayServer{g: g, addr: ln.Addr().String(), served: make(chan error, 1)}
	s.srv = &http.Server{
		Handler:           g.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s.srv.RegisterOnShutdown(g.CloseSessions)
	pprof.Do(ctx, pprof.Labels("role", "gateway"), func(context.Context) {
		g.Start()
		go func() { s.served <- s.srv.Serve(ln) }()
	})
	return s, nil
}

// close shuts the gateway down as cmd/gateway does: sessions end, requests
// drain, then the upstreams (and their children) stop. It is idempotent.
func (s *gatewayServer) close() {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.srv.Close()
		}
		<-s.served
		s.g.Close()
	})
}

// toolCondition is what waitTools waits for.
type toolCondition struct {
	want string // for the error: "8", "\"demo__multiply\" among them"
	ok   func(names []string) bool
}

// waitTools waits until the tools a client of the gateway sees satisfy c:
// the catalog is warm. It re-lists whenever the gateway says the list
// changed.
func (s *gatewayServer) waitTools(ctx context.Context, c toolCondition) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	changed := make(chan struct{}, 1)
	client := mcp.NewClient(clientImpl, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case changed <- struct{}{}:
			default:
			}
		},
	})
	// The standalone stream carries list_changed.
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: s.mcpURL(), MaxRetries: -1}, &mcp.ClientSessionOptions{ProtocolVersion: rev20251125})
	if err != nil {
		return fmt.Errorf("connecting to the gateway: %w", err)
	}
	defer cs.Close()
	for {
		var names []string
		for tool, err := range cs.Tools(ctx, nil) {
			if err != nil {
				return fmt.Errorf("listing the gateway's tools: %w", err)
			}
			names = append(names, tool.Name)
		}
		if c.ok(names) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("the gateway offers %d tools, want %s (are its upstreams up?): %w", len(names), c.want, ctx.Err())
		}
	}
}

// newToolServer returns a go-sdk server with n small tools, tool_000 ...,
// each with a two-number schema of its own (as decoded from JSON, like a
// real server's) and a one-line description: a typical upstream tool.
func newToolServer(name string, n int) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: name, Version: "1"}, nil)
	result := &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "42"}}}
	for i := range n {
		s.AddTool(&mcp.Tool{
			Name:        fmt.Sprintf("tool_%03d", i),
			Description: fmt.Sprintf("Multiply two numbers (benchmark tool %d of %s).", i, name),
			InputSchema: map[string]any{
				"type": "object",
				"properties": map[string]any{
					"a": map[string]any{"type": "number", "description": "the first factor"},
					"b": map[string]any{"type": "number", "description": "the second factor"},
				},
				"required": []any{"a", "b"},
			},
		}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return result, nil
		})
	}
	return s
}

// sdkServers serves go-sdk servers over Streamable HTTP, and the first one
// also over the legacy SSE transport, on one loopback listener.
type sdkServers struct {
	srv    *http.Server
	addr   string
	served chan error

	closeOnce sync.Once
}

// startSDKServers serves servers[i] at /u<i>/mcp (and servers[0] at
// /u0/sse too).
func startSDKServers(ctx context.Context, servers []*mcp.Server) (*sdkServers, error) {
	mux := http.NewServeMux()
	for i, s := range servers {
		get := func(*http.Request) *mcp.Server { return s }
		mux.Handle(fmt.Sprintf("/u%d/mcp", i), mcp.NewStreamableHTTPHandler(get, nil))
		if i == 0 {
			mux.Handle("/u0/sse", mcp.NewSSEHandler(get, nil))
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// Shutdown waits for open streams, which end only with the request
	// context: cancel that first.
	streams, endStreams := context.WithCancel(context.Background())
	ss := &sdkServers{addr: ln.Addr().String(), served: make(chan error, 1)}
	ss.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return streams }}
	ss.srv.RegisterOnShutdown(endStreams)
	pprof.Do(ctx, pprof.Labels("role", "upstream"), func(context.Context) {
		go func() { ss.served <- ss.srv.Serve(ln) }()
	})
	return ss, nil
}

// url returns the Streamable HTTP endpoint of server i.
func (s *sdkServers) url(i int) string { return fmt.Sprintf("http://%s/u%d/mcp", s.addr, i) }

// sseURL is the legacy SSE endpoint of server 0.
func (s *sdkServers) sseURL() string { return "http://" + s.addr + "/u0/sse" }

// close ends every stream and session and stops serving. It is
// idempotent.
func (s *sdkServers) close() {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.srv.Close()
		}
		<-s.served
	})
}

// countIs is the condition: exactly n tools.
func countIs(n int) toolCondition {
	return toolCondition{fmt.Sprintf("%d", n), func(names []string) bool { return len(names) == n }}
}

// hasTools is the condition: every one of names is offered.
func hasTools(names ...string) toolCondition {
	return toolCondition{fmt.Sprintf("%q among them", names), func(have []string) bool {
		for _, n := range names {
			if !slices.Contains(have, n) {
				return false
			}
		}
		return true
	}}
}
