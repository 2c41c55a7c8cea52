package gateway

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// progressClient connects a client that records the progress it receives.
func progressClient(t *testing.T, url, transport, version string, got chan<- *mcp.ProgressNotificationParams) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "progress-client", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			got <- req.Params
		},
	})
	var tr mcp.Transport = &mcp.StreamableClientTransport{Endpoint: url}
	if transport == "sse" {
		tr = &mcp.SSEClientTransport{Endpoint: url}
	}
	cs, err := c.Connect(context.Background(), tr, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// Progress reaches the client that asked for it, with its own token, in
// order, even when several clients use the same token at once over one
// shared upstream connection.
func TestProgressRelayedToItsCaller(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")})
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "demo up", hasAll("demo__slow_count"))

	clients := []struct{ transport, url, version string }{
		{"streamable", tg.mcpURL(), "2025-11-25"},
		{"streamable", tg.mcpURL(), "2025-11-25"},
		{"streamable", tg.mcpURL(), "2026-07-28"},
		{"sse", tg.sseURL(), "2024-11-05"},
	}
	const steps = 5
	var wg sync.WaitGroup
	for i, c := range clients {
		got := make(chan *mcp.ProgressNotificationParams, 100)
		cs := progressClient(t, c.url, c.transport, c.version, got)
		wg.Add(1)
		go func() {
			defer wg.Done()
			params := &mcp.CallToolParams{Name: "demo__slow_count", Arguments: map[string]any{"n": steps, "delay_ms": 10}}
			params.SetProgressToken("same-token")
			if _, err := cs.CallTool(context.Background(), params); err != nil {
				t.Errorf("client %d (%s %s): call failed: %v", i, c.transport, c.version, err)
				return
			}
			// The SDK client hands notifications to a handler goroutine,
			// so they may surface after CallTool returned: wait for them.
			var seen []float64
			timeout := time.After(waitTimeout)
			for len(seen) < steps {
				var p *mcp.ProgressNotificationParams
				select {
				case p = <-got:
				case <-timeout:
					t.Errorf("client %d (%s %s): got %d progress notifications %v, want %d", i, c.transport, c.version, len(seen), seen, steps)
					return
				}
				if p.ProgressToken != "same-token" {
					t.Errorf("client %d: progress token %v, want same-token", i, p.ProgressToken)
				}
				seen = append(seen, p.Progress)
			}
			for j := 1; j < len(seen); j++ {
				if seen[j] <= seen[j-1] {
					t.Errorf("client %d: progress out of order: %v", i, seen)
				}
			}
		}()
	}
	wg.Wait()
}

