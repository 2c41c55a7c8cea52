package auth_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcpgw/gateway/auth"
	"github.com/mcpgw/gateway/auth/authtest"
)

func oauthConfig(issuers ...string) auth.Config {
	cfg := auth.Config{Mode: auth.ModeOAuth2, Audience: testAudience, RequiredScopes: []string{"mcp:tools"}}
	for _, u := range issuers {
		cfg.Issuers = append(cfg.Issuers, auth.IssuerConfig{URL: u})
	}
	return cfg
}

func newVerifier(t *testing.T, cfg auth.Config, clk *authtest.Clock) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(cfg, &auth.Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func TestVerifyPrincipal(t *testing.T) {
	clk := authtest.NewClock()
	p := authtest.NewProvider(t, &authtest.ProviderOptions{Now: clk.Now})
	v := newVerifier(t, oauthConfig(p.Issuer()), clk)

	for _, tc := range []struct {
		name       string
		alg        string
		changes    map[string]any
		wantScopes []string
	}{
		{"RS256 scope string", authtest.RS256, map[string]any{"scope": "mcp:tools mcp:admin"}, []string{"mcp:tools", "mcp:admin"}},
		{"ES256", authtest.ES256, nil, []string{"mcp:tools"}},
		{"scp list", authtest.RS256, map[string]any{"scope": nil, "scp": []string{"a", "b"}}, []string{"a", "b"}},
		{"scp string", authtest.RS256, map[string]any{"scope": nil, "scp": "a b"}, []string{"a", "b"}},
		{"scope and scp merged", authtest.RS256, map[string]any{"scope": "a b", "scp": []string{"b", "c"}}, []string{"a", "b", "c"}},
		{"no scopes", authtest.RS256, map[string]any{"scope": nil}, nil},
		{"aud string with trailing slash", authtest.RS256, map[string]any{"aud": testAudience + "/"}, []string{"mcp:tools"}},
		{"aud among others", authtest.RS256, map[string]any{"aud": []string{"https://other", testAudience}}, []string{"mcp:tools"}},
		{"expired within skew", authtest.RS256, map[string]any{"exp": clk.Now().Add(-30 * time.Second).Unix()}, []string{"mcp:tools"}},
		{"nbf within skew", authtest.RS256, map[string]any{"nbf": clk.Now().Add(30 * time.Second).Unix()}, []string{"mcp:tools"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := withAlg(tc.alg, claims(clk.Now(), tc.changes))
			got, err := v.Verify(context.Background(), p.Token(t, c))
			if err != nil {
				t.Fatalf("Verify = %v, want a principal", err)
			}
			if got.Key() != p.Issuer()+"|alice" {
				t.Errorf("Key() = %q, want %q", got.Key(), p.Issuer()+"|alice")
			}
			if !slices.Equal(got.Scopes, tc.wantScopes) {
				t.Errorf("Scopes = %q, want %q", got.Scopes, tc.wantScopes)
			}
			exp := c.Expiry.Unix()
			if e, ok := tc.changes["exp"].(int64); ok {
				exp = e
			}
			if want := time.Unix(exp, 0); !got.Expiry.Equal(want) {
				t.Errorf("Expiry = %v, want %v", got.Expiry, want)
			}
			if got.Claims["sub"] != "alice" {
				t.Errorf("Claims[sub] = %v, want alice", got.Claims["sub"])
			}
		})
	}
}

func TestVerifyKeyRotation(t *testing.T) {
	clk := authtest.NewClock()
	p := authtest.NewProvider(t, &authtest.ProviderOptions{Now: clk.Now})
	v := newVerifier(t, oauthConfig(p.Issuer()), clk)
	ctx := context.Background()

	old := p.Token(t, claims(clk.Now(), nil))
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("Verify(token of the first key) = %v, want success", err)
	}
	// Rotate: a new key replaces the first. A token with the new kid makes
	// the key set refetch the JWKS; no restart, no new Verifier.
	p.RotateKey(t, authtest.RS256)
	if _, err := v.Verify(ctx, p.Token(t, claims(clk.Now(), nil))); err != nil {
		t.Fatalf("Verify(token of the new key) after rotation = %v, want success", err)
	}
	if jwks := p.Requests(authtest.JWKSEndpoint); jwks != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (first use, rotation)", jwks)
	}
	// Whether the first key still verifies now is go-oidc's business: its key set
	// swaps the cached keys just after answering the refetch.
}

