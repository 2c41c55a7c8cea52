package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// testTimeout bounds every wait on an event, so a broken server fails the
// test instead of hanging it.
const testTimeout = 30 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func newTestServer(t *testing.T) *mcp.Server {
	t.Helper()
	s, err := newServer(t.Context(), "demo-test", nil)
	if err != nil {
		t.Fatalf("newServer: %v", err)
	}
	return s
}

// connectInMemory connects a client to s over in-memory transports. version
// is the protocol version to ask for; empty means the client's latest.
func connectInMemory(t *testing.T, s *mcp.Server, opts *mcp.ClientOptions, version string) *mcp.ClientSession {
	t.Helper()
	ctx := testContext(t)
	ct, st := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		t.Fatalf("server Connect: %v", err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, opts).
		Connect(ctx, ct, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("client Connect: %v", err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Wait()
	})
	return cs
}

// protocolVersions are the versions the in-memory tests run under: the
// client's default (the newest, per-request protocol) and the classic
// initialize handshake that most deployed clients speak.
func protocolVersions() []string { return []string{"", "2025-06-18"} }

// textOf joins the text content of a tool result.
func textOf(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// structuredJSON re-encodes structured content, which a client sees as
// decoded JSON, into compact JSON for comparison.
func structuredJSON(t *testing.T, v any) string {
	t.Helper()
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshaling structured content: %v", err)
	}
	return string(b)
}

