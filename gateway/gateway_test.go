package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/upstream"
)

// The three upstream transports, merged: the demo server as a stdio child,
// a go-sdk server over Streamable HTTP mounted without prefix, and one over
// legacy SSE. Every client transport and revision sees the same catalog and
// reaches every upstream.
func TestMergedCatalogAcrossTransports(t *testing.T) {
	remote := startSDKServer(t, echoServer("remote", "echo"), false)
	legacy := startSDKServer(t, echoServer("legacy", "shout"), true)
	noPrefix := ""
	tg := startGateway(t, []UpstreamConfig{
		demoUpstream("demo"),
		{Name: "remote", Transport: TransportStreamableHTTP, URL: remote, Prefix: &noPrefix},
		{Name: "legacy", Transport: TransportSSE, URL: legacy},
	})
	want := []string{"demo__get_alerts", "demo__greet", "demo__list_roots", "demo__multiply", "demo__save_memory", "demo__search_memory", "demo__slow_count", "demo__summarize_alerts", "echo", "legacy__shout"}

	for _, c := range []struct{ name, transport, url, version string }{
		{"streamable 2025-11-25", "streamable", tg.mcpURL(), "2025-11-25"},
		{"streamable 2025-03-26", "streamable", tg.mcpURL(), "2025-03-26"},
		{"stateless 2026-07-28", "streamable", tg.mcpURL(), "2026-07-28"},
		{"sse 2024-11-05", "sse", tg.sseURL(), "2024-11-05"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := connect(t, c.url, c.transport, c.version)
			got := cs.waitTools(t, "all upstreams merged", hasAll(want...))
			if !slices.Equal(got, want) {
				t.Errorf("tools = %v, want %v", got, want)
			}
			if got, want := callText(t, cs.ClientSession, "demo__multiply", map[string]any{"a": 6, "b": 7}), "42"; !strings.Contains(got, want) {
				t.Errorf("demo__multiply(6, 7) = %q, want it to contain %q", got, want)
			}
			if got, want := callText(t, cs.ClientSession, "echo", map[string]any{"text": "hi"}), "remote:hi"; got != want {
				t.Errorf("echo = %q, want %q", got, want)
			}
			if got, want := callText(t, cs.ClientSession, "legacy__shout", map[string]any{"text": "hey"}), "legacy:hey"; got != want {
				t.Errorf("legacy__shout = %q, want %q", got, want)
			}
		})
	}
}

