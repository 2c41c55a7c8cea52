package gateway

// Bad input at the front door: each gets a clear status and, where the body
// can carry one, a JSON-RPC error; nothing panics or hangs.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpgw/gateway/sessionstore"
)

type rpcErrorBody struct {
	Error struct {
		Code    int64  `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func doRequest(t *testing.T, method, url, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
	}
	// A request that should have been refused but opened a stream instead
	// must fail the test, not hang it.
	client := &http.Client{Timeout: waitTimeout}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

var jsonHeaders = map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}

func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`

func TestFrontDoorBadInput(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")}, func(c *Config, _ *Options) {
		c.MaxBodyBytes = 4096
		c.AllowedOrigins = []string{"https://app.example.com"}
	})
	mcpURL := tg.mcpURL()
	for _, tc := range []struct {
		name       string
		method     string
		url        string
		body       string
		header     map[string]string
		wantStatus int
		wantCode   int64 // 0: don't check the body
	}{
		{"malformed JSON", "POST", mcpURL, `{"jsonrpc":"2.0",`, jsonHeaders, 400, -32700},
		{"not JSON-RPC", "POST", mcpURL, `{"hello":"world"}`, jsonHeaders, 400, -32600},
		{"empty batch", "POST", mcpURL, `[]`, jsonHeaders, 400, -32600},
		{"body too large", "POST", mcpURL, `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"` + strings.Repeat("a", 5000) + `"}}`, jsonHeaders, 413, -32600},
		{"unknown session", "POST", mcpURL, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, with(jsonHeaders, "Mcp-Session-Id", "nope"), 404, -32600},
		{"unknown session GET", "GET", mcpURL, ``, map[string]string{"Accept": "text/event-stream", "Mcp-Session-Id": "nope"}, 404, -32600},
		{"unknown session DELETE", "DELETE", mcpURL, ``, map[string]string{"Mcp-Session-Id": "nope"}, 404, -32600},
		{"no session, not initialize", "POST", mcpURL, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, jsonHeaders, 400, -32600},
		{"wrong content type", "POST", mcpURL, initBody, with(jsonHeaders, "Content-Type", "text/plain"), 415, -32600},
		{"bad accept", "POST", mcpURL, initBody, with(jsonHeaders, "Accept", "application/json"), 406, -32600},
		{"bad protocol version header", "POST", mcpURL, initBody, with(jsonHeaders, "Mcp-Protocol-Version", "1999-01-01"), 400, -32600},
		{"foreign origin", "POST", mcpURL, initBody, with(jsonHeaders, "Origin", "https://evil.example"), 403, -32600},
		{"rebinding host", "POST", mcpURL, initBody, with(jsonHeaders, "Host", "evil.example"), 403, -32600},
		{"PUT", "PUT", mcpURL, ``, nil, 405, -32600},
		{"POST to /sse", "POST", tg.sseURL(), initBody, jsonHeaders, 405, -32600},
		{"message without session", "POST", tg.srv.URL + PathMessage, initBody, jsonHeaders, 400, -32600},
		{"message unknown session", "POST", tg.srv.URL + PathMessage + "?sessionId=nope", initBody, jsonHeaders, 404, -32600},
		{"GET without session", "GET", mcpURL, ``, map[string]string{"Accept": "text/event-stream"}, 405, -32600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, data := doRequest(t, tc.method, tc.url, tc.body, tc.header)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("%s %s: status %d, want %d; body %s", tc.method, tc.url, resp.StatusCode, tc.wantStatus, data)
			}
			if tc.wantCode != 0 {
				var e rpcErrorBody
				if err := json.Unmarshal(data, &e); err != nil || e.Error.Code != tc.wantCode || e.Error.Message == "" {
					t.Errorf("body = %s, want a JSON-RPC error with code %d", data, tc.wantCode)
				}
			}
		})
	}

	// Allowed origins pass: the configured one and, on a loopback listener,
	// loopback origins.
	for _, origin := range []string{"https://app.example.com", "http://localhost:6274", "http://127.0.0.1:3000"} {
		resp, data := doRequest(t, "POST", mcpURL, initBody, with(jsonHeaders, "Origin", origin))
		if resp.StatusCode != 200 {
			t.Errorf("initialize with Origin %q: status %d, want 200; body %s", origin, resp.StatusCode, data)
		}
	}
}

