package auth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/mcpgw/gateway/auth"
	"github.com/mcpgw/gateway/auth/authtest"
)

var testRules = []auth.PolicyRule{
	// Tools of admin upstreams need a scope and a group.
	{Upstreams: []string{"admin*"}, Tools: []string{"*"}, RequireScopes: []string{"mcp:admin"}, RequireClaims: map[string][]string{"groups": {"platform"}}},
	// Destructive github tools need a scope. The second rule never decides
	// delete_*: first match wins.
	{Upstreams: []string{"github"}, Tools: []string{"delete_*", "repo_admin"}, RequireScopes: []string{"repo:write"}},
	{Upstreams: []string{"github"}, Tools: []string{"delete_*"}},
	// Secret files, on any upstream, need a role; "*" spans "/".
	{Resources: []string{"file:///secret/*"}, RequireClaims: map[string][]string{"role": {"admin"}}},
	// A rule without names covers every kind of the upstream.
	{Upstreams: []string{"vault"}, RequireScopes: []string{"vault"}},
	// An empty rule exempts public tools from the catch-all below.
	{Upstreams: []string{"public"}, Tools: []string{"*"}},
	{Upstreams: []string{"public", "level"}, Tools: []string{"*"}, RequireClaims: map[string][]string{"level": {"3"}}},
}

func principal(scopes []string, claims map[string]any) *auth.Principal {
	return &auth.Principal{Issuer: "https://idp", Subject: "x", Scopes: scopes, Claims: claims}
}

func TestPolicyAllowed(t *testing.T) {
	var (
		alice = principal([]string{"mcp:tools", "mcp:admin"}, map[string]any{"groups": []any{"dev", "platform"}})
		bob   = principal([]string{"mcp:tools"}, map[string]any{"groups": "dev"})
		dave  = principal([]string{"mcp:admin"}, map[string]any{"groups": []any{"dev"}})
		carol = principal([]string{"repo:write", "vault"}, map[string]any{"role": "admin", "groups": "platform"})
		lvl3  = principal(nil, map[string]any{"level": 3.0})
	)
	pol := auth.NewPolicy(testRules)
	for _, tc := range []struct {
		who      string
		p        *auth.Principal
		kind     auth.Kind
		upstream string
		name     string
		want     bool
	}{
		{"alice", alice, auth.KindTool, "admin-console", "reboot", true},
		{"bob", bob, auth.KindTool, "admin-console", "reboot", false},          // scope
		{"dave", dave, auth.KindTool, "admin-console", "reboot", false},        // claim
		{"carol", carol, auth.KindTool, "admin-console", "reboot", false},      // scope, though the claim matches as a string
		{"bob", bob, auth.KindPrompt, "admin-console", "reboot", true},         // the rule lists tools only
		{"bob", bob, auth.KindTool, "administer", "x", false},                  // glob on upstream
		{"bob", bob, auth.KindTool, "github", "search", true},                  // no rule
		{"bob", bob, auth.KindTool, "github", "delete_repo", false},            // first match wins over the empty rule
		{"carol", carol, auth.KindTool, "github", "delete_repo", true},         //
		{"bob", bob, auth.KindTool, "github", "repo_admin", false},             //
		{"bob", bob, auth.KindResource, "fs", "file:///secret/a/b.txt", false}, // claim
		{"carol", carol, auth.KindResource, "fs", "file:///secret/a/b.txt", true},
		{"bob", bob, auth.KindResource, "fs", "file:///public/x", true},
		{"bob", bob, auth.KindResource, "fs", "file:///secret/{path}", false}, // templates too
		{"bob", bob, auth.KindTool, "vault", "read", false},
		{"bob", bob, auth.KindPrompt, "vault", "p", false},
		{"bob", bob, auth.KindResource, "vault", "vault://k", false},
		{"carol", carol, auth.KindPrompt, "vault", "p", true},
		{"bob", bob, auth.KindTool, "public", "x", true}, // exempted
		{"bob", bob, auth.KindTool, "level", "x", false},
		{"lvl3", lvl3, auth.KindTool, "level", "x", true}, // numbers compare as JSON
		{"nil", nil, auth.KindTool, "github", "search", true},
		{"nil", nil, auth.KindTool, "github", "delete_repo", false},
		{"nil", nil, auth.KindTool, "public", "x", true},
		{"nil", nil, auth.KindResource, "fs", "file:///secret/x", false},
	} {
		if got := pol.Allowed(tc.p, tc.kind, tc.upstream, tc.name); got != tc.want {
			t.Errorf("Allowed(%s, %s, %q, %q) = %v, want %v", tc.who, tc.kind, tc.upstream, tc.name, got, tc.want)
		}
	}
}