// Prompts, resources, templates and completion route to the owning
// upstream, with URIs rewritten on the way out and back.
func TestPromptsResourcesCompletion(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")})
	cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	cs.waitTools(t, "demo up", hasAll("demo__multiply"))
	ctx := context.Background()

	prompts, err := cs.ListPrompts(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(prompts.Prompts) != 1 || prompts.Prompts[0].Name != "demo__weather_briefing" {
		t.Fatalf("prompts = %v, want [demo__weather_briefing]", prompts.Prompts)
	}
	pr, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "demo__weather_briefing", Arguments: map[string]string{"state": "CA"}})
	if err != nil {
		t.Fatalf("GetPrompt: %v", err)
	}
	if len(pr.Messages) == 0 {
		t.Fatalf("GetPrompt returned no messages")
	}

	res, err := cs.ListResources(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	const sample = "demo+demo://alerts/sample"
	if len(res.Resources) != 1 || res.Resources[0].URI != sample {
		t.Fatalf("resources = %+v, want one with URI %q", res.Resources, sample)
	}
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: sample})
	if err != nil {
		t.Fatalf("ReadResource(%q): %v", sample, err)
	}
	if len(rr.Contents) != 1 || rr.Contents[0].URI != sample || !strings.Contains(rr.Contents[0].Text, "CA") {
		t.Errorf("ReadResource(%q) = %+v, want the sample alerts under the public URI", sample, rr.Contents)
	}

	tmpls, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	const tmpl = "demo+demo://alerts/{state}"
	if len(tmpls.ResourceTemplates) != 1 || tmpls.ResourceTemplates[0].URITemplate != tmpl {
		t.Fatalf("templates = %+v, want %q", tmpls.ResourceTemplates, tmpl)
	}
	rr, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "demo+demo://alerts/TX"})
	if err != nil {
		t.Fatalf("ReadResource(template expansion): %v", err)
	}
	if rr.Contents[0].URI != "demo+demo://alerts/TX" {
		t.Errorf("read URI = %q, want the public one", rr.Contents[0].URI)
	}

	// Unknown resources are -32002, under a known prefix (the upstream
	// says so) and under none (the gateway says so).
	// The code is the client's revision's: -32002 before 2026-07-28, -32602
	// from then on.
	modern := connect(t, tg.mcpURL(), "streamable", "2026-07-28")
	for _, uri := range []string{"demo+demo://alerts/ZZ", "nowhere://x"} {
		_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		if code := rpcCode(err); code != CodeResourceNotFound {
			t.Errorf("2025-11-25: ReadResource(%q) error = %v (code %d), want code %d", uri, err, code, CodeResourceNotFound)
		}
		_, err = modern.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		if code := rpcCode(err); code != jsonrpc.CodeInvalidParams {
			t.Errorf("2026-07-28: ReadResource(%q) error = %v (code %d), want code %d", uri, err, code, jsonrpc.CodeInvalidParams)
		}
	}

	comp, err := cs.Complete(ctx, &mcp.CompleteParams{
		Ref:      &mcp.CompleteReference{Type: "ref/prompt", Name: "demo__weather_briefing"},
		Argument: mcp.CompleteParamsArgument{Name: "state", Value: "c"},
	})
	if err != nil {
		t.Fatalf("Complete(ref/prompt): %v", err)
	}
	if !slices.Contains(comp.Completion.Values, "CA") {
		t.Errorf("completion values = %v, want CA among them", comp.Completion.Values)
	}
	comp, err = cs.Complete(ctx, &mcp.CompleteParams{
		Ref:      &mcp.CompleteReference{Type: "ref/resource", URI: tmpl},
		Argument: mcp.CompleteParamsArgument{Name: "state", Value: "t"},
	})
	if err != nil {
		t.Fatalf("Complete(ref/resource): %v", err)
	}
	if !slices.Contains(comp.Completion.Values, "TX") {
		t.Errorf("completion values = %v, want TX among them", comp.Completion.Values)
	}
}

func rpcCode(err error) int64 {
	var werr *jsonrpc.Error
	if errors.As(err, &werr) {
		return werr.Code
	}
	return 0
}

// Unknown names are -32602 with a message that says so.
func TestUnknownNames(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")})
	cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	cs.waitTools(t, "demo up", hasAll("demo__multiply"))
	ctx := context.Background()
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "demo__nope"})
	if rpcCode(err) != jsonrpc.CodeInvalidParams || !strings.Contains(err.Error(), `unknown tool "demo__nope"`) {
		t.Errorf("CallTool(demo__nope) error = %v, want -32602 unknown tool", err)
	}
	_, err = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "nope"})
	if rpcCode(err) != jsonrpc.CodeInvalidParams || !strings.Contains(err.Error(), `unknown prompt "nope"`) {
		t.Errorf("GetPrompt(nope) error = %v, want -32602 unknown prompt", err)
	}
}