func TestTools(t *testing.T) {
	tests := []struct {
		name     string
		tool     string
		args     map[string]any
		wantText string // exact, unless wantSub
		wantSub  bool   // wantText need only be contained
		wantErr  bool   // IsError
		wantJSON string // structured content; empty means none checked
	}{
		{"multiply", "multiply", map[string]any{"a": 3, "b": 4.5}, "13.5", false, false, `{"result":13.5}`},
		{"multiply negative", "multiply", map[string]any{"a": -2, "b": 21}, "-42", false, false, `{"result":-42}`},
		{"multiply missing b", "multiply", map[string]any{"a": 2}, "b", true, true, ""},
		{"alerts CA", "get_alerts", map[string]any{"state": "CA"}, "Event: Red Flag Warning", true, false, ""},
		{"alerts lower case", "get_alerts", map[string]any{"state": "tx"}, "Event: Flash Flood Warning", true, false, ""},
		{"alerts mixed case and space", "get_alerts", map[string]any{"state": " Ny "}, "Severity: Severe", true, false, ""},
		{"alerts separator", "get_alerts", map[string]any{"state": "fl"}, "\n---\nEvent: Rip Current Statement", true, false, ""},
		{"alerts none", "get_alerts", map[string]any{"state": "wa"}, "No active alerts for WA.", false, false, ""},
		{"alerts three letters", "get_alerts", map[string]any{"state": "CAL"}, "two-letter US state code", true, true, ""},
		{"alerts digits", "get_alerts", map[string]any{"state": "C1"}, "two-letter US state code", true, true, ""},
		{"alerts empty", "get_alerts", map[string]any{"state": ""}, "two-letter US state code", true, true, ""},
		{"save empty", "save_memory", map[string]any{"text": "  "}, "text must not be empty", false, true, ""},
		{"search nothing saved", "search_memory", map[string]any{"query": "x"}, `No memories match "x".`, false, false, `{"memories":[]}`},
		{"count", "slow_count", map[string]any{"n": 2, "delay_ms": 0}, "Counted to 2.", false, false, `{"count":2}`},
		{"count zero", "slow_count", map[string]any{"n": 0, "delay_ms": 0}, "Counted to 0.", false, false, `{"count":0}`},
		{"count negative", "slow_count", map[string]any{"n": -1, "delay_ms": 0}, "must not be negative", true, true, ""},
	}
	for _, version := range protocolVersions() {
		cs := connectInMemory(t, newTestServer(t), nil, version)
		for _, tc := range tests {
			t.Run(version+"/"+tc.name, func(t *testing.T) {
				res, err := cs.CallTool(testContext(t), &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
				if err != nil {
					t.Fatalf("CallTool(%s, %v): %v", tc.tool, tc.args, err)
				}
				got := textOf(res)
				if tc.wantSub && !strings.Contains(got, tc.wantText) || !tc.wantSub && got != tc.wantText {
					t.Errorf("CallTool(%s, %v) text = %q, want %q (substring: %t)", tc.tool, tc.args, got, tc.wantText, tc.wantSub)
				}
				if res.IsError != tc.wantErr {
					t.Errorf("CallTool(%s, %v) IsError = %t, want %t", tc.tool, tc.args, res.IsError, tc.wantErr)
				}
				if tc.wantJSON != "" {
					if got := structuredJSON(t, res.StructuredContent); got != tc.wantJSON {
						t.Errorf("CallTool(%s, %v) structuredContent = %s, want %s", tc.tool, tc.args, got, tc.wantJSON)
					}
				}
			})
		}
	}
}

func TestToolsListed(t *testing.T) {
	cs := connectInMemory(t, newTestServer(t), nil, "")
	var names []string
	for tool, err := range cs.Tools(testContext(t), nil) {
		if err != nil {
			t.Fatalf("Tools: %v", err)
		}
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	want := []string{"get_alerts", "greet", "list_roots", "multiply", "save_memory", "search_memory", "slow_count", "summarize_alerts"}
	if !slices.Equal(names, want) {
		t.Errorf("tools = %v, want %v", names, want)
	}
}

// TestMemoryShared checks that one server process has one memory: a note
// saved through one session is found through another.
func TestMemoryShared(t *testing.T) {
	s := newTestServer(t)
	writer := connectInMemory(t, s, nil, "")
	reader := connectInMemory(t, s, nil, "2025-06-18")
	ctx := testContext(t)

	for i, text := range []string{"Buy milk", "Call the plumber", "milkshake recipe"} {
		res, err := writer.CallTool(ctx, &mcp.CallToolParams{Name: "save_memory", Arguments: map[string]any{"text": text}})
		if err != nil || res.IsError {
			t.Fatalf("save_memory(%q) = %v, %v", text, textOf(res), err)
		}
		wantID := i + 1
		if got, want := structuredJSON(t, res.StructuredContent), fmt.Sprintf(`{"id":%d}`, wantID); got != want {
			t.Errorf("save_memory(%q) structuredContent = %s, want %s", text, got, want)
		}
		if got, want := textOf(res), fmt.Sprintf("Saved memory %d.", wantID); got != want {
			t.Errorf("save_memory(%q) text = %q, want %q", text, got, want)
		}
	}

	for _, tc := range []struct {
		query, wantText, wantJSON string
	}{
		{"MILK", "[1] Buy milk\n[3] milkshake recipe", `{"memories":[{"id":1,"text":"Buy milk"},{"id":3,"text":"milkshake recipe"}]}`},
		{"plumb", "[2] Call the plumber", `{"memories":[{"id":2,"text":"Call the plumber"}]}`},
		{"", "[1] Buy milk\n[2] Call the plumber\n[3] milkshake recipe", ""},
		{"bread", `No memories match "bread".`, `{"memories":[]}`},
	} {
		res, err := reader.CallTool(ctx, &mcp.CallToolParams{Name: "search_memory", Arguments: map[string]any{"query": tc.query}})
		if err != nil || res.IsError {
			t.Fatalf("search_memory(%q) = %v, %v", tc.query, textOf(res), err)
		}
		if got := textOf(res); got != tc.wantText {
			t.Errorf("search_memory(%q) text = %q, want %q", tc.query, got, tc.wantText)
		}
		if tc.wantJSON != "" {
			if got := structuredJSON(t, res.StructuredContent); got != tc.wantJSON {
				t.Errorf("search_memory(%q) structuredContent = %s, want %s", tc.query, got, tc.wantJSON)
			}
		}
	}
}

func TestResources(t *testing.T) {
	cs := connectInMemory(t, newTestServer(t), nil, "")
	ctx := testContext(t)

	res, err := cs.ListResources(ctx, nil)
	if err != nil {
		t.Fatalf("ListResources: %v", err)
	}
	if len(res.Resources) != 1 || res.Resources[0].URI != alertsSampleURI || res.Resources[0].MIMEType != "application/json" {
		t.Errorf("ListResources = %+v, want one %s (application/json)", res.Resources, alertsSampleURI)
	}
	tres, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil {
		t.Fatalf("ListResourceTemplates: %v", err)
	}
	if len(tres.ResourceTemplates) != 1 || tres.ResourceTemplates[0].URITemplate != "demo://alerts/{state}" {
		t.Errorf("ListResourceTemplates = %+v, want one demo://alerts/{state}", tres.ResourceTemplates)
	}

	tests := []struct {
		uri       string
		wantState string // "" for the whole sample
		wantCount int    // alerts for wantState
		notFound  bool
	}{
		{uri: "demo://alerts/sample"},
		{uri: "demo://alerts/CA", wantState: "CA", wantCount: 2},
		{uri: "demo://alerts/ny", wantState: "NY", wantCount: 1},
		{uri: "demo://alerts/WA", notFound: true},
		{uri: "demo://alerts/xyz", notFound: true},
		{uri: "demo://other/CA", notFound: true},
	}
	for _, tc := range tests {
		t.Run(tc.uri, func(t *testing.T) {
			res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: tc.uri})
			if tc.notFound {
				var werr *jsonrpc.Error
				if !errors.As(err, &werr) || werr.Code != mcp.CodeResourceNotFound {
					t.Fatalf("ReadResource(%q) error = %v, want code %d (resource not found)", tc.uri, err, mcp.CodeResourceNotFound)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadResource(%q): %v", tc.uri, err)
			}
			if len(res.Contents) != 1 {
				t.Fatalf("ReadResource(%q) has %d contents, want 1", tc.uri, len(res.Contents))
			}
			c := res.Contents[0]
			if c.MIMEType != "application/json" || c.URI != tc.uri {
				t.Errorf("ReadResource(%q) = uri %q, mime %q; want uri %q, application/json", tc.uri, c.URI, c.MIMEType, tc.uri)
			}
			if tc.wantState == "" {
				if c.Text != string(sampleAlerts) {
					t.Errorf("ReadResource(%q) text differs from the bundled data", tc.uri)
				}
				return
			}
			var got stateAlerts
			if err := json.Unmarshal([]byte(c.Text), &got); err != nil {
				t.Fatalf("ReadResource(%q) text is not JSON: %v", tc.uri, err)
			}
			if got.State != tc.wantState || len(got.Alerts) != tc.wantCount {
				t.Errorf("ReadResource(%q) = state %q with %d alerts, want %q with %d", tc.uri, got.State, len(got.Alerts), tc.wantState, tc.wantCount)
			}
		})
	}
}

func TestPrompt(t *testing.T) {
	cs := connectInMemory(t, newTestServer(t), nil, "")
	ctx := testContext(t)

	list, err := cs.ListPrompts(ctx, nil)
	if err != nil {
		t.Fatalf("ListPrompts: %v", err)
	}
	if len(list.Prompts) != 1 || list.Prompts[0].Name != "weather_briefing" ||
		len(list.Prompts[0].Arguments) != 1 || list.Prompts[0].Arguments[0].Name != "state" || !list.Prompts[0].Arguments[0].Required {
		t.Errorf("ListPrompts = %+v, want weather_briefing with required argument state", list.Prompts)
	}

	tests := []struct {
		args    map[string]string
		want    string // substring of the user message
		wantErr bool
	}{
		{map[string]string{"state": "ca"}, "active weather alerts for CA", false},
		{map[string]string{"state": "WA"}, "active weather alerts for WA", false},
		{map[string]string{"state": "Texas"}, "", true},
		{map[string]string{}, "", true},
	}
	for _, tc := range tests {
		res, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "weather_briefing", Arguments: tc.args})
		if tc.wantErr {
			var werr *jsonrpc.Error
			if !errors.As(err, &werr) || werr.Code != jsonrpc.CodeInvalidParams {
				t.Errorf("GetPrompt(%v) error = %v, want invalid params", tc.args, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("GetPrompt(%v): %v", tc.args, err)
		}
		if len(res.Messages) != 1 || res.Messages[0].Role != "user" {
			t.Fatalf("GetPrompt(%v) messages = %+v, want one user message", tc.args, res.Messages)
		}
		text, ok := res.Messages[0].Content.(*mcp.TextContent)
		if !ok || !strings.Contains(text.Text, tc.want) {
			t.Errorf("GetPrompt(%v) message = %+v, want text containing %q", tc.args, res.Messages[0].Content, tc.want)
		}
	}
}

func TestCompletion(t *testing.T) {
	cs := connectInMemory(t, newTestServer(t), nil, "")
	if cs.InitializeResult().Capabilities.Completions == nil {
		t.Error("server does not advertise the completions capability")
	}
	prompt := &mcp.CompleteReference{Type: "ref/prompt", Name: "weather_briefing"}
	template := &mcp.CompleteReference{Type: "ref/resource", URI: "demo://alerts/{state}"}
	tests := []struct {
		name        string
		ref         *mcp.CompleteReference
		arg, prefix string
		want        []string
	}{
		{"prompt all", prompt, "state", "", []string{"CA", "FL", "NY", "OK", "TX"}},
		{"prompt lower", prompt, "state", "c", []string{"CA"}},
		{"prompt upper", prompt, "state", "N", []string{"NY"}},
		{"prompt full", prompt, "state", "tx", []string{"TX"}},
		{"prompt none", prompt, "state", "z", []string{}},
		{"template", template, "state", "f", []string{"FL"}},
		{"other argument", prompt, "city", "", []string{}},
		{"other prompt", &mcp.CompleteReference{Type: "ref/prompt", Name: "other"}, "state", "", []string{}},
		{"other resource", &mcp.CompleteReference{Type: "ref/resource", URI: "demo://alerts/sample"}, "state", "", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := cs.Complete(testContext(t), &mcp.CompleteParams{
				Ref:      tc.ref,
				Argument: mcp.CompleteParamsArgument{Name: tc.arg, Value: tc.prefix},
			})
			if err != nil {
				t.Fatalf("Complete(%+v, %s=%q): %v", tc.ref, tc.arg, tc.prefix, err)
			}
			if got := res.Completion.Values; !slices.Equal(got, tc.want) {
				t.Errorf("Complete(%+v, %s=%q) = %q, want %q", tc.ref, tc.arg, tc.prefix, got, tc.want)
			}
		})
	}
}

