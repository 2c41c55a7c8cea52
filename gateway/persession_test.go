package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// askServer's tools ask their client for things: sampling, elicitation,
// roots, and a log message.
func askServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "ask", Version: "1"}, nil)
	obj := map[string]any{"type": "object"}
	text := func(format string, args ...any) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf(format, args...)}}}
	}
	s.AddTool(&mcp.Tool{Name: "sample", InputSchema: obj}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
			Messages:  []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "hi"}}},
			MaxTokens: 10,
		})
		if err != nil {
			return text("sampling failed: %v", err), nil
		}
		return text("sampled: %s", res.Content.(*mcp.TextContent).Text), nil
	})
	s.AddTool(&mcp.Tool{Name: "elicit", InputSchema: obj}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
			Message:         "who are you?",
			RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}},
		})
		if err != nil {
			return text("elicitation failed: %v", err), nil
		}
		return text("%s %v", res.Action, res.Content["name"]), nil
	})
	s.AddTool(&mcp.Tool{Name: "roots", InputSchema: obj}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := req.Session.ListRoots(ctx, nil)
		if err != nil {
			return text("roots failed: %v", err), nil
		}
		var uris []string
		for _, r := range res.Roots {
			uris = append(uris, r.URI)
		}
		return text("roots: %s", strings.Join(uris, ",")), nil
	})
	s.AddTool(&mcp.Tool{Name: "log", InputSchema: obj}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "info", Logger: "ask", Data: "hello"})
		return text("logged"), nil
	})
	return s
}

type askClient struct {
	cs   *mcp.ClientSession
	logs chan string
}

// newAskClient connects a client named name that answers sampling and
// elicitation with its name, offers the root file:///name, and records the
// log messages it gets. bare leaves out every capability.
func newAskClient(t *testing.T, url, transport, name string, bare bool) *askClient {
	t.Helper()
	ac := &askClient{logs: make(chan string, 1000)}
	opts := &mcp.ClientOptions{
		LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) { ac.logs <- fmt.Sprint(req.Params.Data) },
	}
	if bare {
		opts.Capabilities = &mcp.ClientCapabilities{}
	} else {
		opts.CreateMessageHandler = func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: "assistant", Model: "test", Content: &mcp.TextContent{Text: "from " + name}}, nil
		}
		opts.ElicitationHandler = func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			// A yes/no form (the demo's greet confirmation) gets yes.
			if schema, _ := json.Marshal(req.Params.RequestedSchema); strings.Contains(string(schema), `"ok"`) {
				return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"ok": true}}, nil
			}
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": name}}, nil
		}
	}
	c := mcp.NewClient(&mcp.Implementation{Name: name, Version: "1"}, opts)
	if !bare {
		c.AddRoots(&mcp.Root{URI: "file:///" + name})
	}
	var tr mcp.Transport = &mcp.StreamableClientTransport{Endpoint: url}
	version := "2025-11-25"
	switch transport {
	case "sse":
		tr, version = &mcp.SSEClientTransport{Endpoint: url}, "2024-11-05"
	case "streamable, no GET stream":
		tr = &mcp.StreamableClientTransport{Endpoint: url, DisableStandaloneSSE: true}
	}
	cs, err := c.Connect(context.Background(), tr, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	t.Cleanup(func() { cs.Close() })
	if err := cs.SetLoggingLevel(context.Background(), &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
		t.Fatalf("setLevel: %v", err)
	}
	ac.cs = cs
	return ac
}