// A client that pages gets every entry exactly once.
func TestPagination(t *testing.T) {
	var extra []string
	for i := range 45 {
		extra = append(extra, fmt.Sprintf("tool%02d", i))
	}
	remote := startSDKServer(t, echoServer("remote", "echo", extra...), false)
	tg := startGateway(t, []UpstreamConfig{
		{Name: "remote", Transport: TransportStreamableHTTP, URL: remote},
		demoUpstream("demo"),
	}, func(_ *Config, o *Options) { o.PageSize = 7 })
	cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	cs.waitTools(t, "both up", hasAll("remote__tool44", "demo__multiply"))

	seen := map[string]int{}
	pages := 0
	var cursor string
	for {
		res, err := cs.ListTools(context.Background(), &mcp.ListToolsParams{Cursor: cursor})
		if err != nil {
			t.Fatalf("ListTools(cursor %q): %v", cursor, err)
		}
		pages++
		if len(res.Tools) > 7 {
			t.Errorf("page %d has %d tools, want at most 7", pages, len(res.Tools))
		}
		for _, tool := range res.Tools {
			seen[tool.Name]++
		}
		if res.NextCursor == "" {
			break
		}
		cursor = res.NextCursor
	}
	if want := 46 + 8; len(seen) != want {
		t.Errorf("saw %d distinct tools over %d pages, want %d", len(seen), pages, want)
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("tool %q listed %d times, want once", name, n)
		}
	}
	_, err := cs.ListTools(context.Background(), &mcp.ListToolsParams{Cursor: "not-a-cursor"})
	if rpcCode(err) != jsonrpc.CodeInvalidParams {
		t.Errorf("ListTools(bad cursor) error = %v, want -32602", err)
	}
}

// An upstream killed mid-run: its tools leave (clients get list_changed),
// calls to it fail at once naming it, and it comes back after the restart.
func TestUpstreamKilledAndRestarted(t *testing.T) {
	remote := startSDKServer(t, echoServer("remote", "echo"), false)
	tg := startGateway(t, []UpstreamConfig{
		demoUpstream("demo"),
		{Name: "remote", Transport: TransportStreamableHTTP, URL: remote},
	})
	cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	cs.waitTools(t, "both up", hasAll("demo__multiply", "remote__echo"))

	st := tg.g.UpstreamStatus()["demo"]
	if st.PID == 0 {
		t.Fatalf("demo status = %+v, want a PID", st)
	}
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	drainChanged(cs)
	// Between the kill and the restart the tools are gone; the restart is
	// quick in this test, so either state may be what we observe first.
	names := cs.waitTools(t, "demo tools withdrawn or back after restart", func(n []string) bool {
		return !slices.Contains(n, "demo__multiply") || tg.g.UpstreamStatus()["demo"].Restarts > 0
	})
	if !slices.Contains(names, "remote__echo") {
		t.Errorf("remote__echo vanished with demo: %v", names)
	}
	cs.waitTools(t, "demo back after restart", hasAll("demo__multiply"))
	if got := callText(t, cs.ClientSession, "demo__multiply", map[string]any{"a": 2, "b": 3}); !strings.Contains(got, "6") {
		t.Errorf("after restart demo__multiply = %q, want 6", got)
	}
	if st := tg.g.UpstreamStatus()["demo"]; st.Restarts < 1 || st.PID == 0 {
		t.Errorf("demo status after restart = %+v, want restarts >= 1 and a PID", st)
	}
}

// While an upstream is down, calling its tool fails fast with an error that
// names it, and the tool is gone from the list.
func TestDownUpstreamFailsFast(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")}, func(c *Config, o *Options) {
		// Never come back within the test.
		o.Upstream.MinBackoff = waitTimeout * 10
		o.Upstream.MaxBackoff = waitTimeout * 10
	})
	cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	cs.waitTools(t, "demo up", hasAll("demo__multiply"))
	if err := syscall.Kill(tg.g.UpstreamStatus()["demo"].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cs.waitTools(t, "demo withdrawn", hasNone("demo__multiply"))
	_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "demo__multiply", Arguments: map[string]any{"a": 1, "b": 2}})
	if err == nil || !strings.Contains(err.Error(), `upstream "demo" is unavailable`) {
		t.Errorf("call to a down upstream: error = %v, want one naming upstream \"demo\"", err)
	}
	if st := tg.g.UpstreamStatus()["demo"]; st.State != upstream.StateDown {
		t.Errorf("demo state = %q, want %q", st.State, upstream.StateDown)
	}
}

func drainChanged(tc *testClient) {
	for {
		select {
		case <-tc.toolsChanged:
		default:
			return
		}
	}
}
