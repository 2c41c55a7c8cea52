package gateway

// The gateway against an OpenID provider we did not write: panva's
// oidc-provider (a certified implementation, pinned by testdata/oidc's lock
// file) started by testdata/oidc/provider.mjs. The client finds the provider
// the way an MCP client does (the gateway's protected resource metadata, then
// the issuer's discovery document), gets client-credentials tokens for the
// gateway's resource (RFC 8707), and the gateway verifies them with the
// provider's discovery and JWKS. The test installs the package with `npm ci`
// when node_modules is missing; GATEWAY_SKIP_INTEROP=1 skips it, as it does
// the TypeScript client test. README.md, "Trying it with a real OpenID
// provider", runs the same thing by hand.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// oidcAudience is the gateway's resource URL: its public URL + /mcp,
	// as behind a proxy. It is a name tokens must carry, not an address.
	oidcAudience = "https://mcp.gateway.test/mcp"
	oidcClientID = "mcp-client"
	oidcSecret   = "e2e-secret"
	oidcReady    = "oidc provider listening issuer="
)

// syncBuffer collects a child's output, and reports the issuer from its
// ready line once.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	line  []byte
	ready chan string // buffered
	sent  bool
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	for _, c := range p {
		if c != '\n' {
			b.line = append(b.line, c)
			continue
		}
		if issuer, ok := strings.CutPrefix(string(b.line), oidcReady); ok && !b.sent {
			b.ready <- issuer
			b.sent = true
		}
		b.line = b.line[:0]
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startOIDCProvider runs provider.mjs on a free port and returns its issuer.
func startOIDCProvider(t *testing.T) string {
	t.Helper()
	if os.Getenv("GATEWAY_SKIP_INTEROP") == "1" {
		t.Skip("GATEWAY_SKIP_INTEROP=1")
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: this test runs a real OpenID provider on Node.js. "+
				"Install Node.js 20 or later with npm (https://nodejs.org, or apt-get install nodejs npm), "+
				"or set GATEWAY_SKIP_INTEROP=1 to skip it", tool)
		}
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "oidc"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
	}

	ready := make(chan string, 1)
	out := &syncBuffer{ready: ready}
	cmd := exec.Command("node", "provider.mjs", "0")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CLIENT_SECRET="+oidcSecret)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting provider.mjs: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("provider.mjs output:\n%s", out)
		}
	})
	select {
	case issuer := <-ready:
		return issuer
	case <-exited:
		t.Fatalf("provider.mjs exited before it was ready: %v\n%s", cmd.ProcessState, out)
	case <-time.After(waitTimeout):
		t.Fatalf("provider.mjs not ready after %v:\n%s", waitTimeout, out)
	}
	return ""
}

// getJSON fetches url and decodes its JSON body into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, body := doRequest(t, "GET", url, "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d: %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

// clientCredentialsToken asks tokenURL for a token with the client
// credentials grant; resource and scope are left out when empty. It returns
// the token and the scope granted.
func clientCredentialsToken(t *testing.T, tokenURL, resource, scope string) (token, granted string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if resource != "" {
		form.Set("resource", resource)
	}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, err := http.NewRequest("POST", tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(oidcClientID, oidcSecret)
	resp, err := (&http.Client{Timeout: waitTimeout}).Do(req)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		Scope       string `json:"scope"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		t.Fatalf("token response (status %d): %v", resp.StatusCode, err)
	}
	if resp.StatusCode != 200 || tr.AccessToken == "" || tr.TokenType != "Bearer" {
		t.Fatalf("token request resource=%q scope=%q: status %d, %s: %s", resource, scope, resp.StatusCode, tr.Error, tr.Description)
	}
	return tr.AccessToken, tr.Scope
}

func TestRealOpenIDProvider(t *testing.T) {
	issuer := startOIDCProvider(t)
	tg := startGateway(t, []UpstreamConfig{demoUpstream("demo")}, func(c *Config, _ *Options) {
		c.Auth = AuthConfig{
			Mode:           "oauth2",
			Issuers:        []IssuerConfig{{URL: issuer}},
			Audience:       oidcAudience,
			RequiredScopes: []string{"mcp:tools"},
		}
	})

	// Find the token endpoint as an MCP client does: the gateway names its
	// authorization server, whose discovery document names the endpoint.
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	getJSON(t, tg.srv.URL+PathResourceMetadata+PathMCP, &prm)
	if prm.Resource != oidcAudience || len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != issuer {
		t.Fatalf("protected resource metadata = %+v, want resource %s and authorization server %s", prm, oidcAudience, issuer)
	}
	var disco struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
		JWKSURI       string `json:"jwks_uri"`
	}
	getJSON(t, issuer+"/.well-known/openid-configuration", &disco)
	if disco.Issuer != issuer || disco.TokenEndpoint == "" || disco.JWKSURI == "" {
		t.Fatalf("discovery document = %+v", disco)
	}

	// A token for the gateway with mcp:tools lists and calls tools.
	good, granted := clientCredentialsToken(t, disco.TokenEndpoint, oidcAudience, "mcp:tools")
	if granted != "mcp:tools" {
		t.Fatalf("granted scope %q, want mcp:tools", granted)
	}
	cs := authedClient(t, tg.mcpURL(), "streamable", good)
	cs.waitTools(t, "demo up", hasAll("demo__multiply"))
	if got := callText(t, cs.ClientSession, "demo__multiply", map[string]any{"a": 6, "b": 7}); got != "42" {
		t.Errorf("demo__multiply(6, 7) = %q, want 42", got)
	}

	// Refusals, each for a token this provider really issued.
	otherResource, _ := clientCredentialsToken(t, disco.TokenEndpoint, "https://other.example/mcp", "mcp:tools")
	adminOnly, granted := clientCredentialsToken(t, disco.TokenEndpoint, oidcAudience, "mcp:admin")
	if granted != "mcp:admin" {
		t.Fatalf("granted scope %q, want mcp:admin", granted)
	}
	opaque, _ := clientCredentialsToken(t, disco.TokenEndpoint, "", "mcp:tools") // no resource: not a JWT
	prmParam := `resource_metadata="https://mcp.gateway.test/.well-known/oauth-protected-resource/mcp"`
	for _, tc := range []struct {
		name, token string
		status      int
		challenge   []string // substrings of WWW-Authenticate
	}{
		{"no token", "", 401, []string{prmParam, `scope="mcp:tools"`}},
		{"token for another resource", otherResource, 401, []string{`error="invalid_token"`, prmParam}},
		{"token without mcp:tools", adminOnly, 403, []string{`error="insufficient_scope"`, `scope="mcp:tools"`, prmParam}},
		{"opaque token, no introspection", opaque, 401, []string{`error="invalid_token"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := jsonHeaders
			if tc.token != "" {
				h = with(jsonHeaders, "Authorization", "Bearer "+tc.token)
			}
			resp, body := doRequest(t, "POST", tg.mcpURL(), initBody, h)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.status, body)
			}
			challenge := resp.Header.Get("WWW-Authenticate")
			for _, want := range tc.challenge {
				if !strings.Contains(challenge, want) {
					t.Errorf("WWW-Authenticate = %q, want it to contain %s", challenge, want)
				}
			}
			if tc.token == "" && strings.Contains(challenge, "error=") {
				t.Errorf("WWW-Authenticate = %q: no token was sent, so no error code", challenge)
			}
		})
	}
}
