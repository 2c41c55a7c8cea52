package gateway

// The gateway as an OAuth resource server, end to end: a real OpenID
// provider (discovery, JWKS, signed tokens) from package authtest, real
// upstreams, and clients that send bearer tokens.

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/auth/authtest"
)

const testAudience = "https://gw.test/mcp"

type authEnv struct {
	idp   *authtest.Provider
	tg    *testGateway
	calls *atomic.Int32 // calls that reached the admin upstream
	alice string        // mcp:tools mcp:admin
	bob   string        // mcp:tools
}

// bearer is an http.RoundTripper that adds a bearer token.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// upstreamAuthz records the Authorization headers an upstream receives.
type upstreamAuthz struct {
	mu   sync.Mutex
	seen []string
}

func (u *upstreamAuthz) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Header.Get("Authorization"))
		u.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func startAuthGateway(t *testing.T, authz *upstreamAuthz) *authEnv {
	t.Helper()
	idp := authtest.NewProvider(t, &authtest.ProviderOptions{Clients: map[string]string{"gateway": "s3cret"}})
	env := &authEnv{idp: idp, calls: new(atomic.Int32)}

	admin := echoServer("admin", "echo")
	admin.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method == "tools/call" {
				env.calls.Add(1)
			}
			return next(ctx, method, req)
		}
	})
	h := http.Handler(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return admin }, nil))
	if authz != nil {
		h = authz.wrap(h)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	srv := hs.URL

	adminUp := UpstreamConfig{Name: "admin", Transport: TransportStreamableHTTP, URL: srv + "/mcp",
		Credentials: &CredentialsConfig{OAuth2ClientCredentials: &ClientCredentialsConfig{
			TokenURL: idp.URL(authtest.TokenEndpoint), ClientID: "gateway", ClientSecret: "s3cret",
			Scopes: []string{"admin:read"}, Resource: srv + "/mcp",
		}},
	}
	env.tg = startGateway(t, []UpstreamConfig{demoUpstream("demo"), adminUp}, func(c *Config, _ *Options) {
		c.Auth = AuthConfig{
			Mode:           "oauth2",
			Issuers:        []IssuerConfig{{URL: idp.Issuer()}},
			Audience:       testAudience,
			RequiredScopes: []string{"mcp:tools"},
			Policies:       []PolicyConfig{{Upstreams: []string{"admin"}, RequireScopes: []string{"mcp:admin"}}},
		}
	})
	env.alice = idp.Token(t, authtest.Claims{Subject: "alice", Audience: []string{testAudience}, Scope: "mcp:tools mcp:admin"})
	env.bob = idp.Token(t, authtest.Claims{Subject: "bob", Audience: []string{testAudience}, Scope: "mcp:tools"})
	// Wait until both upstreams are in the catalog.
	c := authedClient(t, env.tg.mcpURL(), "streamable", env.alice)
	c.waitTools(t, "both up", hasAll("demo__multiply", "admin__echo"))
	return env
}

// authedClient connects a go-sdk client that sends token.
func authedClient(t *testing.T, url, transport, token string) *testClient {
	t.Helper()
	tc := &testClient{toolsChanged: make(chan struct{}, 100)}
	c := mcp.NewClient(&mcp.Implementation{Name: "authed", Version: "1"}, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case tc.toolsChanged <- struct{}{}:
			default:
			}
		},
	})
	hc := &http.Client{Transport: bearer{token}}
	var tr mcp.Transport = &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc}
	version := "2025-11-25"
	if transport == "sse" {
		tr, version = &mcp.SSEClientTransport{Endpoint: url, HTTPClient: hc}, "2024-11-05"
	}
	cs, err := c.Connect(context.Background(), tr, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connecting with a token: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	tc.ClientSession = cs
	return tc
}