// watchServer offers two subscribable resources and a tool that reports
// one of them updated. It counts upstream subscribe calls.
func watchServer(subs *atomic.Int32, unsubscribed chan<- struct{}) *mcp.Server {
	var s *mcp.Server
	s = mcp.NewServer(&mcp.Implementation{Name: "watch", Version: "1"}, &mcp.ServerOptions{
		SubscribeHandler: func(context.Context, *mcp.SubscribeRequest) error { subs.Add(1); return nil },
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error {
			subs.Add(-1)
			unsubscribed <- struct{}{}
			return nil
		},
	})
	for _, uri := range []string{"file:///a.txt", "file:///b.txt"} {
		s.AddResource(&mcp.Resource{URI: uri, Name: uri}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "x"}}}, nil
		})
	}
	type in struct {
		URI string `json:"uri"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "touch"}, func(ctx context.Context, _ *mcp.CallToolRequest, in in) (*mcp.CallToolResult, any, error) {
		s.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: in.URI})
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "touched"}}}, nil, nil
	})
	// grow adds a tool, so that the upstream's tool list changes.
	mcp.AddTool(s, &mcp.Tool{Name: "grow"}, func(ctx context.Context, _ *mcp.CallToolRequest, in in) (*mcp.CallToolResult, any, error) {
		s.AddTool(&mcp.Tool{Name: "grown", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{}, nil
		})
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "grown"}}}, nil, nil
	})
	return s
}

// A 2026-07-28 client has no session and no GET stream: it listens
// (subscriptions/listen) for resource updates and list changes, which the
// gateway serves from the upstream's notifications, under public URIs, to
// the listening client only; the upstream subscription ends with the
// listen.
func TestListenForModernClients(t *testing.T) {
	var upstreamSubs atomic.Int32
	unsubscribed := make(chan struct{}, 10)
	url := startSDKServer(t, watchServer(&upstreamSubs, unsubscribed), false)
	tg := startGateway(t, []UpstreamConfig{{Name: "w", Transport: TransportStreamableHTTP, URL: url}})
	legacy := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	legacy.waitTools(t, "w up", hasAll("w__touch"))

	updates := make(chan string, 10)
	toolsChanged := make(chan struct{}, 10)
	c := mcp.NewClient(&mcp.Implementation{Name: "listener", Version: "1"}, &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) { updates <- req.Params.URI },
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { toolsChanged <- struct{}{} },
	})
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: tg.mcpURL()}, &mcp.ClientSessionOptions{ProtocolVersion: version20260728})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	ctx := callCtx(t)
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "w+file:///a.txt"}); err != nil {
		t.Fatal(err)
	}
	if n := upstreamSubs.Load(); n != 1 {
		t.Errorf("upstream subscriptions = %d, want 1", n)
	}
	callText(t, legacy.ClientSession, "w__touch", map[string]any{"uri": "file:///b.txt"})
	callText(t, legacy.ClientSession, "w__touch", map[string]any{"uri": "file:///a.txt"})
	select {
	case got := <-updates:
		if got != "w+file:///a.txt" {
			t.Errorf("update for %q, want w+file:///a.txt (and none for b.txt)", got)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the listening client got no update")
	}

	callText(t, legacy.ClientSession, "w__grow", map[string]any{"uri": ""})
	// A change told before the grow (the catalog's first build, 10ms
	// after it happened) may still be queued: wait for the one that brings
	// w__grown.
	for deadline := time.After(waitTimeout); ; {
		select {
		case <-toolsChanged:
		case <-deadline:
			t.Fatalf("the listening client was not told that the tools changed (tools: %v, want w__grown)", toolNames(t, cs))
		}
		if slices.Contains(toolNames(t, cs), "w__grown") {
			break
		}
	}

	if err := cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: "w+file:///a.txt"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-unsubscribed:
	case <-time.After(waitTimeout):
		t.Fatal("the upstream subscription outlived the listen")
	}
	if len(updates) > 0 {
		t.Errorf("unexpected update %q", <-updates)
	}
}

// resources/updated reaches the subscribed sessions only, under the public
// URI; the upstream sees one subscription per URI however many clients
// subscribe, and it is released when the last one leaves.
func TestResourceSubscriptions(t *testing.T) {
	var upstreamSubs atomic.Int32
	unsubscribed := make(chan struct{}, 10)
	url := startSDKServer(t, watchServer(&upstreamSubs, unsubscribed), false)
	tg := startGateway(t, []UpstreamConfig{{Name: "w", Transport: TransportStreamableHTTP, URL: url}})
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "w up", hasAll("w__touch"))

	type client struct {
		cs      *mcp.ClientSession
		updates chan string
	}
	newClient := func() client {
		updates := make(chan string, 10)
		c := mcp.NewClient(&mcp.Implementation{Name: "sub", Version: "1"}, &mcp.ClientOptions{
			ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) { updates <- req.Params.URI },
		})
		cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: tg.mcpURL()}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		return client{cs, updates}
	}
	ctx := context.Background()
	a, b, a2 := newClient(), newClient(), newClient()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "w+file:///a.txt"}))
	must(a2.cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "w+file:///a.txt"}))
	must(b.cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "w+file:///b.txt"}))
	if n := upstreamSubs.Load(); n != 2 {
		t.Errorf("upstream subscriptions = %d, want 2 (one per URI)", n)
	}

	callText(t, a.cs, "w__touch", map[string]any{"uri": "file:///a.txt"})
	callText(t, a.cs, "w__touch", map[string]any{"uri": "file:///b.txt"})
	for _, c := range []struct {
		name string
		cl   client
		want string
	}{{"a", a, "w+file:///a.txt"}, {"a2", a2, "w+file:///a.txt"}, {"b", b, "w+file:///b.txt"}} {
		select {
		case got := <-c.cl.updates:
			if got != c.want {
				t.Errorf("client %s got an update for %q, want %q", c.name, got, c.want)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("client %s got no update", c.name)
		}
	}

	must(a.cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: "w+file:///a.txt"}))
	if n := upstreamSubs.Load(); n != 2 {
		t.Errorf("after one of two unsubscribed: upstream subscriptions = %d, want 2", n)
	}
	must(a2.cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: "w+file:///a.txt"}))
	if n := upstreamSubs.Load(); n != 1 {
		t.Errorf("after both unsubscribed: upstream subscriptions = %d, want 1", n)
	}
	// A session that ends releases its subscriptions.
	<-unsubscribed // a's and a2's release of a.txt
	b.cs.Close()
	select {
	case <-unsubscribed:
	case <-time.After(waitTimeout):
		t.Fatal("the ended session's subscription was never released upstream")
	}
	if n := upstreamSubs.Load(); n != 0 {
		t.Errorf("after the last subscriber's session ended: upstream subscriptions = %d, want 0", n)
	}
	for name, ch := range map[string]chan string{"a": a.updates, "a2": a2.updates, "b": b.updates} {
		if len(ch) > 0 {
			t.Errorf("client %s got an update it did not subscribe to: %q", name, <-ch)
		}
	}

	_, err := a.cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "w+file:///a.txt"})
	must(err)
	if err := a.cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "nowhere://x"}); rpcCode(err) != CodeResourceNotFound {
		t.Errorf("subscribe to an unknown URI: error %v, want code %d", err, CodeResourceNotFound)
	}
}

// blockServer's tool "block" runs until its context ends, reporting start
// and cancellation.
func blockServer(started, cancelled chan<- struct{}) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "block", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "block", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, _ *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		started <- struct{}{}
		<-ctx.Done()
		cancelled <- struct{}{}
		return nil, ctx.Err()
	})
	return s
}

// A client that cancels a call stops it upstream, on every transport and
// revision: notifications/cancelled for 2025-era sessions and SSE, a closed
// stream for 2026-07-28.
func TestCancellationReachesUpstream(t *testing.T) {
	started, cancelled := make(chan struct{}, 1), make(chan struct{}, 1)
	url := startSDKServer(t, blockServer(started, cancelled), false)
	tg := startGateway(t, []UpstreamConfig{{Name: "b", Transport: TransportStreamableHTTP, URL: url}})
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "b up", hasAll("b__block"))

	for _, c := range []struct{ name, transport, url, version string }{
		{"streamable 2025-11-25", "streamable", tg.mcpURL(), "2025-11-25"},
		{"stateless 2026-07-28", "streamable", tg.mcpURL(), "2026-07-28"},
		{"sse", "sse", tg.sseURL(), "2024-11-05"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := connect(t, c.url, c.transport, c.version)
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "b__block"})
				errc <- err
			}()
			select {
			case <-started:
			case <-time.After(waitTimeout):
				t.Fatal("the call never reached the upstream")
			}
			cancel()
			select {
			case <-cancelled:
			case <-time.After(waitTimeout):
				t.Fatal("the upstream call was not cancelled")
			}
			if err := <-errc; err == nil {
				t.Error("the cancelled call returned no error")
			}
		})
	}
}
