package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Two upstreams mounted without prefix offer the same tool: the first in
// config order keeps the name, the second is offered under its qualified
// name, and both route to their own upstream.
func TestCollisionsResolvedByConfigOrder(t *testing.T) {
	first := startSDKServer(t, echoServer("first", "echo"), false)
	second := startSDKServer(t, echoServer("second", "echo"), false)
	none := ""
	tg := startGateway(t, []UpstreamConfig{
		{Name: "first", Transport: TransportStreamableHTTP, URL: first, Prefix: &none},
		{Name: "second", Transport: TransportStreamableHTTP, URL: second, Prefix: &none},
	})
	cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	names := cs.waitTools(t, "both up", hasAll("echo", "second__echo"))
	if !slices.Equal(names, []string{"echo", "second__echo"}) {
		t.Errorf("tools = %v, want [echo second__echo]", names)
	}
	if got := callText(t, cs.ClientSession, "echo", map[string]any{"text": "a"}); got != "first:a" {
		t.Errorf("echo = %q, want first:a", got)
	}
	if got := callText(t, cs.ClientSession, "second__echo", map[string]any{"text": "b"}); got != "second:b" {
		t.Errorf("second__echo = %q, want second:b", got)
	}
}

// richServer offers a tool with every optional field set, and a tool whose
// result carries a resource link and an embedded resource.
func richServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "rich", Version: "1"}, nil)
	readOnly := true
	s.AddTool(&mcp.Tool{
		Name:         "lookup",
		Title:        "Look up a thing",
		Description:  "Finds things.",
		InputSchema:  json.RawMessage(`{"type":"object","properties":{"q":{"type":"string","maxLength":200,"description":"query"}},"required":["q"],"additionalProperties":false}`),
		OutputSchema: json.RawMessage(`{"type":"object","properties":{"hits":{"type":"integer","minimum":0}}}`),
		Annotations:  &mcp.ToolAnnotations{ReadOnlyHint: readOnly, Title: "Lookup"},
		Icons:        []mcp.Icon{{Source: "https://example.com/icon.png", MIMEType: "image/png", Sizes: []string{"48x48"}}},
		Meta:         mcp.Meta{"com.example/owner": "team-a", "com.example/cost": 3.5},
	}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{StructuredContent: map[string]any{"hits": 1}, Content: []mcp.Content{&mcp.TextContent{Text: "1 hit"}}}, nil
	})
	s.AddTool(&mcp.Tool{Name: "links", InputSchema: json.RawMessage(`{"type":"object"}`)}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{
			&mcp.ResourceLink{URI: "file:///docs/a.txt", Name: "a"},
			&mcp.EmbeddedResource{Resource: &mcp.ResourceContents{URI: "file:///docs/b.txt", Text: "b"}},
		}}, nil
	})
	s.AddResource(&mcp.Resource{URI: "file:///docs/a.txt", Name: "a", MIMEType: "text/plain"}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "a"}}}, nil
	})
	// Not listed: reachable only through the link in a tool result.
	s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "file:///docs/{name}", Name: "docs"}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "doc " + req.Params.URI}}}, nil
	})
	return s
}

// Titles, annotations, icons, schemas and _meta reach the client as the
// upstream sent them; only the name changes.
func TestToolMetadataPassesThrough(t *testing.T) {
	url := startSDKServer(t, richServer(), false)
	tg := startGateway(t, []UpstreamConfig{{Name: "rich", Transport: TransportStreamableHTTP, URL: url}})
	via := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	via.waitTools(t, "rich up", hasAll("rich__lookup"))
	direct := connect(t, url, "streamable", "2025-11-25")

	find := func(cs *mcp.ClientSession, name string) map[string]any {
		res, err := cs.ListTools(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tool := range res.Tools {
			if tool.Name == name {
				data, _ := json.Marshal(tool)
				var m map[string]any
				json.Unmarshal(data, &m)
				delete(m, "name")
				return m
			}
		}
		t.Fatalf("tool %q not listed", name)
		return nil
	}
	got, want := find(via.ClientSession, "rich__lookup"), find(direct.ClientSession, "lookup")
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("tool through the gateway:\n%s\nwant (direct):\n%s", gotJSON, wantJSON)
	}
}

// URIs inside tool results come back in public form, and those public URIs
// can be read through the gateway even though no list names them.
func TestURIsInResultsRewritten(t *testing.T) {
	url := startSDKServer(t, richServer(), false)
	tg := startGateway(t, []UpstreamConfig{{Name: "rich", Transport: TransportStreamableHTTP, URL: url}})
	cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	cs.waitTools(t, "rich up", hasAll("rich__links"))
	ctx := context.Background()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "rich__links"})
	if err != nil {
		t.Fatal(err)
	}
	link, ok1 := res.Content[0].(*mcp.ResourceLink)
	emb, ok2 := res.Content[1].(*mcp.EmbeddedResource)
	if !ok1 || !ok2 || link.URI != "rich+file:///docs/a.txt" || emb.Resource.URI != "rich+file:///docs/b.txt" {
		t.Fatalf("content = %+v, %+v; want URIs rich+file:///docs/a.txt and rich+file:///docs/b.txt", res.Content[0], res.Content[1])
	}
	for _, uri := range []string{link.URI, emb.Resource.URI} {
		rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		if err != nil {
			t.Fatalf("ReadResource(%q): %v", uri, err)
		}
		if rr.Contents[0].URI != uri {
			t.Errorf("ReadResource(%q) content URI = %q, want the public URI", uri, rr.Contents[0].URI)
		}
	}
}

// A call that outlives its upstream's timeout fails with an error naming
// the upstream, and the upstream is told to cancel: the demo's slow_count
// returns as soon as its context ends, so a following call is served.
func TestCallTimeoutCancelsUpstream(t *testing.T) {
	up := demoUpstream("demo")
	up.Timeout = Duration{2 * time.Second} // the call after the timeout must fit in it too
	tg := startGateway(t, []UpstreamConfig{up})
	cs := connect(t, tg.mcpURL(), "streamable", "2025-11-25")
	cs.waitTools(t, "demo up", hasAll("demo__slow_count"))

	start := time.Now()
	_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "demo__slow_count", Arguments: map[string]any{"n": 100, "delay_ms": 1000}})
	if err == nil || !strings.Contains(err.Error(), `upstream "demo" did not answer within 2s`) {
		t.Fatalf("slow call: error = %v, want a timeout naming upstream \"demo\"", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("timeout took %v, want about 2s", elapsed)
	}
	if got := callText(t, cs.ClientSession, "demo__multiply", map[string]any{"a": 3, "b": 3}); !strings.Contains(got, "9") {
		t.Errorf("call after timeout = %q, want 9", got)
	}
}

// Idle event streams get keep-alive comments.
func TestSSEKeepAlive(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")}, func(_ *Config, o *Options) { o.KeepAlive = 50 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", tg.sseURL(), nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q, want text/event-stream", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var sawEndpoint, sawKeepAlive bool
	for sc.Scan() && !(sawEndpoint && sawKeepAlive) {
		line := sc.Text()
		if strings.HasPrefix(line, "data: /message?sessionId=") {
			sawEndpoint = true
		}
		if strings.HasPrefix(line, ": keep-alive") {
			sawKeepAlive = true
		}
	}
	if !sawEndpoint || !sawKeepAlive {
		t.Errorf("stream: endpoint event %v, keep-alive %v; want both", sawEndpoint, sawKeepAlive)
	}
}