func TestPolicyNil(t *testing.T) {
	var pol *auth.Policy
	if !pol.Allowed(nil, auth.KindTool, "a", "b") {
		t.Errorf("(*Policy)(nil).Allowed = false, want true")
	}
	if got := auth.NewPolicy(nil).MissingScopes(nil, auth.KindTool, "a", "b"); got != nil {
		t.Errorf("MissingScopes without rules = %q, want nil", got)
	}
}

func TestPolicyMissingScopes(t *testing.T) {
	pol := auth.NewPolicy(testRules)
	bob := principal([]string{"mcp:tools"}, nil)
	for _, tc := range []struct {
		p              *auth.Principal
		upstream, name string
		want           []string
	}{
		{bob, "admin-console", "reboot", []string{"mcp:admin"}},
		{principal([]string{"mcp:admin"}, nil), "admin-console", "reboot", nil}, // claims fail, scopes do not
		{bob, "github", "search", nil},
		{nil, "github", "delete_repo", []string{"repo:write"}},
	} {
		if got := pol.MissingScopes(tc.p, auth.KindTool, tc.upstream, tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("MissingScopes(%v, %q, %q) = %q, want %q", tc.p, tc.upstream, tc.name, got, tc.want)
		}
	}
	if got, want := pol.Scopes(), []string{"mcp:admin", "repo:write", "vault"}; !slices.Equal(got, want) {
		t.Errorf("Scopes() = %q, want %q", got, want)
	}
}

func TestAuthorize(t *testing.T) {
	cfg := oauthConfig("https://idp.example.com")
	cfg.Policies = testRules
	a := newAuthenticator(t, cfg, authtest.NewClock())
	bob := principal([]string{"mcp:tools"}, map[string]any{"groups": "platform"})
	dave := principal([]string{"mcp:tools", "mcp:admin"}, nil)

	if err := a.Authorize(bob, auth.KindTool, "github", "search"); err != nil {
		t.Errorf("Authorize(bob, github search) = %v, want nil", err)
	}
	err := a.Authorize(bob, auth.KindTool, "admin-console", "reboot")
	var se *auth.InsufficientScopeError
	if !errors.As(err, &se) || !slices.Equal(se.Scopes, []string{"mcp:tools", "mcp:admin"}) {
		t.Fatalf("Authorize(bob, admin tool) = %v, want InsufficientScopeError for mcp:tools mcp:admin", err)
	}
	if !errors.Is(err, auth.ErrForbidden) {
		t.Errorf("errors.Is(%v, ErrForbidden) = false, want true", err)
	}
	if err := a.Authorize(dave, auth.KindTool, "admin-console", "reboot"); err != auth.ErrForbidden {
		t.Errorf("Authorize(dave without group) = %v, want ErrForbidden", err)
	}

	// WriteError turns a scope error into a step-up challenge, and a claim
	// failure into a plain 403.
	for _, tc := range []struct {
		err           error
		wantChallenge []string
		wantBody      string
	}{
		{se, []string{`Bearer error="insufficient_scope", resource_metadata="` + testMetadataURL + `", scope="mcp:tools mcp:admin"`}, bodyForbidden},
		{auth.ErrForbidden, nil, bodyForbidden},
	} {
		rec := httptest.NewRecorder()
		a.WriteError(rec, httptest.NewRequest(http.MethodPost, "/mcp", nil), tc.err)
		if rec.Code != http.StatusForbidden {
			t.Errorf("WriteError(%v): status = %d, want 403", tc.err, rec.Code)
		}
		if got := rec.Header().Values("WWW-Authenticate"); !slices.Equal(got, tc.wantChallenge) {
			t.Errorf("WriteError(%v): WWW-Authenticate = %q, want %q", tc.err, got, tc.wantChallenge)
		}
		if got := rec.Body.String(); got != tc.wantBody {
			t.Errorf("WriteError(%v): body = %s, want %s", tc.err, got, tc.wantBody)
		}
	}
}

func TestAuthorizeModeNone(t *testing.T) {
	a := newAuthenticator(t, auth.Config{Mode: auth.ModeNone, Policies: testRules}, authtest.NewClock())
	for _, tc := range []struct {
		upstream, name string
		want           error
	}{
		{"github", "search", nil},
		{"public", "x", nil},
		{"github", "delete_repo", auth.ErrForbidden}, // no step-up without OAuth
		{"vault", "read", auth.ErrForbidden},
	} {
		if got := a.Authorize(nil, auth.KindTool, tc.upstream, tc.name); got != tc.want {
			t.Errorf("Authorize(nil, %q, %q) = %v, want %v", tc.upstream, tc.name, got, tc.want)
		}
	}
}
