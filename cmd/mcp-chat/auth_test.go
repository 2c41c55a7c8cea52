package main

// Auth end to end with the real gateway in auth mode oauth2: a 401 that
// names the protected resource metadata, a bearer token from the
// environment, client credentials from the authtest OpenID provider, and
// the authorization code flow with PKCE against a small authorization
// server (fakeAS) whose tokens the authtest provider signs.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mcpgw/gateway/auth/authtest"
)

// freePort returns a loopback port that was free a moment ago: the
// gateway's audience (public_url + /mcp) must be known before it starts.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startAuthGateway starts a gateway that requires tokens of issuer with
// the scope mcp:tools, for the audience http://127.0.0.1:port/mcp.
func startAuthGateway(t *testing.T, issuer string) *gatewayProc {
	t.Helper()
	base := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	return startGateway(t, gatewayConfig{
		listen:    strings.TrimPrefix(base, "http://"),
		publicURL: base,
		auth:      fmt.Sprintf("  mode: oauth2\n  issuers: [{url: %q}]\n  required_scopes: [mcp:tools]", issuer),
	})
}

// Without credentials the gateway answers 401, and mcp-chat says where the
// protected resource metadata is and what to do; a rejected bearer token
// says so; a bearer token from the environment works.
func TestBearerAndUnauthorized(t *testing.T) {
	t.Parallel()
	idp := authtest.NewProvider(t, nil)
	gw := startAuthGateway(t, idp.Issuer())
	prm := gw.base + "/.well-known/oauth-protected-resource/mcp"

	code, stdout, stderr := runBinary(t, nil, "--url", gw.mcpURL(), "--base-url", "http://127.0.0.1:1/v1", "--once", "hi")
	for _, want := range []string{
		"mcp-chat: the gateway at " + gw.mcpURL() + " requires authorization: 401 Unauthorized",
		"protected resource metadata: " + prm,
		"scope: mcp:tools",
		"set $MCP_BEARER_TOKEN",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code != 1 || stdout != "" {
		t.Errorf("without a token: exit %d, stdout %q; want 1 and nothing", code, stdout)
	}

	// The same over the legacy SSE transport.
	code, _, stderr = runChat(t, nil, "", "--url", gw.sseURL(), "--base-url", "http://127.0.0.1:1/v1", "--once", "hi")
	if code != 1 || !strings.Contains(stderr, "protected resource metadata: "+prm) {
		t.Errorf("SSE without a token: exit %d, stderr:\n%s", code, stderr)
	}

	wrong := idp.Token(t, authtest.Claims{Subject: "eve", Audience: []string{"https://elsewhere/mcp"}, Scope: "mcp:tools"})
	code, _, stderr = runChat(t, map[string]string{"MCP_BEARER_TOKEN": wrong}, "", "--url", gw.mcpURL(), "--base-url", "http://127.0.0.1:1/v1", "--once", "hi")
	if code != 1 || !strings.Contains(stderr, `401 Unauthorized (invalid_token`) || !strings.Contains(stderr, "the bearer token in $MCP_BEARER_TOKEN was not accepted") {
		t.Errorf("wrong audience: exit %d, stderr:\n%s", code, stderr)
	}

	good := idp.Token(t, authtest.Claims{Subject: "alice", Audience: []string{gw.mcpURL()}, Scope: "mcp:tools"})
	for _, u := range []string{gw.mcpURL(), gw.sseURL()} {
		m := newFakeModel(t, scripted(t, calls(call("c1", "demo__multiply", `{"a":6,"b":7}`)), answer("42")))
		code, stdout, stderr = runBinary(t, map[string]string{"MCP_TOKEN": good}, "--bearer-env", "MCP_TOKEN", "--url", u, "--base-url", m.url(), "--once", "6*7?")
		if code != 0 || stdout != "42\n" || !strings.Contains(stderr, "the bearer token in $MCP_TOKEN") {
			t.Errorf("%s with a token: exit %d, stdout %q, stderr:\n%s", u, code, stdout, stderr)
		}
	}
}

// Client credentials: a token from the provider's token endpoint, for the
// gateway's resource (discovered from its metadata when the URL is /sse),
// and a clear error when the token endpoint refuses.
func TestClientCredentials(t *testing.T) {
	t.Parallel()
	idp := authtest.NewProvider(t, &authtest.ProviderOptions{Clients: map[string]string{"chat": "s3cret"}})
	gw := startAuthGateway(t, idp.Issuer())
	for i, u := range []string{gw.mcpURL(), gw.sseURL()} {
		m := newFakeModel(t, scripted(t, calls(call("c1", "demo__multiply", `{"a":6,"b":7}`)), answer("42")))
		code, stdout, stderr := runChat(t, map[string]string{"MCP_OAUTH_CLIENT_SECRET": "s3cret"}, "",
			"--url", u, "--base-url", m.url(), "--once", "6*7?",
			"--oauth-token-url", idp.URL(authtest.TokenEndpoint), "--oauth-client-id", "chat", "--oauth-scopes", "mcp:tools")
		if code != 0 || stdout != "42\n" {
			t.Fatalf("%s: exit %d, stdout %q, stderr:\n%s", u, code, stdout, stderr)
		}
		issued := idp.IssuedTokens()
		if len(issued) != i+1 {
			t.Fatalf("%d tokens issued, want %d", len(issued), i+1)
		}
		if got := issued[i]; got.ClientID != "chat" || got.Scope != "mcp:tools" || !slices.Equal(got.Resource, []string{gw.mcpURL()}) {
			t.Errorf("%s: token issued to %q for scope %q and resource %v, want chat, mcp:tools, [%s]", u, got.ClientID, got.Scope, got.Resource, gw.mcpURL())
		}
	}

	code, _, stderr := runChat(t, map[string]string{"MCP_OAUTH_CLIENT_SECRET": "wrong"}, "",
		"--url", gw.mcpURL(), "--base-url", "http://127.0.0.1:1/v1", "--once", "hi",
		"--oauth-token-url", idp.URL(authtest.TokenEndpoint), "--oauth-client-id", "chat")
	want := "mcp-chat: getting a token from " + idp.URL(authtest.TokenEndpoint) + ": 401 Unauthorized: invalid_client"
	if code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("wrong secret: exit %d, stderr:\n%s\nwant %q", code, stderr, want)
	}
}

