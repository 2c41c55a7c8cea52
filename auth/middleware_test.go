package auth_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/mcpgw/gateway/auth"
	"github.com/mcpgw/gateway/auth/authtest"
)

// The exact challenges and bodies the middleware answers with.
const (
	challengeNoToken      = `Bearer resource_metadata="` + testMetadataURL + `", scope="mcp:tools"`
	challengeInvalid      = `Bearer error="invalid_token", resource_metadata="` + testMetadataURL + `", scope="mcp:tools"`
	challengeScope        = `Bearer error="insufficient_scope", resource_metadata="` + testMetadataURL + `", scope="mcp:tools"`
	challengeQuery        = `Bearer error="invalid_request", error_description="send one access token, in the Authorization header only", resource_metadata="` + testMetadataURL + `", scope="mcp:tools"`
	bodyUnauthorized      = `{"error":{"code":-32001,"message":"Unauthorized"},"id":null,"jsonrpc":"2.0"}`
	bodyForbidden         = `{"error":{"code":-32001,"message":"Forbidden"},"id":null,"jsonrpc":"2.0"}`
	bodyBadRequest        = `{"error":{"code":-32600,"message":"Bad Request"},"id":null,"jsonrpc":"2.0"}`
	bodyUnavailable       = `{"error":{"code":-32603,"message":"Authorization server unavailable"},"id":null,"jsonrpc":"2.0"}`
	wantRetryAfterSeconds = "10"
)

func newAuthenticator(t *testing.T, cfg auth.Config, clk *authtest.Clock) *auth.Authenticator {
	t.Helper()
	a, err := auth.New(cfg, &auth.Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// serve runs r through a.Middleware and reports whether next was called.
func serve(a *auth.Authenticator, r *http.Request, next http.HandlerFunc) (*httptest.ResponseRecorder, bool) {
	called := false
	h := a.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called = true
		if next != nil {
			next(w, r)
		}
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec, called
}

func TestMiddlewareRejects(t *testing.T) {
	clk := authtest.NewClock()
	p := authtest.NewProvider(t, &authtest.ProviderOptions{Now: clk.Now})
	other := authtest.NewProvider(t, &authtest.ProviderOptions{Now: clk.Now})
	goodKey := p.SigningKey(authtest.RS256)
	other.Publish(goodKey) // same key and kid, but an issuer that is not trusted
	impostor := authtest.NewKey(t, authtest.RS256, goodKey.KID())
	unpublished := authtest.NewKey(t, authtest.RS256, "k9")
	a := newAuthenticator(t, oauthConfig(p.Issuer()), clk)
	now := clk.Now()
	valid := func(changes map[string]any) authtest.Claims { return claims(now, changes) }
	bearer := func(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }
	// good signs a token of p, with changes to valid claims.
	good := func(changes map[string]any) string { return p.Token(t, valid(changes)) }

	for _, tc := range []struct {
		name          string
		target        string // default /mcp
		header        http.Header
		wantStatus    int
		wantChallenge string
		wantBody      string
	}{
		{"no token", "", nil, 401, challengeNoToken, bodyUnauthorized},
		{"other scheme", "", http.Header{"Authorization": {"Basic YWxpY2U6cHc="}}, 401, challengeNoToken, bodyUnauthorized},
		{"bearer without token", "", http.Header{"Authorization": {"Bearer"}}, 401, challengeNoToken, bodyUnauthorized},
		{"malformed", "", bearer("not-a-jwt"), 401, challengeInvalid, bodyUnauthorized},
		{"malformed JWT", "", bearer("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.@@@"), 401, challengeInvalid, bodyUnauthorized},
		{"bad signature", "", bearer(p.Token(t, signedBy(impostor, valid(nil)))), 401, challengeInvalid, bodyUnauthorized},
		{"unknown kid", "", bearer(p.Token(t, signedBy(unpublished, valid(nil)))), 401, challengeInvalid, bodyUnauthorized},
		{"wrong issuer", "", bearer(other.Token(t, signedBy(goodKey, valid(nil)))), 401, challengeInvalid, bodyUnauthorized},
		{"wrong audience", "", bearer(good(map[string]any{"aud": "https://other.example.com/mcp"})), 401, challengeInvalid, bodyUnauthorized},
		{"audience of a sibling path", "", bearer(good(map[string]any{"aud": "https://gw.example.com/mcp2"})), 401, challengeInvalid, bodyUnauthorized},
		{"no audience", "", bearer(good(map[string]any{"aud": nil})), 401, challengeInvalid, bodyUnauthorized},
		{"expired", "", bearer(good(map[string]any{"exp": now.Add(-2 * time.Minute).Unix()})), 401, challengeInvalid, bodyUnauthorized},
		{"no exp", "", bearer(good(map[string]any{"exp": nil})), 401, challengeInvalid, bodyUnauthorized},
		{"not yet valid", "", bearer(good(map[string]any{"nbf": now.Add(2 * time.Minute).Unix()})), 401, challengeInvalid, bodyUnauthorized},
		{"no sub", "", bearer(good(map[string]any{"sub": nil})), 401, challengeInvalid, bodyUnauthorized},
		{"alg none", "", bearer(p.Token(t, withAlg(authtest.None, valid(nil)))), 401, challengeInvalid, bodyUnauthorized},
		{"alg HS256", "", bearer(p.Token(t, withAlg(authtest.HS256, valid(nil)))), 401, challengeInvalid, bodyUnauthorized},
		{"missing scope", "", bearer(good(map[string]any{"scope": "mcp:other"})), 403, challengeScope, bodyForbidden},
		{"missing scope ES256", "", bearer(p.Token(t, withAlg(authtest.ES256, valid(map[string]any{"scope": nil})))), 403, challengeScope, bodyForbidden},
		{"token in query string", "/mcp?access_token=abc", nil, 400, challengeQuery, bodyBadRequest},
		{"token in query string and header", "/mcp?access_token=abc", bearer(good(nil)), 400, challengeQuery, bodyBadRequest},
		{"two Authorization headers", "", http.Header{"Authorization": {"Bearer a", "Bearer b"}}, 400, challengeQuery, bodyBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := tc.target
			if target == "" {
				target = "/mcp"
			}
			r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(`{}`))
			for k, vs := range tc.header {
				r.Header[k] = vs
			}
			rec, called := serve(a, r, nil)
			if called {
				t.Errorf("next handler was called")
			}
			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if got := rec.Header().Values("WWW-Authenticate"); !slices.Equal(got, []string{tc.wantChallenge}) {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.wantChallenge)
			}
			if got := rec.Body.String(); got != tc.wantBody {
				t.Errorf("body = %s, want %s", got, tc.wantBody)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
		})
	}
}

