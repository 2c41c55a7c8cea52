package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// modernClient connects a 2026-07-28 go-sdk client that declares elicitation,
// sampling and roots. With manual set, it hands input_required results to
// the test instead of answering them itself.
func modernClient(t *testing.T, url string, manual bool, hc *http.Client, elicit func(*mcp.ElicitParams) *mcp.ElicitResult) *mcp.ClientSession {
	t.Helper()
	opts := &mcp.ClientOptions{
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return elicit(req.Params), nil
		},
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Role: "assistant", Model: "m", Content: &mcp.TextContent{Text: "all quiet"}}, nil
		},
	}
	if manual {
		opts.MultiRoundTrip = &mcp.MultiRoundTripOptions{Disabled: true}
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "modern", Version: "1"}, opts)
	c.AddRoots(&mcp.Root{URI: "file:///work"})
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: version20260728})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// answerGreet answers the demo's greet tool: its name, then yes.
func answerGreet(name string) func(*mcp.ElicitParams) *mcp.ElicitResult {
	return func(p *mcp.ElicitParams) *mcp.ElicitResult {
		if strings.Contains(p.Message, "name") {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": name}}
		}
		return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"ok": true}}
	}
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// rpcError returns the JSON-RPC error code and message of err, or fails.
func rpcError(t *testing.T, err error) (int64, string) {
	t.Helper()
	var werr *jsonrpc.Error
	if !errors.As(err, &werr) {
		t.Fatalf("error %v (%T) is not a JSON-RPC error", err, err)
	}
	return werr.Code, werr.Message
}

// A 2026-07-28 client calling a tool whose upstream needs input gets the
// upstream's input requests with a requestState the gateway sealed; retries
// carry the answers through as many rounds as the upstream needs, and the
// upstream's own state stays hidden inside the seal. Altered, misplaced or
// missing states get -32602 and reach no upstream.
func TestInputRequiredForModernClients(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")})
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "up", hasAll("demo__greet"))
	cs := modernClient(t, tg.mcpURL(), true, nil, nil)
	ctx := callCtx(t)

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "demo__greet"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.NeedsInput() || res.RequestState == "" {
		t.Fatalf("round 1: NeedsInput=%v state=%q, want input_required with a state", res.NeedsInput(), res.RequestState)
	}
	if p, ok := res.InputRequests["name"].(*mcp.ElicitParams); !ok || p.Message != "What is your name?" {
		t.Fatalf("round 1 input requests = %#v, want the upstream's elicitation", res.InputRequests)
	}
	state1 := res.RequestState

	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "demo__greet", RequestState: state1,
		InputResponses: mcp.InputResponseMap{"name": &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.NeedsInput() || res.InputRequests["confirm"] == nil {
		t.Fatalf("round 2: NeedsInput=%v requests=%v, want the confirmation", res.NeedsInput(), res.InputRequests)
	}
	state2 := res.RequestState
	if strings.Contains(state2, "Ada") || strings.Contains(state2, "name=") {
		t.Errorf("requestState %q shows the upstream's state; it must be sealed", state2)
	}

	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "demo__greet", RequestState: state2,
		InputResponses: mcp.InputResponseMap{"confirm": &mcp.ElicitResult{Action: "accept", Content: map[string]any{"ok": true}}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.NeedsInput() || !strings.Contains(contentText(res.Content), "Hello, Ada!") {
		t.Fatalf("round 3 = %q (NeedsInput=%v), want the greeting", contentText(res.Content), res.NeedsInput())
	}

	answer := mcp.InputResponseMap{"name": &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Eve"}}}
	tampered := []byte(state1)
	tampered[len(tampered)/2] ^= 1
	for _, tc := range []struct {
		name, tool, state string
		args              any
		want              string
	}{
		{"tampered", "demo__greet", string(tampered), nil, "was not issued by this gateway or was altered"},
		{"not base64", "demo__greet", "!!", nil, "was not issued by this gateway or was altered"},
		{"another tool's state", "demo__list_roots", state1, nil, "belongs to another caller or another request"},
		{"other arguments", "demo__greet", state1, map[string]any{"x": 1}, "belongs to another caller or another request"},
	} {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args, RequestState: tc.state, InputResponses: answer})
		if err == nil {
			t.Errorf("%s: call succeeded, want an error", tc.name)
			continue
		}
		if code, msg := rpcError(t, err); code != jsonrpc.CodeInvalidParams || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: error %d %q, want %d containing %q", tc.name, code, msg, jsonrpc.CodeInvalidParams, tc.want)
		}
	}

	// Answers without a state are ignored: the call starts over.
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "demo__greet", InputResponses: answer})
	if err != nil || !res.NeedsInput() || res.InputRequests["name"] == nil {
		t.Errorf("answers without a state: %v, %+v; want the first question again", err, res)
	}

	// The go-sdk client's own retry loop works through the gateway.
	auto := modernClient(t, tg.mcpURL(), false, nil, answerGreet("Grace"))
	if got := callText(t, auto, "demo__greet", nil); !strings.Contains(got, "Hello, Grace!") {
		t.Errorf("greet with the SDK's retry loop = %q", got)
	}
	if got := callText(t, auto, "demo__summarize_alerts", map[string]any{"state": "CA"}); !strings.Contains(got, "all quiet") {
		t.Errorf("summarize_alerts = %q, want the client's sampling answer", got)
	}
	if got := callText(t, auto, "demo__list_roots", nil); !strings.Contains(got, "file:///work") {
		t.Errorf("list_roots = %q, want the client's root", got)
	}
}