// Every MCP endpoint refuses requests without a valid token, with the
// challenge that tells a client what to do, and nothing reaches an upstream.
func TestAuthRejectsBadTokens(t *testing.T) {
	env := startAuthGateway(t, nil)
	idp, base := env.idp, env.tg.srv.URL
	callsBefore := env.calls.Load()
	prm := `resource_metadata="https://gw.test/.well-known/oauth-protected-resource/mcp"`
	tok := func(c authtest.Claims) string { return idp.Token(t, c) }
	good := authtest.Claims{Subject: "eve", Audience: []string{testAudience}, Scope: "mcp:tools"}
	bad := func(f func(*authtest.Claims)) string { c := good; f(&c); return tok(c) }

	callBody := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin__echo","arguments":{"text":"x"}}}`
	for _, tc := range []struct {
		name, token string
		status      int
		challenge   []string // substrings of WWW-Authenticate
	}{
		{"no token", "", 401, []string{prm, `scope="mcp:tools"`}},
		{"malformed", "not-a-jwt", 401, []string{`error="invalid_token"`, prm}},
		{"wrong issuer", bad(func(c *authtest.Claims) { c.Issuer = "https://other.example" }), 401, []string{`error="invalid_token"`}},
		{"wrong audience", bad(func(c *authtest.Claims) { c.Audience = []string{"https://elsewhere/mcp"} }), 401, []string{`error="invalid_token"`}},
		{"expired", bad(func(c *authtest.Claims) {
			c.IssuedAt = time.Now().Add(-3 * time.Hour)
			c.Expiry = time.Now().Add(-2 * time.Hour)
		}), 401, []string{`error="invalid_token"`}},
		{"not yet valid", bad(func(c *authtest.Claims) { c.NotBefore = time.Now().Add(time.Hour) }), 401, []string{`error="invalid_token"`}},
		{"unsigned", bad(func(c *authtest.Claims) { c.Alg = authtest.None }), 401, []string{`error="invalid_token"`}},
		{"missing scope", bad(func(c *authtest.Claims) { c.Scope = "other" }), 403, []string{`error="insufficient_scope"`, `scope="mcp:tools"`, prm}},
	} {
		for _, ep := range []struct{ method, path, body string }{
			{"POST", PathMCP, initBody},
			{"POST", PathMCP, callBody},
			{"GET", PathMCP, ""},
			{"DELETE", PathMCP, ""},
			{"GET", PathSSE, ""},
			{"POST", PathMessage + "?sessionId=x", callBody},
		} {
			t.Run(tc.name+" "+ep.method+" "+ep.path, func(t *testing.T) {
				h := with(jsonHeaders, "Accept", "application/json, text/event-stream", "Mcp-Session-Id", "x")
				if tc.token != "" {
					h["Authorization"] = "Bearer " + tc.token
				}
				resp, body := doRequest(t, ep.method, base+ep.path, ep.body, h)
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.status, body)
				}
				challenge := resp.Header.Get("WWW-Authenticate")
				for _, want := range tc.challenge {
					if !strings.Contains(challenge, want) {
						t.Errorf("WWW-Authenticate = %q, want it to contain %s", challenge, want)
					}
				}
				if tc.name == "no token" && strings.Contains(challenge, "error=") {
					t.Errorf("WWW-Authenticate = %q: no token was sent, so no error code", challenge)
				}
			})
		}
	}
	// A token in the query string is refused, even a good one.
	resp, _ := doRequest(t, "POST", base+PathMCP+"?access_token="+env.alice, initBody, jsonHeaders)
	if resp.StatusCode != 400 {
		t.Errorf("token in the query string: status %d, want 400", resp.StatusCode)
	}
	if n := env.calls.Load() - callsBefore; n != 0 {
		t.Errorf("%d rejected requests reached the upstream", n)
	}

	// Protected resource metadata is public and names the issuer.
	for _, path := range []string{PathResourceMetadata, PathResourceMetadata + PathMCP} {
		resp, body := doRequest(t, "GET", base+path, "", nil)
		var prm struct {
			Resource             string   `json:"resource"`
			AuthorizationServers []string `json:"authorization_servers"`
			Bearer               []string `json:"bearer_methods_supported"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(body, &prm) != nil || prm.Resource != testAudience ||
			!slices.Equal(prm.AuthorizationServers, []string{idp.Issuer()}) || !slices.Equal(prm.Bearer, []string{"header"}) {
			t.Errorf("GET %s = %d %s; want metadata for %s issued by %s", path, resp.StatusCode, body, testAudience, idp.Issuer())
		}
	}
}

// One policy filters lists and gates calls: bob lacks mcp:admin, so the
// admin upstream's tool is neither listed nor callable for him (the denial
// looks like an unknown tool), over /mcp and /sse alike.
func TestAuthPolicyFiltersAndGates(t *testing.T) {
	env := startAuthGateway(t, nil)
	for _, transport := range []string{"streamable", "sse"} {
		url := env.tg.mcpURL()
		if transport == "sse" {
			url = env.tg.sseURL()
		}
		alice := authedClient(t, url, transport, env.alice)
		bob := authedClient(t, url, transport, env.bob)
		if got := toolNames(t, alice.ClientSession); !slices.Contains(got, "admin__echo") || !slices.Contains(got, "demo__multiply") {
			t.Errorf("%s: alice's tools = %v, want admin__echo and demo__multiply", transport, got)
		}
		if got := toolNames(t, bob.ClientSession); slices.Contains(got, "admin__echo") || !slices.Contains(got, "demo__multiply") {
			t.Errorf("%s: bob's tools = %v, want demo__multiply without admin__echo", transport, got)
		}
		if got := callText(t, alice.ClientSession, "admin__echo", map[string]any{"text": "hi"}); got != "admin:hi" {
			t.Errorf("%s: alice calling admin__echo = %q", transport, got)
		}
		before := env.calls.Load()
		_, err := bob.CallTool(context.Background(), &mcp.CallToolParams{Name: "admin__echo", Arguments: map[string]any{"text": "hi"}})
		if rpcCode(err) != jsonrpc.CodeInvalidParams || !strings.Contains(err.Error(), `unknown tool "admin__echo"`) {
			t.Errorf("%s: bob calling admin__echo: error %v, want the unknown-tool error", transport, err)
		}
		if env.calls.Load() != before {
			t.Errorf("%s: bob's denied call reached the upstream", transport)
		}
		if got := callText(t, bob.ClientSession, "demo__multiply", map[string]any{"a": 2, "b": 2}); got != "4" {
			t.Errorf("%s: bob calling demo__multiply = %q", transport, got)
		}
	}
}

// A session id is bound to the principal that opened it: anyone else
// presenting it gets 404, on every method and transport.
func TestAuthSessionBinding(t *testing.T) {
	env := startAuthGateway(t, nil)
	base := env.tg.srv.URL
	resp, body := doRequest(t, "POST", base+PathMCP, initBody, with(jsonHeaders, "Authorization", "Bearer "+env.alice))
	if resp.StatusCode != 200 {
		t.Fatalf("alice's initialize: %d %s", resp.StatusCode, body)
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	asBob := with(jsonHeaders, "Authorization", "Bearer "+env.bob, "Mcp-Session-Id", sid, "Accept", "application/json, text/event-stream")
	for _, m := range []struct{ method, body string }{{"POST", `{"jsonrpc":"2.0","id":2,"method":"ping"}`}, {"GET", ""}, {"DELETE", ""}} {
		if resp, body := doRequest(t, m.method, base+PathMCP, m.body, asBob); resp.StatusCode != 404 {
			t.Errorf("bob %s with alice's session: %d %s, want 404", m.method, resp.StatusCode, body)
		}
	}
	asAlice := with(asBob, "Authorization", "Bearer "+env.alice)
	if resp, body := doRequest(t, "POST", base+PathMCP, `{"jsonrpc":"2.0","id":2,"method":"ping"}`, asAlice); resp.StatusCode != 200 {
		t.Errorf("alice's own ping: %d %s, want 200", resp.StatusCode, body)
	}

	// Legacy SSE: alice's stream names its POST endpoint; bob may not use it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+PathSSE, nil)
	req.Header.Set("Authorization", "Bearer "+env.alice)
	stream, err := http.DefaultClient.Do(req)
	if err != nil || stream.StatusCode != 200 {
		t.Fatalf("alice's GET /sse: %v %v", stream, err)
	}
	defer stream.Body.Close()
	sc := bufio.NewScanner(stream.Body)
	var endpoint string
	for sc.Scan() {
		if e, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			endpoint = e
			break
		}
	}
	if !strings.HasPrefix(endpoint, PathMessage+"?sessionId=") {
		t.Fatalf("SSE endpoint event = %q", endpoint)
	}
	if resp, body := doRequest(t, "POST", base+endpoint, initBody, with(jsonHeaders, "Authorization", "Bearer "+env.bob)); resp.StatusCode != 404 {
		t.Errorf("bob posting to alice's SSE session: %d %s, want 404", resp.StatusCode, body)
	}
	if resp, body := doRequest(t, "POST", base+endpoint, initBody, with(jsonHeaders, "Authorization", "Bearer "+env.alice)); resp.StatusCode != 202 {
		t.Errorf("alice posting to her SSE session: %d %s, want 202", resp.StatusCode, body)
	}
}

// The upstream gets the gateway's own client-credentials token, requested
// for the upstream's resource, and never the caller's.
func TestAuthUpstreamCredentials(t *testing.T) {
	authz := &upstreamAuthz{}
	env := startAuthGateway(t, authz)
	alice := authedClient(t, env.tg.mcpURL(), "streamable", env.alice)
	callText(t, alice.ClientSession, "admin__echo", map[string]any{"text": "x"})

	issued := env.idp.IssuedTokens()
	if len(issued) == 0 {
		t.Fatal("the gateway never asked the token endpoint for a token")
	}
	if got := issued[0]; got.ClientID != "gateway" || got.Scope != "admin:read" || len(got.Resource) != 1 {
		t.Errorf("issued token = %+v, want client gateway, scope admin:read, one resource", got)
	}
	authz.mu.Lock()
	defer authz.mu.Unlock()
	if len(authz.seen) == 0 {
		t.Fatal("the upstream saw no requests")
	}
	for _, h := range authz.seen {
		if h != "Bearer "+issued[len(issued)-1].AccessToken && h != "Bearer "+issued[0].AccessToken {
			t.Errorf("upstream saw Authorization %q, want the gateway's own token", h)
		}
		if strings.Contains(h, env.alice) || strings.Contains(h, env.bob) {
			t.Errorf("upstream saw a caller's token")
		}
	}
}