func TestMiddlewareAccepts(t *testing.T) {
	clk := authtest.NewClock()
	p := authtest.NewProvider(t, &authtest.ProviderOptions{Now: clk.Now})
	a := newAuthenticator(t, oauthConfig(p.Issuer()), clk)
	token := p.Token(t, claims(clk.Now(), map[string]any{"scope": "mcp:tools extra"}))

	for _, header := range []string{"Bearer " + token, "bearer " + token, "BEARER  " + token} {
		r := httptest.NewRequest(http.MethodGet, "/mcp?sessionId=abc", nil)
		r.Header.Set("Authorization", header)
		rec, called := serve(a, r, func(w http.ResponseWriter, r *http.Request) {
			p := auth.PrincipalFromContext(r.Context())
			if p == nil || p.Subject != "alice" {
				t.Errorf("PrincipalFromContext = %v, want alice", p)
				return
			}
			ti := sdkauth.TokenInfoFromContext(r.Context())
			if ti == nil {
				t.Errorf("TokenInfoFromContext = nil, want token info")
				return
			}
			if ti.UserID != p.Key() {
				t.Errorf("TokenInfo.UserID = %q, want %q", ti.UserID, p.Key())
			}
			if !slices.Equal(ti.Scopes, []string{"mcp:tools", "extra"}) {
				t.Errorf("TokenInfo.Scopes = %q, want [mcp:tools extra]", ti.Scopes)
			}
			if got := auth.PrincipalFromTokenInfo(ti); got != p {
				t.Errorf("PrincipalFromTokenInfo = %v, want %v", got, p)
			}
			w.WriteHeader(http.StatusTeapot)
		})
		if !called || rec.Code != http.StatusTeapot {
			t.Errorf("Authorization %.12q...: called=%v status=%d, want next called with 418", header, called, rec.Code)
		}
	}
}

func TestMiddlewareUnavailable(t *testing.T) {
	clk := authtest.NewClock()
	p := authtest.NewProvider(t, &authtest.ProviderOptions{Now: clk.Now})
	p.SetStatus(authtest.DiscoveryEndpoint, http.StatusBadGateway)
	a := newAuthenticator(t, oauthConfig(p.Issuer()), clk)

	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+p.Token(t, claims(clk.Now(), nil)))
	rec, called := serve(a, r, nil)
	if called {
		t.Errorf("next handler was called")
	}
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", rec.Code)
	}
	if got := rec.Header().Get("Retry-After"); got != wantRetryAfterSeconds {
		t.Errorf("Retry-After = %q, want %q", got, wantRetryAfterSeconds)
	}
	if got := rec.Header().Values("WWW-Authenticate"); got != nil {
		t.Errorf("WWW-Authenticate = %q, want none: the token was not found bad", got)
	}
	if got := rec.Body.String(); got != bodyUnavailable {
		t.Errorf("body = %s, want %s", got, bodyUnavailable)
	}
}

func TestMiddlewareModeNone(t *testing.T) {
	a := newAuthenticator(t, auth.Config{Mode: auth.ModeNone}, authtest.NewClock())
	r := httptest.NewRequest(http.MethodPost, "/mcp?access_token=x", nil)
	r.Header.Set("Authorization", "Bearer garbage")
	rec, called := serve(a, r, func(w http.ResponseWriter, r *http.Request) {
		if p := auth.PrincipalFromContext(r.Context()); p != nil {
			t.Errorf("PrincipalFromContext = %v, want nil", p)
		}
	})
	if !called || rec.Code != http.StatusOK {
		t.Errorf("called=%v status=%d, want pass-through", called, rec.Code)
	}
	if got := a.MetadataURL(); got != "" {
		t.Errorf("MetadataURL() = %q, want empty", got)
	}
}

func TestNewMakesNoRequests(t *testing.T) {
	// The gateway must start while its identity provider is down.
	p := authtest.NewProvider(t, nil)
	newAuthenticator(t, oauthConfig(p.Issuer()), authtest.NewClock())
	if n := p.TotalRequests(); n != 0 {
		t.Errorf("requests during New: %d (discovery %d, JWKS %d); want none", n, p.Requests(authtest.DiscoveryEndpoint), p.Requests(authtest.JWKSEndpoint))
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	_, err := auth.New(auth.Config{Mode: auth.ModeOAuth2}, nil)
	if err == nil || !strings.Contains(err.Error(), "auth.issuers: is empty") {
		t.Errorf("New(oauth2 without issuers) = %v, want the problems", err)
	}
}
