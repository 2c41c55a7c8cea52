package main

import (
	"net/http/httptest"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestHTTPHandler serves the demo with httptest and drives it with the SDK's
// own client transports: Streamable HTTP on /mcp (stateful and stateless) and
// the legacy SSE transport on /sse.
func TestHTTPHandler(t *testing.T) {
	tests := []struct {
		name      string
		stateless bool
		sse       bool
		version   string
		// noCancel marks stateless serving to a pre-2026-07-28 client: each
		// POST is a throwaway session, the SDK ties the handler to neither
		// the POST nor a later notifications/cancelled, so slow_count runs on.
		noCancel bool
	}{
		{name: "streamable", version: ""},
		{name: "streamable legacy handshake", version: "2025-06-18"},
		{name: "streamable stateless", stateless: true, version: ""},
		{name: "streamable stateless legacy handshake", stateless: true, version: "2025-06-18", noCancel: true},
		{name: "sse", sse: true, version: "2024-11-05"},
		{name: "sse beside stateless", stateless: true, sse: true, version: "2024-11-05"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t)
			started, finished := watchToolCalls(s)
			ts := httptest.NewServer(newHTTPHandler(s, tc.stateless, nil))
			t.Cleanup(ts.Close)

			var transport mcp.Transport = &mcp.StreamableClientTransport{Endpoint: ts.URL + "/mcp", MaxRetries: -1}
			if tc.sse {
				transport = &mcp.SSEClientTransport{Endpoint: ts.URL + "/sse"}
			}
			handler, progress := progressRecorder()
			ctx := testContext(t)
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, &mcp.ClientOptions{ProgressNotificationHandler: handler}).
				Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: tc.version})
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			t.Cleanup(func() { cs.Close() })

			if got := cs.InitializeResult().ServerInfo.Name; got != "demo-test" {
				t.Errorf("serverInfo.name = %q, want %q", got, "demo-test")
			}
			if !tc.noCancel {
				checkCancel(t, cs, started, finished)
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "multiply", Arguments: map[string]any{"a": 6, "b": 7}})
			if err != nil || textOf(res) != "42" {
				t.Fatalf("multiply(6, 7) = %q, %v; want \"42\"", textOf(res), err)
			}
			checkProgress(t, cs, progress, 3)
		})
	}
}

// TestHTTPRoutes checks that only /mcp and /sse are served.
func TestHTTPRoutes(t *testing.T) {
	ts := httptest.NewServer(newHTTPHandler(newTestServer(t), false, nil))
	t.Cleanup(ts.Close)
	for _, path := range []string{"/", "/mcp/x", "/messages"} {
		resp, err := ts.Client().Get(ts.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
}