// With sharing: per-session, each client's own connection carries its
// capabilities: the upstream's sampling, elicitation, roots and log messages
// reach that client and no other, on every transport; a client without the
// capability makes the upstream's request fail at once instead of hanging.
func TestPerSessionRelaysServerRequests(t *testing.T) {
	url := startSDKServer(t, askServer(), false)
	tg := startGateway(t, []UpstreamConfig{
		{Name: "ask", Transport: TransportStreamableHTTP, URL: url, Sharing: SharingPerSession},
		{Name: "shared", Transport: TransportStreamableHTTP, URL: url},
	})
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "up", hasAll("ask__sample", "shared__sample"))

	clients := map[string]*askClient{
		"alice": newAskClient(t, tg.mcpURL(), "streamable", "alice", false),
		"bob":   newAskClient(t, tg.mcpURL(), "streamable", "bob", false),
		"carol": newAskClient(t, tg.sseURL(), "sse", "carol", false),
	}
	var wg sync.WaitGroup
	for name, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tool, want := range map[string]string{
				"ask__sample": "sampled: from " + name,
				"ask__elicit": "accept " + name,
				"ask__roots":  "roots: file:///" + name,
				"ask__log":    "logged",
			} {
				if got := callText(t, c.cs, tool, nil); got != want {
					t.Errorf("%s: %s = %q, want %q", name, tool, got, want)
				}
			}
			select {
			case got := <-c.logs:
				if got != "hello" {
					t.Errorf("%s: log message %q, want hello", name, got)
				}
			case <-time.After(waitTimeout):
				t.Errorf("%s: no log message", name)
			}
		}()
	}
	wg.Wait()
	for name, c := range clients {
		if len(c.logs) > 0 {
			t.Errorf("%s got another client's log message: %q", name, <-c.logs)
		}
	}

	// No capability: the upstream's request fails fast.
	bare := newAskClient(t, tg.mcpURL(), "streamable", "dave", true)
	for tool, want := range map[string]string{"ask__sample": "sampling failed", "ask__elicit": "elicitation failed", "ask__roots": "roots failed"} {
		if got := callText(t, bare.cs, tool, nil); !strings.HasPrefix(got, want) {
			t.Errorf("client without capabilities: %s = %q, want %q...", tool, got, want)
		}
	}
	// A shared connection declares no client capabilities.
	if got := callText(t, clients["alice"].cs, "shared__sample", nil); !strings.HasPrefix(got, "sampling failed") {
		t.Errorf("shared__sample = %q, want sampling to fail", got)
	}

	// Each session's own connections end with the session.
	tg.g.sessions.mu.Lock()
	var live []*liveSession
	for _, ls := range tg.g.sessions.live {
		live = append(live, ls)
	}
	tg.g.sessions.mu.Unlock()
	var withOwn []*liveSession
	for _, ls := range live {
		ls.mu.Lock()
		if len(ls.ups) > 0 {
			withOwn = append(withOwn, ls)
		}
		ls.mu.Unlock()
	}
	if len(withOwn) != 4 {
		t.Errorf("%d sessions have their own upstream connection, want 4", len(withOwn))
	}
	for _, c := range clients {
		c.cs.Close()
	}
	bare.cs.Close()
	for _, ls := range withOwn {
		select {
		case <-ls.ended:
		case <-time.After(waitTimeout):
			t.Fatalf("session %s did not end", ls.id)
		}
		ls.mu.Lock()
		n := len(ls.ups)
		ls.mu.Unlock()
		if n != 0 {
			t.Errorf("session %s ended with %d upstream connections open", ls.id, n)
		}
	}
}

// An upstream's request during a client's call goes out on that call's own
// stream, as the spec has it: a client that never opens the standalone
// stream gets it all the same. (Log messages go there too when they arrive
// while the call runs; the upstream's client may hand them over after the
// result, so they are not checked here.)
func TestPerSessionRequestsOnTheCallsStream(t *testing.T) {
	url := startSDKServer(t, askServer(), false)
	tg := startGateway(t, []UpstreamConfig{{Name: "ask", Transport: TransportStreamableHTTP, URL: url, Sharing: SharingPerSession}})
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "up", hasAll("ask__sample"))
	c := newAskClient(t, tg.mcpURL(), "streamable, no GET stream", "erin", false)
	for _, tc := range []struct{ tool, want string }{
		{"ask__sample", "sampled: from erin"},
		{"ask__elicit", "accept erin"},
	} {
		if got := callText(t, c.cs, tc.tool, nil); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.tool, got, tc.want)
		}
	}
}