// progressRecorder is a ProgressNotificationHandler that forwards each
// notification, so tests wait on the notifications themselves.
func progressRecorder() (func(context.Context, *mcp.ProgressNotificationClientRequest), <-chan *mcp.ProgressNotificationParams) {
	ch := make(chan *mcp.ProgressNotificationParams, maxCount)
	return func(_ context.Context, req *mcp.ProgressNotificationClientRequest) { ch <- req.Params }, ch
}

// checkProgress calls slow_count(n) with a progress token on cs and checks
// that n notifications arrive, numbered 1..n of n.
func checkProgress(t *testing.T, cs *mcp.ClientSession, progress <-chan *mcp.ProgressNotificationParams, n int) {
	t.Helper()
	ctx := testContext(t)
	params := &mcp.CallToolParams{Name: "slow_count", Arguments: map[string]any{"n": n, "delay_ms": 1}}
	params.SetProgressToken("count-token")
	res, err := cs.CallTool(ctx, params)
	if err != nil || res.IsError {
		t.Fatalf("slow_count(%d) = %v, %v", n, textOf(res), err)
	}
	for i := 1; i <= n; i++ {
		select {
		case p := <-progress:
			if p.ProgressToken != "count-token" || p.Progress != float64(i) || p.Total != float64(n) {
				t.Errorf("progress %d = token %v, %v of %v; want count-token, %d of %d", i, p.ProgressToken, p.Progress, p.Total, i, n)
			}
		case <-ctx.Done():
			t.Fatalf("waiting for progress %d of %d: %v", i, n, ctx.Err())
		}
	}
}

