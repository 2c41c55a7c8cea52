package auth_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/mcpgw/gateway/auth"
	"github.com/mcpgw/gateway/auth/authtest"
)

const (
	introspectionClient = "gateway"
	introspectionSecret = "s3cr:t/+%" // needs form-encoding before Basic
	trustedIssuer       = "https://idp.example.com"
)

// newIntrospectionEndpoint returns a provider whose introspection
// endpoint the gateway may use, with its credentials.
func newIntrospectionEndpoint(t *testing.T, clk *authtest.Clock) *authtest.Provider {
	t.Helper()
	return authtest.NewProvider(t, &authtest.ProviderOptions{
		Now:     clk.Now,
		Clients: map[string]string{introspectionClient: introspectionSecret},
	})
}

func introspectionConfig(e *authtest.Provider, issuers ...string) auth.Config {
	cfg := oauthConfig(append([]string{trustedIssuer}, issuers...)...)
	cfg.Introspection = &auth.IntrospectionConfig{URL: e.URL(authtest.IntrospectionEndpoint), ClientID: introspectionClient, ClientSecret: introspectionSecret}
	return cfg
}

// active returns an active introspection response at now, with changes
// applied: a nil value deletes the member.
func active(now time.Time, changes map[string]any) map[string]any {
	a := map[string]any{
		"active":    true,
		"iss":       trustedIssuer,
		"sub":       "bob",
		"client_id": "ide",
		"aud":       testAudience,
		"scope":     "mcp:tools mcp:read",
		"exp":       now.Add(time.Hour).Unix(),
	}
	for k, v := range changes {
		if v == nil {
			delete(a, k)
		} else {
			a[k] = v
		}
	}
	return a
}

func TestIntrospection(t *testing.T) {
	clk := authtest.NewClock()
	e := newIntrospectionEndpoint(t, clk)
	v := newVerifier(t, introspectionConfig(e), clk)
	now := clk.Now()

	for _, tc := range []struct {
		name       string
		answer     map[string]any // nil: the endpoint does not know the token
		wantErr    error
		wantKey    string
		wantScopes []string
	}{
		{"active", active(now, nil), nil, trustedIssuer + "|bob", []string{"mcp:tools", "mcp:read"}},
		{"aud list", active(now, map[string]any{"aud": []string{"x", testAudience}}), nil, trustedIssuer + "|bob", []string{"mcp:tools", "mcp:read"}},
		{"no iss: the endpoint vouches", active(now, map[string]any{"iss": nil}), nil, e.URL(authtest.IntrospectionEndpoint) + "|bob", []string{"mcp:tools", "mcp:read"}},
		{"no sub: client_id", active(now, map[string]any{"sub": nil}), nil, trustedIssuer + "|ide", []string{"mcp:tools", "mcp:read"}},
		{"no exp", active(now, map[string]any{"exp": nil}), nil, trustedIssuer + "|bob", []string{"mcp:tools", "mcp:read"}},
		{"unknown", nil, auth.ErrInvalidToken, "", nil},
		{"inactive", map[string]any{"active": false, "sub": "bob"}, auth.ErrInvalidToken, "", nil},
		{"active as a string", active(now, map[string]any{"active": "true"}), auth.ErrInvalidToken, "", nil},
		{"wrong audience", active(now, map[string]any{"aud": "https://other.example.com"}), auth.ErrInvalidToken, "", nil},
		{"no audience", active(now, map[string]any{"aud": nil}), auth.ErrInvalidToken, "", nil},
		{"untrusted issuer", active(now, map[string]any{"iss": "https://evil.example.com"}), auth.ErrInvalidToken, "", nil},
		{"expired", active(now, map[string]any{"exp": now.Add(-2 * time.Minute).Unix()}), auth.ErrInvalidToken, "", nil},
		{"not yet valid", active(now, map[string]any{"nbf": now.Add(2 * time.Minute).Unix()}), auth.ErrInvalidToken, "", nil},
		{"no subject at all", active(now, map[string]any{"sub": nil, "client_id": nil}), auth.ErrInvalidToken, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := "opaque-" + tc.name
			if tc.answer != nil {
				e.SetIntrospection(token, tc.answer)
			}
			p, err := v.Verify(context.Background(), token)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if p.Key() != tc.wantKey {
				t.Errorf("Key() = %q, want %q", p.Key(), tc.wantKey)
			}
			if !slices.Equal(p.Scopes, tc.wantScopes) {
				t.Errorf("Scopes = %q, want %q", p.Scopes, tc.wantScopes)
			}
		})
	}
	reqs := e.IntrospectionRequests()
	if len(reqs) == 0 {
		t.Errorf("no introspection requests")
	}
	for _, r := range reqs {
		if r.ClientID != introspectionClient || r.TokenTypeHint != "access_token" {
			t.Errorf("introspection of %q: client %q, token_type_hint %q; want %q, access_token", r.Token, r.ClientID, r.TokenTypeHint, introspectionClient)
		}
	}
}