// A 2025-era client cannot take input_required: the gateway asks it with
// real requests on its session (Streamable HTTP and SSE), within the
// capabilities it declared, and retries upstream until the call completes.
// Two clients on one shared upstream connection each answer only their own.
func TestInputRequiredBridgedToLegacyClients(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")})
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "up", hasAll("demo__greet"))

	clients := map[string]*askClient{
		"alice": newAskClient(t, tg.mcpURL(), "streamable", "alice", false),
		"carol": newAskClient(t, tg.sseURL(), "sse", "carol", false),
	}
	var wg sync.WaitGroup
	for name, c := range clients {
		wg.Go(func() {
			for tool, want := range map[string]string{
				"demo__greet":            `"greeting":"Hello, ` + name + `!"`,
				"demo__summarize_alerts": `"summary":"from ` + name + `"`,
				"demo__list_roots":       `"roots":["file:///` + name + `"]`,
			} {
				res, err := c.cs.CallTool(callCtx(t), &mcp.CallToolParams{Name: tool, Arguments: argsFor(tool)})
				if err != nil {
					t.Errorf("%s: %s: %v", name, tool, err)
					continue
				}
				if got := contentText(res.Content); !strings.Contains(got, want) {
					t.Errorf("%s: %s = %q, want %s", name, tool, got, want)
				}
			}
		})
	}
	wg.Wait()

	bare := newAskClient(t, tg.mcpURL(), "streamable", "dave", true)
	for tool, want := range map[string]string{
		"demo__greet":            `upstream "demo" needs elicitation from the client, which this client did not declare`,
		"demo__summarize_alerts": `upstream "demo" needs sampling from the client, which this client did not declare`,
		"demo__list_roots":       `upstream "demo" needs roots from the client, which this client did not declare`,
	} {
		_, err := bare.cs.CallTool(callCtx(t), &mcp.CallToolParams{Name: tool, Arguments: argsFor(tool)})
		if err == nil {
			t.Errorf("client without capabilities: %s succeeded", tool)
			continue
		}
		if _, msg := rpcError(t, err); msg != want {
			t.Errorf("client without capabilities: %s: %q, want %q", tool, msg, want)
		}
	}
}

// argsFor returns valid arguments for the demo's input tools.
func argsFor(tool string) map[string]any {
	if tool == "demo__summarize_alerts" {
		return map[string]any{"state": "CA"}
	}
	return map[string]any{}
}

