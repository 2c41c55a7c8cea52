package auth_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mcpgw/gateway/auth"
)

func TestClientCredentials(t *testing.T) {
	var mu sync.Mutex // guards the variables below
	var issued int
	expiresIn := []int{1, 3600} // the first token is about to expire
	var seen []string           // Authorization headers at the upstream
	var tokenErrs []string

	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		id, secret, _ := r.BasicAuth()
		for _, check := range []struct{ what, got, want string }{
			{"client id", id, "gateway-github"},
			{"client secret", secret, "s3cret"},
			{"grant_type", r.PostFormValue("grant_type"), "client_credentials"},
			{"resource", r.PostFormValue("resource"), "https://example.com/mcp"},
			{"scope", r.PostFormValue("scope"), "repo:read repo:status"},
		} {
			if check.got != check.want {
				tokenErrs = append(tokenErrs, check.what+" = "+strconv.Quote(check.got)+", want "+strconv.Quote(check.want))
			}
		}
		issued++
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"access_token": "gw-" + strconv.Itoa(issued),
			"token_type":   "bearer",
			"expires_in":   expiresIn[min(issued, len(expiresIn))-1],
		})
	}))
	defer tokenSrv.Close()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Header.Values("Authorization")...)
	}))
	defer upstream.Close()

	client := &http.Client{Transport: auth.ClientCredentials(auth.ClientCredentialsConfig{
		TokenURL:     tokenSrv.URL,
		ClientID:     "gateway-github",
		ClientSecret: "s3cret",
		Scopes:       []string{"repo:read", "repo:status"},
		Resource:     "https://example.com/mcp",
	}, nil)}

	for range 3 {
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
	}

	mu.Lock()
	defer mu.Unlock()
	for _, e := range tokenErrs {
		t.Errorf("token request: %s", e)
	}
	// gw-1 expires within oauth2's early-refresh window, so the second
	// request fetches gw-2, which the third reuses.
	if want := []string{"Bearer gw-1", "Bearer gw-2", "Bearer gw-2"}; !slices.Equal(seen, want) {
		t.Errorf("upstream saw Authorization %q, want %q", seen, want)
	}
	if issued != 2 {
		t.Errorf("tokens issued = %d, want 2", issued)
	}
}

func TestClientCredentialsTokenFailure(t *testing.T) {
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"invalid_client"}`))
	}))
	defer tokenSrv.Close()
	var called atomic.Bool
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called.Store(true) }))
	defer upstream.Close()

	client := &http.Client{Transport: auth.ClientCredentials(auth.ClientCredentialsConfig{
		TokenURL: tokenSrv.URL, ClientID: "gw", ClientSecret: "wrong",
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
}
