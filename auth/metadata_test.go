package auth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/mcpgw/gateway/auth"
	"github.com/mcpgw/gateway/auth/authtest"
)

func TestMetadata(t *testing.T) {
	cfg := oauthConfig("https://idp.example.com", "https://login.example.org/tenant")
	cfg.Policies = []auth.PolicyRule{
		{Upstreams: []string{"admin*"}, RequireScopes: []string{"mcp:admin", "mcp:tools"}},
		{Tools: []string{"x"}, RequireClaims: map[string][]string{"g": {"v"}}},
	}
	a := newAuthenticator(t, cfg, authtest.NewClock())
	if got := a.MetadataURL(); got != testMetadataURL {
		t.Errorf("MetadataURL() = %q, want %q", got, testMetadataURL)
	}

	mux := http.NewServeMux()
	mux.Handle("/.well-known/oauth-protected-resource", a.MetadataHandler())
	mux.Handle("/.well-known/oauth-protected-resource/mcp", a.MetadataHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	want := map[string]any{
		"resource":                 testAudience,
		"authorization_servers":    []any{"https://idp.example.com", "https://login.example.org/tenant"},
		"scopes_supported":         []any{"mcp:tools", "mcp:admin"},
		"bearer_methods_supported": []any{"header"},
	}
	for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET %s: decoding: %v", path, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status = %d, want 200", path, resp.StatusCode)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GET %s = %v, want %v", path, got, want)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
			t.Errorf("GET %s: Access-Control-Allow-Origin = %q, want *", path, got)
		}
		if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
			t.Errorf("GET %s: Content-Type = %q, want application/json", path, got)
		}
	}

	for method, want := range map[string]int{http.MethodOptions: http.StatusNoContent, http.MethodPost: http.StatusMethodNotAllowed} {
		req, _ := http.NewRequest(method, srv.URL+"/.well-known/oauth-protected-resource/mcp", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: status = %d, want %d", method, resp.StatusCode, want)
		}
	}
}

func TestMetadataModeNone(t *testing.T) {
	a := newAuthenticator(t, auth.Config{}, authtest.NewClock())
	rec := httptest.NewRecorder()
	a.MetadataHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("status = %d, want 404", rec.Code)
	}
	if m := a.Metadata(); m != nil {
		t.Errorf("Metadata() = %v, want nil", m)
	}
}

func TestMetadataURLOfResource(t *testing.T) {
	for _, tc := range []struct{ audience, want string }{
		{"https://gw.example.com/mcp", "https://gw.example.com/.well-known/oauth-protected-resource/mcp"},
		{"https://gw.example.com/base/mcp/", "https://gw.example.com/.well-known/oauth-protected-resource/base/mcp"},
		{"https://gw.example.com", "https://gw.example.com/.well-known/oauth-protected-resource"},
		{"http://127.0.0.1:8080/mcp", "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"},
	} {
		cfg := oauthConfig("https://idp.example.com")
		cfg.Audience = tc.audience
		a := newAuthenticator(t, cfg, authtest.NewClock())
		if got := a.MetadataURL(); got != tc.want {
			t.Errorf("MetadataURL() with audience %q = %q, want %q", tc.audience, got, tc.want)
		}
	}
}