func TestVerifyDiscoveryIsLazyAndRetried(t *testing.T) {
	clk := authtest.NewClock()
	p := authtest.NewProvider(t, &authtest.ProviderOptions{Now: clk.Now})
	p.SetStatus(authtest.DiscoveryEndpoint, http.StatusInternalServerError)
	v := newVerifier(t, oauthConfig(p.Issuer()), clk)
	ctx := context.Background()
	if d := p.Requests(authtest.DiscoveryEndpoint); d != 0 {
		t.Fatalf("discovery requests after NewVerifier = %d, want 0", d)
	}

	token := p.Token(t, claims(clk.Now(), nil))
	if _, err := v.Verify(ctx, token); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Verify with discovery down = %v, want ErrUnavailable", err)
	}
	// Within DiscoveryRetry (10s) the failure is remembered.
	p.SetStatus(authtest.DiscoveryEndpoint, 0)
	clk.Advance(5 * time.Second)
	if _, err := v.Verify(ctx, token); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Verify within the retry interval = %v, want ErrUnavailable", err)
	}
	if d := p.Requests(authtest.DiscoveryEndpoint); d != 1 {
		t.Errorf("discovery requests within the retry interval = %d, want 1", d)
	}
	clk.Advance(6 * time.Second)
	if _, err := v.Verify(ctx, token); err != nil {
		t.Fatalf("Verify after the retry interval = %v, want success", err)
	}
	if d := p.Requests(authtest.DiscoveryEndpoint); d != 2 {
		t.Errorf("discovery requests = %d, want 2", d)
	}
}

func TestVerifyOneDiscoveryForConcurrentFirstUse(t *testing.T) {
	clk := authtest.NewClock()
	p := authtest.NewProvider(t, &authtest.ProviderOptions{Now: clk.Now})
	v := newVerifier(t, oauthConfig(p.Issuer()), clk)
	token := p.Token(t, claims(clk.Now(), nil))

	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = v.Verify(context.Background(), token)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Verify #%d = %v, want success", i, err)
		}
	}
	if d := p.Requests(authtest.DiscoveryEndpoint); d != 1 {
		t.Errorf("discovery requests = %d, want 1", d)
	}
}

func TestVerifyOAuthMetadataFallback(t *testing.T) {
	// An MCP authorization server may publish RFC 8414 metadata only.
	clk := authtest.NewClock()
	p := authtest.NewProvider(t, &authtest.ProviderOptions{Now: clk.Now, OAuthMetadataOnly: true})
	v := newVerifier(t, oauthConfig(p.Issuer()), clk)
	if _, err := v.Verify(context.Background(), p.Token(t, claims(clk.Now(), nil))); err != nil {
		t.Fatalf("Verify via RFC 8414 metadata = %v, want success", err)
	}
	if n := p.Requests(authtest.OAuthMetadataEndpoint); n != 1 {
		t.Errorf("RFC 8414 metadata requests = %d, want 1", n)
	}
}

func TestVerifyRoutesByIssuer(t *testing.T) {
	// Two issuers, each with its own keys: a token verifies only with the
	// keys of the issuer it names.
	clk := authtest.NewClock()
	p1 := authtest.NewProvider(t, &authtest.ProviderOptions{Now: clk.Now})
	p2 := authtest.NewProvider(t, &authtest.ProviderOptions{Now: clk.Now})
	k1, k2 := authtest.NewKey(t, authtest.RS256, "same-kid"), authtest.NewKey(t, authtest.RS256, "same-kid")
	p1.Publish(k1)
	p2.Publish(k2)
	v := newVerifier(t, oauthConfig(p1.Issuer(), p2.Issuer()), clk)
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		key  *authtest.Key
		iss  string
		ok   bool
	}{
		{"issuer 1", k1, p1.Issuer(), true},
		{"issuer 2", k2, p2.Issuer(), true},
		{"issuer 2 key claiming issuer 1", k2, p1.Issuer(), false},
	} {
		_, err := v.Verify(ctx, p2.Token(t, withIssuer(tc.iss, signedBy(tc.key, claims(clk.Now(), nil)))))
		if (err == nil) != tc.ok {
			t.Errorf("%s: Verify = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestVerifyErrors(t *testing.T) {
	// The middleware table covers these end to end; here the error kinds.
	clk := authtest.NewClock()
	v := newVerifier(t, oauthConfig("https://idp.example.com"), clk)
	for _, tc := range []struct {
		token string
		want  error
	}{
		{"", auth.ErrNoToken},
		{"opaque-token", auth.ErrInvalidToken},
		{"a.b.c", auth.ErrInvalidToken},
	} {
		if _, err := v.Verify(context.Background(), tc.token); !errors.Is(err, tc.want) {
			t.Errorf("Verify(%q) = %v, want %v", tc.token, err, tc.want)
		}
	}
}
