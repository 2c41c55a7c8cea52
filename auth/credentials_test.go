package auth_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgw/gateway/auth"
	"github.com/mcpgw/gateway/auth/authtest"
)

func TestClientCredentials(t *testing.T) {
	// The provider checks the client's credentials and grants
	// client_credentials only. The first token is about to expire.
	p := authtest.NewProvider(t, &authtest.ProviderOptions{
		Clients:       map[string]string{"gateway-github": "s3cret"},
		TokenLifetime: time.Second,
	})
	var mu sync.Mutex // guards seen
	var seen []string // Authorization headers at the upstream

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Header.Values("Authorization")...)
	}))
	defer upstream.Close()

	client := &http.Client{Transport: auth.ClientCredentials(auth.ClientCredentialsConfig{
		TokenURL:     p.URL(authtest.TokenEndpoint),
		ClientID:     "gateway-github",
		ClientSecret: "s3cret",
		Scopes:       []string{"repo:read", "repo:status"},
		Resource:     "https://example.com/mcp",
	}, nil)}

	for i := range 3 {
		req, _ := http.NewRequest(http.MethodPost, upstream.URL+"/mcp", nil)
		req.Header.Set("Authorization", "Bearer caller-token")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := req.Header.Get("Authorization"); got != "Bearer caller-token" {
			t.Errorf("the caller's request was modified: Authorization = %q", got)
		}
		if i == 0 {
			p.SetTokenLifetime(time.Hour)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	issued := p.IssuedTokens()
	for _, tok := range issued {
		for _, check := range []struct{ what, got, want string }{
			{"client id", tok.ClientID, "gateway-github"},
			{"resource", strings.Join(tok.Resource, " "), "https://example.com/mcp"},
			{"scope", tok.Scope, "repo:read repo:status"},
		} {
			if check.got != check.want {
				t.Errorf("token request: %s = %q, want %q", check.what, check.got, check.want)
			}
		}
	}
	if n := p.Requests(authtest.TokenEndpoint); n != len(issued) {
		t.Errorf("token requests = %d, want %d, one per token: Basic authentication must work at once", n, len(issued))
	}
	// The first token expires within oauth2's early-refresh window, so the
	// second request fetches another, which the third reuses.
	if len(issued) != 2 {
		t.Fatalf("tokens issued = %d, want 2", len(issued))
	}
	first, second := "Bearer "+issued[0].AccessToken, "Bearer "+issued[1].AccessToken
	if want := []string{first, second, second}; !slices.Equal(seen, want) {
		t.Errorf("upstream saw Authorization %q, want %q", seen, want)
	}
}

func TestClientCredentialsTokenFailure(t *testing.T) {
	p := authtest.NewProvider(t, &authtest.ProviderOptions{Clients: map[string]string{"gw": "right"}})
	var called atomic.Bool
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called.Store(true) }))
	defer upstream.Close()

	client := &http.Client{Transport: auth.ClientCredentials(auth.ClientCredentialsConfig{
		TokenURL: p.URL(authtest.TokenEndpoint), ClientID: "gw", ClientSecret: "wrong",
	}, nil)}
	req, _ := http.NewRequest(http.MethodGet, upstream.URL, nil)
	req.Header.Set("Authorization", "Bearer caller-token")
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("request without a gateway token succeeded, want an error")
	}
	if called.Load() {
		t.Errorf("the upstream was called without a gateway token")
	}
	if p.Requests(authtest.TokenEndpoint) == 0 || len(p.IssuedTokens()) != 0 {
		t.Errorf("token requests = %d, tokens issued = %d; want some, none", p.Requests(authtest.TokenEndpoint), len(p.IssuedTokens()))
	}
}