// An upstream's request that no call caused (a background task) may go out
// on the stream of whatever call is in flight then; it lasts as long as the
// upstream waits, not as long as that call.
func TestPerSessionBackgroundRequestOutlivesTheCall(t *testing.T) {
	ask, release := make(chan struct{}), make(chan struct{})
	outcome := make(chan string, 1)
	s := mcp.NewServer(&mcp.Implementation{Name: "bg", Version: "1"}, nil)
	obj := map[string]any{"type": "object"}
	s.AddTool(&mcp.Tool{Name: "bg", InputSchema: obj}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		go func() {
			<-ask
			res, err := req.Session.Elicit(context.Background(), &mcp.ElicitParams{Message: "later?",
				RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}}})
			if err != nil {
				outcome <- "error: " + err.Error()
				return
			}
			outcome <- res.Action
		}()
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "started"}}}, nil
	})
	s.AddTool(&mcp.Tool{Name: "hold", InputSchema: obj}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		<-release
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "held"}}}, nil
	})
	tg := startGateway(t, []UpstreamConfig{{Name: "u", Transport: TransportStreamableHTTP, URL: startSDKServer(t, s, false), Sharing: SharingPerSession}})
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "up", hasAll("u__hold"))

	asked, answer := make(chan struct{}, 1), make(chan struct{})
	c := mcp.NewClient(&mcp.Implementation{Name: "human", Version: "1"}, &mcp.ClientOptions{
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			asked <- struct{}{}
			<-answer // a human, answering after the call it came with has ended
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "x"}}, nil
		},
	})
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: tg.mcpURL()}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	callText(t, cs, "u__bg", nil)
	held := make(chan string, 1)
	go func() {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "u__hold"})
		if err != nil {
			held <- err.Error()
			return
		}
		held <- contentText(res.Content)
	}()
	// The hold call is in flight when the upstream asks.
	for {
		tg.g.sessions.mu.Lock()
		inFlight := 0
		for _, ls := range tg.g.sessions.live {
			ls.mu.Lock()
			for _, calls := range ls.calls {
				inFlight += len(calls)
			}
			ls.mu.Unlock()
		}
		tg.g.sessions.mu.Unlock()
		if inFlight == 1 {
			break
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case got := <-held:
			t.Fatalf("hold ended early: %s", got)
		}
	}
	close(ask)
	recvTimeout(t, asked, "the upstream's request to reach the client")
	close(release)
	if got := recvTimeout(t, held, "the hold call to end"); got != "held" {
		t.Fatalf("hold = %q", got)
	}
	close(answer)
	if got := recvTimeout(t, outcome, "the upstream to get its answer"); got != "accept" {
		t.Errorf("the background request's outcome = %q, want accept", got)
	}
}

// Every log message of a per-session upstream reaches its client, whether
// it comes while the call runs (it goes on the call's stream) or after the
// call's stream has ended (the upstream's client hands notifications over
// concurrently with results; it then goes on the standalone stream).
func TestPerSessionLogsAreNotLost(t *testing.T) {
	url := startSDKServer(t, askServer(), false)
	tg := startGateway(t, []UpstreamConfig{{Name: "ask", Transport: TransportStreamableHTTP, URL: url, Sharing: SharingPerSession}})
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "up", hasAll("ask__log"))
	c := newAskClient(t, tg.mcpURL(), "streamable", "frank", false)
	const calls = 200
	for range calls {
		callText(t, c.cs, "ask__log", nil)
	}
	for got := 0; got < calls; got++ {
		select {
		case <-c.logs:
		case <-time.After(waitTimeout):
			t.Fatalf("%d of %d log messages reached the client", got, calls)
		}
	}
}

// A per-session connection declares the client's own elicitation modes, so
// an upstream may ask a client that supports it to open a URL.
func TestPerSessionURLElicitation(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "url", Version: "1"}, nil)
	s.AddTool(&mcp.Tool{Name: "login", InputSchema: map[string]any{"type": "object"}}, func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Mode: "url", Message: "sign in", URL: "https://idp.example/login", ElicitationID: "e1"})
		if err != nil {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "failed: " + err.Error()}}}, nil
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: res.Action}}}, nil
	})
	tg := startGateway(t, []UpstreamConfig{{Name: "u", Transport: TransportStreamableHTTP, URL: startSDKServer(t, s, false), Sharing: SharingPerSession}})
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "up", hasAll("u__login"))

	asked := make(chan string, 1)
	c := mcp.NewClient(&mcp.Implementation{Name: "browser", Version: "1"}, &mcp.ClientOptions{
		Capabilities: &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{Form: &mcp.FormElicitationCapabilities{}, URL: &mcp.URLElicitationCapabilities{}}},
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			asked <- req.Params.Mode + " " + req.Params.URL
			return &mcp.ElicitResult{Action: "accept"}, nil
		},
	})
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: tg.mcpURL()}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	if got := callText(t, cs, "u__login", nil); got != "accept" {
		t.Errorf("u__login = %q, want accept", got)
	}
	if got := <-asked; got != "url https://idp.example/login" {
		t.Errorf("the client was asked %q", got)
	}
}