func TestIntrospectionUnavailable(t *testing.T) {
	clk := authtest.NewClock()
	e := newIntrospectionEndpoint(t, clk)
	cfg := introspectionConfig(e)
	v := newVerifier(t, cfg, clk)
	e.SetIntrospection("t", active(clk.Now(), nil))

	e.SetStatus(authtest.IntrospectionEndpoint, http.StatusInternalServerError)
	if _, err := v.Verify(context.Background(), "t"); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("Verify with the endpoint failing = %v, want ErrUnavailable", err)
	}
	e.SetStatus(authtest.IntrospectionEndpoint, 0)
	if _, err := v.Verify(context.Background(), "t"); err != nil {
		t.Errorf("Verify after recovery = %v, want success (failures are not cached)", err)
	}

	cfg.Introspection.ClientSecret = "wrong"
	v = newVerifier(t, cfg, clk)
	if _, err := v.Verify(context.Background(), "t"); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("Verify with rejected client credentials = %v, want ErrUnavailable", err)
	}
}

func TestIntrospectionCache(t *testing.T) {
	clk := authtest.NewClock()
	e := newIntrospectionEndpoint(t, clk)
	v := newVerifier(t, introspectionConfig(e), clk)
	ctx := context.Background()
	verify := func(token string) error {
		_, err := v.Verify(ctx, token)
		return err
	}

	e.SetIntrospection("long", active(clk.Now(), nil))
	e.SetIntrospection("short", active(clk.Now(), map[string]any{"exp": clk.Now().Add(10 * time.Second).Unix()}))
	for range 3 {
		if err := verify("long"); err != nil {
			t.Fatalf("Verify(long) = %v", err)
		}
		if err := verify("short"); err != nil {
			t.Fatalf("Verify(short) = %v", err)
		}
		if err := verify("inactive"); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("Verify(inactive) = %v, want ErrInvalidToken", err)
		}
	}
	for token, want := range map[string]int{"long": 1, "short": 1, "inactive": 3} {
		if got := introspections(e, token); got != want {
			t.Errorf("introspections of %q = %d, want %d", token, got, want)
		}
	}

	// "short" is cached until its exp (10s), "long" for the TTL (60s).
	clk.Advance(11 * time.Second)
	verify("long")
	verify("short")
	if got := introspections(e, "long"); got != 1 {
		t.Errorf("introspections of long after 11s = %d, want 1", got)
	}
	if got := introspections(e, "short"); got != 2 {
		t.Errorf("introspections of short after its exp = %d, want 2", got)
	}
	clk.Advance(50 * time.Second)
	verify("long")
	if got := introspections(e, "long"); got != 2 {
		t.Errorf("introspections of long after the TTL = %d, want 2", got)
	}
}

func TestIntrospectionCacheIsBounded(t *testing.T) {
	clk := authtest.NewClock()
	e := newIntrospectionEndpoint(t, clk)
	v, err := auth.NewVerifier(introspectionConfig(e), &auth.Options{Now: clk.Now, IntrospectionCacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, token := range []string{"a", "b", "c"} {
		e.SetIntrospection(token, active(clk.Now(), nil))
	}
	// a, b fill the cache; c evicts a (the first to expire); a evicts b.
	for _, token := range []string{"a", "b", "c", "a", "c"} {
		if _, err := v.Verify(ctx, token); err != nil {
			t.Fatalf("Verify(%q) = %v", token, err)
		}
		clk.Advance(time.Second)
	}
	for token, want := range map[string]int{"a": 2, "b": 1, "c": 1} {
		if got := introspections(e, token); got != want {
			t.Errorf("introspections of %q = %d, want %d", token, got, want)
		}
	}
}

func TestIntrospectionRouting(t *testing.T) {
	// A JWT of a configured issuer is verified locally, never introspected,
	// even when it fails; a JWT of any other issuer is introspected.
	clk := authtest.NewClock()
	p := authtest.NewProvider(t, &authtest.ProviderOptions{Now: clk.Now})
	other := authtest.NewProvider(t, &authtest.ProviderOptions{Now: clk.Now})
	e := newIntrospectionEndpoint(t, clk)
	v := newVerifier(t, introspectionConfig(e, p.Issuer()), clk)
	ctx := context.Background()

	impostor := authtest.NewKey(t, authtest.RS256, p.SigningKey(authtest.RS256).KID())
	bad := p.Token(t, signedBy(impostor, claims(clk.Now(), nil)))
	if _, err := v.Verify(ctx, bad); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("Verify(badly signed JWT of a configured issuer) = %v, want ErrInvalidToken", err)
	}
	if got := introspections(e, bad); got != 0 {
		t.Errorf("introspections of a configured issuer's JWT = %d, want 0", got)
	}

	foreign := p.Token(t, withIssuer(other.Issuer(), claims(clk.Now(), nil)))
	e.SetIntrospection(foreign, active(clk.Now(), nil))
	if _, err := v.Verify(ctx, foreign); err != nil {
		t.Errorf("Verify(JWT of another issuer, active by introspection) = %v, want success", err)
	}
	if got := introspections(e, foreign); got != 1 {
		t.Errorf("introspections of another issuer's JWT = %d, want 1", got)
	}
}
