package main

// Failures and their messages: an unreachable gateway, model API errors,
// a model that never answers, bad usage; and the fallback from Streamable
// HTTP to the legacy SSE transport.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestUnreachableGateway(t *testing.T) {
	t.Parallel()
	u := "http://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/mcp"
	code, stdout, stderr := runBinary(t, nil, "--url", u, "--base-url", "http://127.0.0.1:1/v1", "--once", "hi")
	want := "mcp-chat: cannot reach the gateway at " + u + ": dial tcp"
	if code != 1 || stdout != "" || !strings.Contains(stderr, want) || !strings.Contains(stderr, "connection refused") {
		t.Errorf("unreachable gateway: exit %d, stdout %q, stderr %q; want 1 and %q", code, stdout, stderr, want)
	}
}

// A server that accepts the connection but never answers is given up on
// after --connect-timeout.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	code, _, stderr := runChat(t, nil, "", "--url", srv.URL+"/mcp", "--base-url", "http://127.0.0.1:1/v1", "--once", "hi", "--connect-timeout", "200ms")
	want := "mcp-chat: the gateway at " + srv.URL + "/mcp did not complete the MCP handshake within 200ms (--connect-timeout)"
	if code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
}

// A model API error ends a --once run with the HTTP status and the API's
// message; in interactive mode it is reported and the next question is
// answered.
func TestModelErrors(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, gatewayConfig{})
	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{500, `{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}`,
			"mcp-chat: model API: 500 Internal Server Error: The server had an error while processing your request."},
		{429, `{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}`,
			"mcp-chat: model API: 429 Too Many Requests: Rate limit reached for requests"},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			m := newFakeModel(t, scripted(t, step{status: tc.status, body: tc.body}))
			code, stdout, stderr := runBinary(t, nil, "--url", gw.mcpURL(), "--base-url", m.url(), "--once", "hi")
			if code != 1 || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant 1 and %q", code, stdout, stderr, tc.want)
			}
		})
	}

	m := newFakeModel(t, scripted(t,
		step{status: 503, body: `{"error":"loading model"}`},
		answer("Better now."),
	))
	r := startChat(t, nil, "--url", gw.mcpURL(), "--base-url", m.url())
	r.send(t, "first")
	r.stderr.waitFor(t, "mcp-chat: model API: 503 Service Unavailable: loading model")
	r.send(t, "second")
	r.stdout.waitFor(t, "Better now.\n")
	if code := r.wait(t); code != 0 {
		t.Errorf("exit %d after a recovered model error, want 0", code)
	}
	// The failed question was dropped from the history.
	if msgs := m.requests()[1].Messages; len(msgs) != 1 || msgs[0].text() != "second" {
		t.Errorf("second request messages = %+v, want only the second question", msgs)
	}
}

// A model that calls tools forever is stopped after --max-steps requests.
func TestMaxSteps(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, gatewayConfig{})
	m := newFakeModel(t, func(int, *gotRequest) step {
		return calls(call("", "demo__multiply", `{"a":1,"b":1}`)) // no id, as some local servers
	})
	code, _, stderr := runChat(t, nil, "", "--url", gw.mcpURL(), "--base-url", m.url(), "--once", "loop", "--max-steps", "3")
	if code != 1 || !strings.Contains(stderr, "the model made 3 requests without answering (raise --max-steps)") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	reqs := m.requests()
	if len(reqs) != 3 {
		t.Fatalf("the model got %d requests, want 3", len(reqs))
	}
	if got := toolMessage(t, reqs[1], "call_0_0"); got != "1\n{\"result\":1}" {
		t.Errorf("result of the call without id = %q", got)
	}
}

// A URL that does not speak Streamable HTTP (here: the gateway's SSE
// endpoint behind a path that does not end in /sse, which answers a POST
// with 405) is retried with the legacy SSE transport.
func TestFallbackToSSE(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, gatewayConfig{})
	target, _ := url.Parse(gw.base)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/legacy" {
			r.URL.Path = "/sse"
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	m := newFakeModel(t, scripted(t, calls(call("c1", "demo__multiply", `{"a":6,"b":7}`)), answer("42")))
	code, stdout, stderr := runChat(t, nil, "", "--url", front.URL+"/legacy", "--base-url", m.url(), "--once", "6*7?")
	if code != 0 || stdout != "42\n" {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"answered 405 to a Streamable HTTP initialize; trying the legacy SSE transport", "(sse, MCP "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if got := toolMessage(t, m.requests()[1], "c1"); !strings.HasPrefix(got, "42") {
		t.Errorf("tool result over SSE = %q", got)
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--bogus"},
		{"--once", ""},
		{"--once", "a", "extra"},
		{"--transport", "carrier-pigeon"},
		{"--max-steps", "0"},
		{"--login", "--oauth-token-url", "http://127.0.0.1:1/token"},
	} {
		code, stdout, stderr := runChat(t, nil, "", args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "usage: mcp-chat") {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q; want 2 and the usage", args, code, stdout, stderr)
		}
	}
	if code, _, stderr := runChat(t, nil, "", "--help"); code != 0 || !strings.Contains(stderr, "-oauth-token-url") {
		t.Errorf("--help = %d, %q; want 0 and the flags", code, stderr)
	}
	// Client credentials without a secret.
	code, _, stderr := runChat(t, nil, "", "--oauth-token-url", "http://127.0.0.1:1/token", "--oauth-client-id", "x", "--once", "hi")
	if code != 1 || !strings.Contains(stderr, "--oauth-token-url needs --oauth-client-id and the client secret in $MCP_OAUTH_CLIENT_SECRET") {
		t.Errorf("client credentials without a secret = %d, %q", code, stderr)
	}
}

// Every page of tools/list is read, and awkward tool names are offered
// under aliases that map back to the right tool.
func TestAllPagesAndAliases(t *testing.T) {
	t.Parallel()
	s := mcp.NewServer(&mcp.Implementation{Name: "paged", Version: "1"}, &mcp.ServerOptions{PageSize: 2})
	names := []string{"a", "b", "c", "d", "files.read/v2"}
	for _, n := range names {
		s.AddTool(&mcp.Tool{Name: n, InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "called " + n}}}, nil
		})
	}
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(srv.Close)

	alias := "files_read_v2_" + hash6("files.read/v2")
	m := newFakeModel(t, scripted(t, calls(call("c1", alias, `{}`)), answer("ok")))
	code, _, stderr := runChat(t, nil, "", "--url", srv.URL, "--base-url", m.url(), "--once", "read")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	reqs := m.requests()
	if got, want := reqs[0].toolNames(), []string{"a", "b", "c", "d", alias}; !slices.Equal(got, want) {
		t.Errorf("tools offered = %v, want %v", got, want)
	}
	if got := toolMessage(t, reqs[1], "c1"); got != "called files.read/v2" {
		t.Errorf("the alias called %q, want files.read/v2", got)
	}
}