func TestSlowCountProgress(t *testing.T) {
	for _, version := range protocolVersions() {
		t.Run("version="+version, func(t *testing.T) {
			handler, progress := progressRecorder()
			cs := connectInMemory(t, newTestServer(t), &mcp.ClientOptions{ProgressNotificationHandler: handler}, version)
			checkProgress(t, cs, progress, 3)

			// Without a token the count still runs, silently.
			res, err := cs.CallTool(testContext(t), &mcp.CallToolParams{Name: "slow_count", Arguments: map[string]any{"n": 2, "delay_ms": 0}})
			if err != nil || textOf(res) != "Counted to 2." {
				t.Fatalf("slow_count without token = %q, %v; want \"Counted to 2.\"", textOf(res), err)
			}
			select {
			case p := <-progress:
				t.Errorf("got progress %+v for a call without a progress token", p)
			default:
			}
		})
	}
}

// watchToolCalls reports, through the returned channels, each tools/call
// that reaches s and how its handler ended (a tool error counts as an error).
// Reports beyond the first few are dropped, so unread ones never block s.
func watchToolCalls(s *mcp.Server) (started <-chan struct{}, finished <-chan error) {
	startedc := make(chan struct{}, 8)
	finishedc := make(chan error, 8)
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method != "tools/call" {
				return next(ctx, method, req)
			}
			select {
			case startedc <- struct{}{}:
			default:
			}
			res, err := next(ctx, method, req)
			report := err
			if ctr, ok := res.(*mcp.CallToolResult); ok && err == nil && ctr.IsError {
				report = errors.New(textOf(ctr))
			}
			select {
			case finishedc <- report:
			default:
			}
			return res, err
		}
	})
	return startedc, finishedc
}

