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
)

func oauthConfig(issuers ...string) auth.Config {
	cfg := auth.Config{Mode: auth.ModeOAuth2, Audience: testAudience, RequiredScopes: []string{"mcp:tools"}}
	for _, u := range issuers {
		cfg.Issuers = append(cfg.Issuers, auth.IssuerConfig{URL: u})
	}
	return cfg
}

func newVerifier(t *testing.T, cfg auth.Config, clk *clock) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(cfg, &auth.Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func TestVerifyPrincipal(t *testing.T) {
	p := newIdP(t)
	rsa, ec := newRSAKey(t, "r1"), newECKey(t, "e1")
	p.publish(rsa, ec)
	clk := newClock()
	v := newVerifier(t, oauthConfig(p.URL()), clk)

	for _, tc := range []struct {
		name       string
		key        *signingKey
		changes    map[string]any
		wantScopes []string
	}{
		{"RS256 scope string", rsa, map[string]any{"scope": "mcp:tools mcp:admin"}, []string{"mcp:tools", "mcp:admin"}},
		{"ES256", ec, nil, []string{"mcp:tools"}},
		{"scp list", rsa, map[string]any{"scope": nil, "scp": []string{"a", "b"}}, []string{"a", "b"}},
		{"scp string", rsa, map[string]any{"scope": nil, "scp": "a b"}, []string{"a", "b"}},
		{"scope and scp merged", rsa, map[string]any{"scope": "a b", "scp": []string{"b", "c"}}, []string{"a", "b", "c"}},
		{"no scopes", rsa, map[string]any{"scope": nil}, nil},
		{"aud string with trailing slash", rsa, map[string]any{"aud": testAudience + "/"}, []string{"mcp:tools"}},
		{"aud among others", rsa, map[string]any{"aud": []string{"https://other", testAudience}}, []string{"mcp:tools"}},
		{"expired within skew", rsa, map[string]any{"exp": clk.Now().Add(-30 * time.Second).Unix()}, []string{"mcp:tools"}},
		{"nbf within skew", rsa, map[string]any{"nbf": clk.Now().Add(30 * time.Second).Unix()}, []string{"mcp:tools"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := claims(p.URL(), clk.Now(), tc.changes)
			got, err := v.Verify(context.Background(), tc.key.sign(t, c))
			if err != nil {
				t.Fatalf("Verify = %v, want a principal", err)
			}
			if got.Key() != p.URL()+"|alice" {
				t.Errorf("Key() = %q, want %q", got.Key(), p.URL()+"|alice")
			}
			if !slices.Equal(got.Scopes, tc.wantScopes) {
				t.Errorf("Scopes = %q, want %q", got.Scopes, tc.wantScopes)
			}
			if want := time.Unix(c["exp"].(int64), 0); !got.Expiry.Equal(want) {
				t.Errorf("Expiry = %v, want %v", got.Expiry, want)
			}
			if got.Claims["sub"] != "alice" {
				t.Errorf("Claims[sub] = %v, want alice", got.Claims["sub"])
			}
		})
	}
}

func TestVerifyKeyRotation(t *testing.T) {
	p := newIdP(t)
	k1, k2 := newRSAKey(t, "k1"), newECKey(t, "k2")
	p.publish(k1)
	clk := newClock()
	v := newVerifier(t, oauthConfig(p.URL()), clk)
	ctx := context.Background()

	old := k1.sign(t, claims(p.URL(), clk.Now(), nil))
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("Verify(k1 token) = %v, want success", err)
	}
	// Rotate: k2 replaces k1. A token with the new kid makes the key set
	// refetch the JWKS; no restart, no new Verifier.
	p.publish(k2)
	if _, err := v.Verify(ctx, k2.sign(t, claims(p.URL(), clk.Now(), nil))); err != nil {
		t.Fatalf("Verify(k2 token) after rotation = %v, want success", err)
	}
	if _, jwks := p.hits(); jwks != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (first use, rotation)", jwks)
	}
	// Whether k1 still verifies now is go-oidc's business: its key set
	// swaps the cached keys just after answering the refetch.
}

func TestVerifyDiscoveryIsLazyAndRetried(t *testing.T) {
	p := newIdP(t)
	k := newRSAKey(t, "k1")
	p.publish(k)
	p.setDiscoveryStatus(http.StatusInternalServerError)
	clk := newClock()
	v := newVerifier(t, oauthConfig(p.URL()), clk)
	ctx := context.Background()
	if d, _ := p.hits(); d != 0 {
		t.Fatalf("discovery requests after NewVerifier = %d, want 0", d)
	}

	token := k.sign(t, claims(p.URL(), clk.Now(), nil))
	if _, err := v.Verify(ctx, token); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Verify with discovery down = %v, want ErrUnavailable", err)
	}
	// Within DiscoveryRetry (10s) the failure is remembered.
	p.setDiscoveryStatus(0)
	clk.Advance(5 * time.Second)
	if _, err := v.Verify(ctx, token); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Verify within the retry interval = %v, want ErrUnavailable", err)
	}
	if d, _ := p.hits(); d != 1 {
		t.Errorf("discovery requests within the retry interval = %d, want 1", d)
	}
	clk.Advance(6 * time.Second)
	if _, err := v.Verify(ctx, token); err != nil {
		t.Fatalf("Verify after the retry interval = %v, want success", err)
	}
	if d, _ := p.hits(); d != 2 {
		t.Errorf("discovery requests = %d, want 2", d)
	}
}

func TestVerifyOneDiscoveryForConcurrentFirstUse(t *testing.T) {
	p := newIdP(t)
	k := newRSAKey(t, "k1")
	p.publish(k)
	clk := newClock()
	v := newVerifier(t, oauthConfig(p.URL()), clk)
	token := k.sign(t, claims(p.URL(), clk.Now(), nil))

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
	if d, _ := p.hits(); d != 1 {
		t.Errorf("discovery requests = %d, want 1", d)
	}
}

func TestVerifyOAuthMetadataFallback(t *testing.T) {
	// An MCP authorization server may publish RFC 8414 metadata only.
	p := newIdP(t)
	p.mu.Lock()
	p.oauthOnly = true
	p.mu.Unlock()
	k := newRSAKey(t, "k1")
	p.publish(k)
	clk := newClock()
	v := newVerifier(t, oauthConfig(p.URL()), clk)
	if _, err := v.Verify(context.Background(), k.sign(t, claims(p.URL(), clk.Now(), nil))); err != nil {
		t.Fatalf("Verify via RFC 8414 metadata = %v, want success", err)
	}
}

func TestVerifyRoutesByIssuer(t *testing.T) {
	// Two issuers, each with its own keys: a token verifies only with the
	// keys of the issuer it names.
	p1, p2 := newIdP(t), newIdP(t)
	k1, k2 := newRSAKey(t, "same-kid"), newRSAKey(t, "same-kid")
	p1.publish(k1)
	p2.publish(k2)
	clk := newClock()
	v := newVerifier(t, oauthConfig(p1.URL(), p2.URL()), clk)
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		key  *signingKey
		iss  string
		ok   bool
	}{
		{"issuer 1", k1, p1.URL(), true},
		{"issuer 2", k2, p2.URL(), true},
		{"issuer 2 key claiming issuer 1", k2, p1.URL(), false},
	} {
		_, err := v.Verify(ctx, tc.key.sign(t, claims(tc.iss, clk.Now(), nil)))
		if (err == nil) != tc.ok {
			t.Errorf("%s: Verify = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestVerifyErrors(t *testing.T) {
	// The middleware table covers these end to end; here the error kinds.
	clk := newClock()
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
