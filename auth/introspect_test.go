package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcpgw/gateway/auth"
)

const (
	introspectionClient = "gateway"
	introspectionSecret = "s3cr:t/+%" // needs form-encoding before Basic
	trustedIssuer       = "https://idp.example.com"
)

// introspectionEndpoint is an RFC 7662 endpoint on httptest that answers
// from a table of tokens and counts requests per token.
type introspectionEndpoint struct {
	srv *httptest.Server

	mu      sync.Mutex // guards the fields below
	answers map[string]map[string]any
	status  int // if non-zero, every request gets it
	hits    map[string]int
}

func newIntrospectionEndpoint(t *testing.T) *introspectionEndpoint {
	t.Helper()
	e := &introspectionEndpoint{answers: map[string]map[string]any{}, hits: map[string]int{}}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, _ := r.BasicAuth()
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		if r.Method != http.MethodPost || id != introspectionClient || secret != introspectionSecret {
			http.Error(w, "unauthorized client", http.StatusUnauthorized)
			return
		}
		if r.PostFormValue("token_type_hint") != "access_token" {
			http.Error(w, "no hint", http.StatusBadRequest)
			return
		}
		token := r.PostFormValue("token")
		e.mu.Lock()
		e.hits[token]++
		status := e.status
		answer, ok := e.answers[token]
		e.mu.Unlock()
		if status != 0 {
			http.Error(w, "down", status)
			return
		}
		if !ok {
			answer = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *introspectionEndpoint) set(token string, answer map[string]any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.answers[token] = answer
}

func (e *introspectionEndpoint) setStatus(status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.status = status
}

func (e *introspectionEndpoint) hitsFor(token string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits[token]
}

func introspectionConfig(e *introspectionEndpoint, issuers ...string) auth.Config {
	cfg := oauthConfig(append([]string{trustedIssuer}, issuers...)...)
	cfg.Introspection = &auth.IntrospectionConfig{URL: e.srv.URL, ClientID: introspectionClient, ClientSecret: introspectionSecret}
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
	e := newIntrospectionEndpoint(t)
	clk := newClock()
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
		{"no iss: the endpoint vouches", active(now, map[string]any{"iss": nil}), nil, e.srv.URL + "|bob", []string{"mcp:tools", "mcp:read"}},
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
				e.set(token, tc.answer)
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
}

func TestIntrospectionUnavailable(t *testing.T) {
	e := newIntrospectionEndpoint(t)
	clk := newClock()
	cfg := introspectionConfig(e)
	v := newVerifier(t, cfg, clk)
	e.set("t", active(clk.Now(), nil))

	e.setStatus(http.StatusInternalServerError)
	if _, err := v.Verify(context.Background(), "t"); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("Verify with the endpoint failing = %v, want ErrUnavailable", err)
	}
	e.setStatus(0)
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
	e := newIntrospectionEndpoint(t)
	clk := newClock()
	v := newVerifier(t, introspectionConfig(e), clk)
	ctx := context.Background()
	verify := func(token string) error {
		_, err := v.Verify(ctx, token)
		return err
	}

	e.set("long", active(clk.Now(), nil))
	e.set("short", active(clk.Now(), map[string]any{"exp": clk.Now().Add(10 * time.Second).Unix()}))
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
		if got := e.hitsFor(token); got != want {
			t.Errorf("introspections of %q = %d, want %d", token, got, want)
		}
	}

	// "short" is cached until its exp (10s), "long" for the TTL (60s).
	clk.Advance(11 * time.Second)
	verify("long")
	verify("short")
	if got := e.hitsFor("long"); got != 1 {
		t.Errorf("introspections of long after 11s = %d, want 1", got)
	}
	if got := e.hitsFor("short"); got != 2 {
		t.Errorf("introspections of short after its exp = %d, want 2", got)
	}
	clk.Advance(50 * time.Second)
	verify("long")
	if got := e.hitsFor("long"); got != 2 {
		t.Errorf("introspections of long after the TTL = %d, want 2", got)
	}
}

func TestIntrospectionCacheIsBounded(t *testing.T) {
	e := newIntrospectionEndpoint(t)
	clk := newClock()
	v, err := auth.NewVerifier(introspectionConfig(e), &auth.Options{Now: clk.Now, IntrospectionCacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, token := range []string{"a", "b", "c"} {
		e.set(token, active(clk.Now(), nil))
	}
	// a, b fill the cache; c evicts a (the first to expire); a evicts b.
	for _, token := range []string{"a", "b", "c", "a", "c"} {
		if _, err := v.Verify(ctx, token); err != nil {
			t.Fatalf("Verify(%q) = %v", token, err)
		}
		clk.Advance(time.Second)
	}
	for token, want := range map[string]int{"a": 2, "b": 1, "c": 1} {
		if got := e.hitsFor(token); got != want {
			t.Errorf("introspections of %q = %d, want %d", token, got, want)
		}
	}
}

func TestIntrospectionRouting(t *testing.T) {
	// A JWT of a configured issuer is verified locally, never introspected,
	// even when it fails; a JWT of any other issuer is introspected.
	p, other := newIdP(t), newIdP(t)
	k := newRSAKey(t, "k1")
	p.publish(k)
	e := newIntrospectionEndpoint(t)
	clk := newClock()
	v := newVerifier(t, introspectionConfig(e, p.URL()), clk)
	ctx := context.Background()

	bad := newRSAKey(t, "k1").sign(t, claims(p.URL(), clk.Now(), nil))
	if _, err := v.Verify(ctx, bad); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("Verify(badly signed JWT of a configured issuer) = %v, want ErrInvalidToken", err)
	}
	if got := e.hitsFor(bad); got != 0 {
		t.Errorf("introspections of a configured issuer's JWT = %d, want 0", got)
	}

	foreign := k.sign(t, claims(other.URL(), clk.Now(), nil))
	e.set(foreign, active(clk.Now(), nil))
	if _, err := v.Verify(ctx, foreign); err != nil {
		t.Errorf("Verify(JWT of another issuer, active by introspection) = %v, want success", err)
	}
	if got := e.hitsFor(foreign); got != 1 {
		t.Errorf("introspections of another issuer's JWT = %d, want 1", got)
	}
}