// The authorization code flow with PKCE: mcp-chat prints the URL to open
// and takes the code at its loopback redirect; the test is the browser.
// Over Streamable HTTP with dynamic client registration (the go-sdk
// transport runs the flow), and over SSE with a pre-registered client (the
// flow runs behind oauthTransport).
func TestLogin(t *testing.T) {
	t.Parallel()
	as := newFakeAS(t)
	gw := startAuthGateway(t, as.srv.URL)
	for _, tc := range []struct {
		name, url, clientID string
	}{
		{"streamable, dynamic registration", gw.mcpURL(), ""},
		{"sse, pre-registered client", gw.sseURL(), "chat-public"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newFakeModel(t, scripted(t, calls(call("c1", "demo__multiply", `{"a":6,"b":7}`)), answer("42")))
			args := []string{"--url", tc.url, "--base-url", m.url(), "--once", "6*7?", "--login"}
			if tc.clientID != "" {
				args = append(args, "--oauth-client-id", tc.clientID)
			}
			r := startChat(t, nil, args...)
			r.stderr.waitFor(t, "Waiting for the redirect")
			authURL := openURLRE.FindStringSubmatch(r.stderr.String())[1]
			resp, err := http.Get(authURL) // follows the redirect to mcp-chat
			if err != nil {
				t.Fatalf("opening the authorization URL: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Request.URL.Path != "/callback" {
				t.Errorf("the browser ended at %s with %d, want mcp-chat's /callback with 200", resp.Request.URL, resp.StatusCode)
			}
			if code := r.wait(t); code != 0 || r.stdout.String() != "42\n" {
				t.Fatalf("exit %d, stdout %q; stderr:\n%s", code, r.stdout, r.stderr)
			}
			g := as.lastGrant()
			if g.resource != gw.mcpURL() || g.scope != "mcp:tools" || (tc.clientID != "" && g.clientID != tc.clientID) {
				t.Errorf("grant for client %q, resource %q, scope %q; want %q, %s, mcp:tools", g.clientID, g.resource, g.scope, tc.clientID, gw.mcpURL())
			}
		})
	}
}

// Ctrl-C while waiting for the sign-in ends mcp-chat.
func TestLoginInterrupted(t *testing.T) {
	t.Parallel()
	as := newFakeAS(t)
	gw := startAuthGateway(t, as.srv.URL)
	r := startChat(t, nil, "--url", gw.mcpURL(), "--base-url", "http://127.0.0.1:1/v1", "--login")
	r.stderr.waitFor(t, "Waiting for the redirect")
	r.interrupts <- os.Interrupt
	if code := r.wait(t); code != exitInterrupted || !strings.Contains(r.stderr.String(), "mcp-chat: interrupted") {
		t.Errorf("exit %d, stderr:\n%s\nwant %d and interrupted", code, r.stderr, exitInterrupted)
	}
}

var openURLRE = regexp.MustCompile(`Open this URL in your browser:\n\n  (\S+)\n`)