// A requestState opens only for the caller and request it was issued for,
// before it expires, and only with the key that sealed it.
func TestStateSealer(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, err := newStateSealer(nil, time.Minute, "r1")
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return now }
	digest := requestDigest("tools/call", "demo__greet", map[string]any{"b": 1, "a": []any{"x"}})
	tok := s.seal("iss|alice", digest, "upstream-state", "")

	st, err := s.open(tok, "iss|alice", requestDigest("tools/call", "demo__greet", json.RawMessage(`{"a":["x"],"b":1}`)))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if st.Upstream != "upstream-state" || st.Replica != "r1" {
		t.Errorf("opened %+v", st)
	}
	if _, err := s.open(tok, "iss|bob", digest); !errors.Is(err, errStateForeign) {
		t.Errorf("another principal: %v, want errStateForeign", err)
	}
	other, _ := newStateSealer(nil, time.Minute, "r2")
	if _, err := other.open(tok, "iss|alice", digest); !errors.Is(err, errStateInvalid) {
		t.Errorf("another key: %v, want errStateInvalid", err)
	}
	now = now.Add(time.Minute + time.Millisecond)
	if _, err := s.open(tok, "iss|alice", digest); !errors.Is(err, errStateExpired) {
		t.Errorf("after ttl: %v, want errStateExpired", err)
	}
	// A sealed state is base64url and may start with "h": it is not taken
	// for a held call's ("h" + id + "." + sealed).
	if id, _, ok := splitHeld("hUje85o_uMfSNigDNTSdMP2B3f-4rdg"); ok || id != "" {
		t.Errorf("splitHeld of a plain state = %q, %v; want no held call", id, ok)
	}
	if id, sealed, ok := splitHeld("hABC.xyz"); !ok || id != "ABC" || sealed != "xyz" {
		t.Errorf("splitHeld(hABC.xyz) = %q, %q, %v", id, sealed, ok)
	}
	if _, err := newStateSealer(make([]byte, 16), time.Minute, "r"); err == nil {
		t.Error("a 16-byte key was accepted")
	}
}