// A session's life over raw HTTP: initialize mints an id, the id serves
// requests, DELETE ends it, and the id is then unknown.
func TestSessionLifecycleOverHTTP(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")})
	resp, data := doRequest(t, "POST", tg.mcpURL(), initBody, jsonHeaders)
	if resp.StatusCode != 200 {
		t.Fatalf("initialize: status %d, body %s", resp.StatusCode, data)
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	if len(sid) < 16 {
		t.Fatalf("session id %q: want a long random id", sid)
	}
	if !bytes.Contains(data, []byte(`"mcp-gateway"`)) {
		t.Errorf("initialize result %s does not name the gateway", data)
	}
	h := with(jsonHeaders, "Mcp-Session-Id", sid, "Mcp-Protocol-Version", "2025-11-25")
	resp, _ = doRequest(t, "POST", tg.mcpURL(), `{"jsonrpc":"2.0","method":"notifications/initialized"}`, h)
	if resp.StatusCode != 202 {
		t.Errorf("notifications/initialized: status %d, want 202", resp.StatusCode)
	}
	resp, data = doRequest(t, "POST", tg.mcpURL(), `{"jsonrpc":"2.0","id":2,"method":"ping"}`, h)
	if resp.StatusCode != 200 || !bytes.Contains(data, []byte(`"result"`)) {
		t.Errorf("ping: status %d, body %s", resp.StatusCode, data)
	}
	if n := tg.g.sessions.count(); n != 1 {
		t.Errorf("live sessions = %d, want 1", n)
	}
	rec, err := tg.g.store.Get(context.Background(), sid)
	if err != nil || rec.Transport != "streamable" || rec.ProtocolVersion != "2025-11-25" {
		t.Errorf("store record = %+v, %v; want a streamable 2025-11-25 session", rec, err)
	}
	resp, _ = doRequest(t, "DELETE", tg.mcpURL(), "", map[string]string{"Mcp-Session-Id": sid})
	if resp.StatusCode != 204 {
		t.Errorf("DELETE: status %d, want 204", resp.StatusCode)
	}
	resp, _ = doRequest(t, "POST", tg.mcpURL(), `{"jsonrpc":"2.0","id":3,"method":"ping"}`, h)
	if resp.StatusCode != 404 {
		t.Errorf("ping after DELETE: status %d, want 404", resp.StatusCode)
	}
	waitGone(t, tg.g, sid)
}

// waitGone waits until the session has ended and left the store.
func waitGone(t *testing.T, g *Gateway, sid string) {
	t.Helper()
	g.sessions.mu.Lock()
	ls := g.sessions.live[sid]
	g.sessions.mu.Unlock()
	if ls != nil {
		select {
		case <-ls.ended:
		case <-time.After(waitTimeout):
			t.Fatalf("session %s did not end", sid)
		}
	}
	if _, err := g.store.Get(context.Background(), sid); !errors.Is(err, sessionstore.ErrNotFound) {
		t.Fatalf("store still has session %s: %v", sid, err)
	}
}

// A session that sees no request for the idle timeout ends; its id is then
// unknown.
func TestIdleSessionExpires(t *testing.T) {
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")}, func(_ *Config, o *Options) { o.idleTimeout = 100 * time.Millisecond })
	resp, data := doRequest(t, "POST", tg.mcpURL(), initBody, jsonHeaders)
	if resp.StatusCode != 200 {
		t.Fatalf("initialize: status %d, body %s", resp.StatusCode, data)
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	waitGone(t, tg.g, sid)
	resp, _ = doRequest(t, "POST", tg.mcpURL(), `{"jsonrpc":"2.0","id":2,"method":"ping"}`, with(jsonHeaders, "Mcp-Session-Id", sid))
	if resp.StatusCode != 404 {
		t.Errorf("ping on an expired session: status %d, want 404", resp.StatusCode)
	}
}

// FuzzReadMessages: any body gets a verdict, never a panic; accepted bodies
// are JSON-RPC messages.
func FuzzReadMessages(f *testing.F) {
	for _, s := range []string{initBody, `[` + initBody + `]`, `[]`, `{`, `{"jsonrpc":"2.0","method":"x"}`, `null`, `[1,2]`, "\x00", `{"jsonrpc":"2.0","id":{},"method":"x"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/mcp", bytes.NewReader(body))
		w := httptest.NewRecorder()
		msgs, _, ok := readMessages(w, r)
		if ok == (w.Code != http.StatusOK) || (ok && len(msgs) == 0) {
			t.Fatalf("readMessages(%q) = %d messages, ok=%v, status %d", body, len(msgs), ok, w.Code)
		}
		if !ok {
			var e rpcErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == 0 {
				t.Fatalf("readMessages(%q) error body %q is not a JSON-RPC error", body, w.Body.Bytes())
			}
		}
	})
}

// Answers the SDK gives at once keep their status and headers however
// short the keep-alive interval: only a POST of calls is ever committed to
// an event stream by a keep-alive.
func TestKeepAliveCommitsOnlyCalls(t *testing.T) {
	fast := false
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")}, func(c *Config, o *Options) {
		c.FastPath = &fast
		o.KeepAlive = time.Microsecond
	})
	connect(t, tg.mcpURL(), "streamable", "2025-11-25").waitTools(t, "demo up", hasAll("demo__multiply"))
	for i := range 20 {
		resp, data := doRequest(t, "POST", tg.mcpURL(), initBody, jsonHeaders)
		sid := resp.Header.Get("Mcp-Session-Id")
		if resp.StatusCode != 200 || sid == "" {
			t.Fatalf("initialize #%d: status %d, session id %q, body %s", i, resp.StatusCode, sid, data)
		}
		h := with(jsonHeaders, "Mcp-Session-Id", sid, "Mcp-Protocol-Version", "2025-11-25")
		if resp, _ := doRequest(t, "POST", tg.mcpURL(), `{"jsonrpc":"2.0","method":"notifications/initialized"}`, h); resp.StatusCode != 202 {
			t.Fatalf("notifications/initialized #%d: status %d, want 202", i, resp.StatusCode)
		}
		resp, data = doRequest(t, "POST", tg.mcpURL(), `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"demo__multiply","arguments":{"a":6,"b":7}}}`, h)
		if resp.StatusCode != 200 || !bytes.Contains(data, []byte(`"42"`)) {
			t.Fatalf("tools/call #%d: status %d, body %s", i, resp.StatusCode, data)
		}
	}
}