// fakeAS is an OAuth 2.1 authorization server for the authorization code
// flow with PKCE (S256 only), dynamic client registration and the client
// "chat-public" pre-registered. It approves every request at once, as if
// the user had signed in, and issues JWTs that idp signs with iss set to
// the fakeAS's URL, so the gateway verifies them with idp's keys found
// through the fakeAS's discovery document.
type fakeAS struct {
	srv *httptest.Server
	idp *authtest.Provider

	mu      sync.Mutex          // guards the fields below
	clients map[string][]string // client id -> redirect URIs ("*" = any loopback)
	grants  map[string]grant    // by code
	codes   int                 // codes issued
	last    grant
}

// grant is one authorization.
type grant struct {
	clientID, redirectURI, challenge, resource, scope string
}

func newFakeAS(t *testing.T) *fakeAS {
	as := &fakeAS{idp: authtest.NewProvider(t, nil), clients: map[string][]string{"chat-public": {"*"}}, grants: map[string]grant{}}
	mux := http.NewServeMux()
	meta := func(w http.ResponseWriter, r *http.Request) {
		writeJSONTest(w, 200, map[string]any{
			"issuer":                                as.srv.URL,
			"authorization_endpoint":                as.srv.URL + "/authorize",
			"token_endpoint":                        as.srv.URL + "/token",
			"registration_endpoint":                 as.srv.URL + "/register",
			"jwks_uri":                              as.idp.URL(authtest.JWKSEndpoint),
			"response_types_supported":              []string{"code"},
			"grant_types_supported":                 []string{"authorization_code"},
			"code_challenge_methods_supported":      []string{"S256"},
			"token_endpoint_auth_methods_supported": []string{"none"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	}
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", meta)
	mux.HandleFunc("GET /.well-known/openid-configuration", meta)
	mux.HandleFunc("POST /register", func(w http.ResponseWriter, r *http.Request) {
		var md struct {
			RedirectURIs []string `json:"redirect_uris"`
		}
		if err := json.NewDecoder(r.Body).Decode(&md); err != nil || len(md.RedirectURIs) == 0 {
			writeJSONTest(w, 400, map[string]string{"error": "invalid_client_metadata"})
			return
		}
		as.mu.Lock()
		id := fmt.Sprintf("dyn-%d", len(as.clients)) // clients are never removed
		as.clients[id] = md.RedirectURIs
		as.mu.Unlock()
		writeJSONTest(w, 201, map[string]any{"client_id": id, "redirect_uris": md.RedirectURIs, "token_endpoint_auth_method": "none"})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		g := grant{clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), resource: q.Get("resource"), scope: q.Get("scope")}
		ru, err := url.Parse(g.redirectURI)
		as.mu.Lock()
		allowed := as.clients[g.clientID]
		as.mu.Unlock()
		switch {
		case q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || g.challenge == "" || q.Get("state") == "":
			http.Error(w, "bad authorization request", 400)
			return
		case err != nil || ru.Hostname() != "127.0.0.1" || (!slices.Contains(allowed, g.redirectURI) && !slices.Contains(allowed, "*")):
			http.Error(w, "unknown client or redirect URI", 400)
			return
		}
		as.mu.Lock()
		as.codes++
		code := fmt.Sprintf("code-%d", as.codes)
		as.grants[code] = g
		as.mu.Unlock()
		rq := ru.Query()
		rq.Set("code", code)
		rq.Set("state", q.Get("state"))
		ru.RawQuery = rq.Encode()
		http.Redirect(w, r, ru.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f := r.PostForm
		client := f.Get("client_id")
		if id, _, ok := r.BasicAuth(); ok {
			client = id
		}
		as.mu.Lock()
		g, ok := as.grants[f.Get("code")]
		as.mu.Unlock()
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		switch {
		case f.Get("grant_type") != "authorization_code" || !ok:
			writeJSONTest(w, 400, map[string]string{"error": "invalid_grant"})
			return
		case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
			writeJSONTest(w, 400, map[string]string{"error": "invalid_grant", "error_description": "PKCE verification failed"})
			return
		case f.Get("redirect_uri") != g.redirectURI || client != g.clientID || f.Get("resource") != g.resource:
			writeJSONTest(w, 400, map[string]string{"error": "invalid_grant", "error_description": "mismatch"})
			return
		}
		tok := as.idp.Token(t, authtest.Claims{Issuer: as.srv.URL, Subject: "alice", Audience: []string{g.resource}, Scope: g.scope})
		as.mu.Lock()
		delete(as.grants, f.Get("code")) // codes are single-use
		as.last = g
		as.mu.Unlock()
		writeJSONTest(w, 200, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600, "scope": g.scope})
	})
	as.srv = httptest.NewServer(mux)
	t.Cleanup(as.srv.Close)
	return as
}

// lastGrant returns the grant of the last token issued.
func (as *fakeAS) lastGrant() grant {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.last
}

func writeJSONTest(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