// checkCancel starts a long slow_count on cs, cancels it once the server has
// it, and checks that both the call and the server's handler end.
func checkCancel(t *testing.T, cs *mcp.ClientSession, started <-chan struct{}, finished <-chan error) {
	t.Helper()
	ctx := testContext(t)
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	callErr := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(callCtx, &mcp.CallToolParams{Name: "slow_count", Arguments: map[string]any{"n": maxCount, "delay_ms": 10_000}})
		callErr <- err
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("slow_count never reached the server")
	}
	cancel()
	select {
	case err := <-callErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled CallTool error = %v, want context.Canceled", err)
		}
	case <-ctx.Done():
		t.Fatal("cancelled CallTool did not return")
	}
	select {
	case err := <-finished:
		if err == nil || !strings.Contains(err.Error(), "counting stopped at 0") {
			t.Errorf("server handler ended with %v, want \"counting stopped at 0 ...\"", err)
		}
	case <-ctx.Done():
		t.Fatal("server handler kept running after cancellation")
	}
}

// TestSlowCountCancel checks that cancelling the client's call ends the
// server's handler, instead of leaving it to count for hours.
func TestSlowCountCancel(t *testing.T) {
	for _, version := range protocolVersions() {
		t.Run("version="+version, func(t *testing.T) {
			s := newTestServer(t)
			started, finished := watchToolCalls(s)
			checkCancel(t, connectInMemory(t, s, nil, version), started, finished)
		})
	}
}

// TestServingDone checks that ending the server's lifetime cancels a call in
// progress, so shutdown does not wait for slow_count to finish.
func TestServingDone(t *testing.T) {
	serving, stop := context.WithCancel(t.Context())
	defer stop()
	s, err := newServer(serving, "demo-test", nil)
	if err != nil {
		t.Fatalf("newServer: %v", err)
	}
	started, finished := watchToolCalls(s)
	cs := connectInMemory(t, s, nil, "")
	ctx := testContext(t)

	callErr := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "slow_count", Arguments: map[string]any{"n": maxCount, "delay_ms": 10_000}})
		callErr <- err
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("slow_count never reached the server")
	}
	stop()
	select {
	case err := <-finished:
		if err == nil || !strings.Contains(err.Error(), "counting stopped at 0") {
			t.Errorf("server handler ended with %v, want \"counting stopped at 0 ...\"", err)
		}
	case <-ctx.Done():
		t.Fatal("server handler kept running after serving ended")
	}
	<-callErr // answered with the tool error; only its arrival matters
}