// Under authentication, a state sealed for one principal does not open for
// another, and 2026-07-28 results are marked private: what a caller may see
// depends on its token, so no shared cache may serve them.
func TestInputRequiredUnderAuth(t *testing.T) {
	env := startAuthGateway(t, nil)
	alice := modernClient(t, env.tg.mcpURL(), true, &http.Client{Transport: bearer{env.alice}}, nil)
	bob := modernClient(t, env.tg.mcpURL(), true, &http.Client{Transport: bearer{env.bob}}, nil)
	ctx := callCtx(t)

	res, err := alice.CallTool(ctx, &mcp.CallToolParams{Name: "demo__greet"})
	if err != nil || !res.NeedsInput() {
		t.Fatalf("greet: %v (NeedsInput=%v)", err, res != nil && res.NeedsInput())
	}
	_, err = bob.CallTool(ctx, &mcp.CallToolParams{Name: "demo__greet", RequestState: res.RequestState,
		InputResponses: mcp.InputResponseMap{"name": &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Mallory"}}}})
	if err == nil {
		t.Fatal("bob continued alice's call")
	}
	if code, msg := rpcError(t, err); code != jsonrpc.CodeInvalidParams || !strings.Contains(msg, "belongs to another caller") {
		t.Errorf("bob with alice's state: %d %q", code, msg)
	}

	list, err := bob.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if list.CacheScope != "private" {
		t.Errorf("tools/list cacheScope = %q under auth, want private", list.CacheScope)
	}
}

// A 2026-07-28 client calling through a per-session mount whose upstream
// asks with requests (a 2025-era server): each call is held on its own
// connection, every request the upstream sends comes back as input_required
// with a state naming the held call, and the retry's answer reaches the
// waiting request. An altered state or a client that never continues ends
// the held call.
func TestHeldCallsForModernClients(t *testing.T) {
	url := startSDKServer(t, askServer(), false)
	tg := startGateway(t, []UpstreamConfig{{Name: "ask", Transport: TransportStreamableHTTP, URL: url, Sharing: SharingPerSession}})
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "up", hasAll("ask__sample"))
	ended := make(chan struct{}, 10)
	tg.g.held.mu.Lock()
	tg.g.held.onRemove = func() { ended <- struct{}{} }
	tg.g.held.mu.Unlock()
	waitEnded := func(what string) {
		t.Helper()
		select {
		case <-ended:
		case <-time.After(waitTimeout):
			t.Fatalf("%s: the held call did not end", what)
		}
	}
	ctx := callCtx(t)
	cs := modernClient(t, tg.mcpURL(), true, nil, nil)

	for _, tc := range []struct {
		tool   string
		answer mcp.InputResponse
		want   string
	}{
		{"ask__elicit", &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "zed"}}, "accept zed"},
		{"ask__sample", &mcp.CreateMessageResult{Role: "assistant", Model: "m", Content: &mcp.TextContent{Text: "hi back"}}, "sampled: hi back"},
		{"ask__roots", &mcp.ListRootsResult{Roots: []*mcp.Root{{URI: "file:///zed"}}}, "roots: file:///zed"},
	} {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool})
		if err != nil {
			t.Fatalf("%s: %v", tc.tool, err)
		}
		if !res.NeedsInput() || len(res.InputRequests) != 1 || !strings.HasPrefix(res.RequestState, heldPrefix) {
			t.Fatalf("%s: NeedsInput=%v requests=%v state=%q, want one input request and a held state", tc.tool, res.NeedsInput(), res.InputRequests, res.RequestState)
		}
		var key string
		for k := range res.InputRequests {
			key = k
		}
		// A retry without the answer is asked again, and the call waits.
		again, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool, RequestState: res.RequestState, InputResponses: mcp.InputResponseMap{}})
		if err != nil || !again.NeedsInput() || again.InputRequests[key] == nil {
			t.Fatalf("%s: retry without an answer: %v, %+v", tc.tool, err, again)
		}
		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: tc.tool, RequestState: again.RequestState, InputResponses: mcp.InputResponseMap{key: tc.answer}})
		if err != nil {
			t.Fatalf("%s: retry: %v", tc.tool, err)
		}
		if got := contentText(res.Content); res.NeedsInput() || got != tc.want {
			t.Errorf("%s = %q (NeedsInput=%v), want %q", tc.tool, got, res.NeedsInput(), tc.want)
		}
		waitEnded(tc.tool)
	}

	// The go-sdk client's own loop.
	auto := modernClient(t, tg.mcpURL(), false, nil, func(*mcp.ElicitParams) *mcp.ElicitResult {
		return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Grace"}}
	})
	if got := callText(t, auto, "ask__elicit", nil); got != "accept Grace" {
		t.Errorf("ask__elicit with the SDK's loop = %q", got)
	}
	waitEnded("auto")

	// An altered state cancels the call it names.
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "ask__elicit"})
	if err != nil || !res.NeedsInput() {
		t.Fatalf("elicit: %v", err)
	}
	tampered := []byte(res.RequestState)
	tampered[len(tampered)-3] ^= 1
	answer := mcp.InputResponseMap{"gw-1": &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "eve"}}}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "ask__elicit", RequestState: string(tampered), InputResponses: answer}); err == nil {
		t.Fatal("an altered state was accepted")
	}
	waitEnded("tampered")
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "ask__elicit", RequestState: res.RequestState, InputResponses: answer}); err == nil {
		t.Error("the cancelled call went on with its original state")
	}

	// A client that never continues: the call ends when the state expires.
	tg.g.states.ttl = 50 * time.Millisecond
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "ask__elicit"}); err != nil || !res.NeedsInput() {
		t.Fatalf("elicit: %v", err)
	}
	waitEnded("expired")
	if n := tg.g.held.len(); n != 0 {
		t.Errorf("%d calls still held", n)
	}
}

// A result passed on to a 2025-era client is the gateway's own: no
// resultType of the upstream's 2026-07-28 exchange, no upstream serverInfo.
func TestResultsCarryNoUpstreamProtocolFields(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")})
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "up", hasAll("demo__multiply"))
	resp, _ := doRequest(t, http.MethodPost, tg.mcpURL(), `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`, jsonHeaders)
	sid := resp.Header.Get(headerSessionID)
	h := with(jsonHeaders, headerSessionID, sid, headerProtocolVersion, "2025-11-25")
	doRequest(t, http.MethodPost, tg.mcpURL(), `{"jsonrpc":"2.0","method":"notifications/initialized"}`, h)
	_, body := doRequest(t, http.MethodPost, tg.mcpURL(), `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"demo__multiply","arguments":{"a":6,"b":7}}}`, h)
	if !strings.Contains(string(body), `"text":"42"`) || strings.Contains(string(body), "resultType") || strings.Contains(string(body), "serverInfo") {
		t.Errorf("tools/call result for a 2025-11-25 client = %s; want the result without resultType or the upstream's serverInfo", body)
	}
}
