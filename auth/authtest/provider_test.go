package authtest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/mcpgw/gateway/auth"
	"github.com/mcpgw/gateway/auth/authtest"
)

// parts decodes the header and claims of a compact JWS without verifying it.
func parts(t *testing.T, token string) (header, claims map[string]any) {
	t.Helper()
	segs := strings.Split(token, ".")
	if len(segs) != 3 {
		t.Fatalf("token has %d parts, want 3", len(segs))
	}
	for i, v := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(segs[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// get fetches u and decodes its JSON body into v, returning the status.
func get(t *testing.T, u string, v any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

// post posts form to u with Basic credentials (if id is not empty) and
// decodes the JSON body into v, returning the status.
func post(t *testing.T, u string, form url.Values, id, secret string, v any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("decoding %s: %v", body, err)
		}
	}
	return resp.StatusCode
}

// jwks fetches p's published key set.
func jwks(t *testing.T, p *authtest.Provider) jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	if status := get(t, p.URL(authtest.JWKSEndpoint), &set); status != http.StatusOK {
		t.Fatalf("JWKS status = %d", status)
	}
	return set
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// verifySignature checks token against p's published keys.
func verifySignature(t *testing.T, p *authtest.Provider, token string) error {
	t.Helper()
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return err
	}
	set := jwks(t, p)
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		return jose.ErrJWKSKidNotFound
	}
	_, err = jws.Verify(keys[0])
	return err
}

func TestToken(t *testing.T) {
	clk := authtest.NewClock()
	clk.Set(time.Unix(1_700_000_000, 0))
	p := authtest.NewProvider(t, &authtest.ProviderOptions{Now: clk.Now, TokenLifetime: 5 * time.Minute})
	now := clk.Now().Unix()

	for _, tc := range []struct {
		name   string
		claims authtest.Claims
		alg    string
		want   map[string]any
	}{
		{"defaults", authtest.Claims{}, "RS256", map[string]any{
			"iss": p.Issuer(), "iat": float64(now), "exp": float64(now + 300),
		}},
		{"all fields ES256", authtest.Claims{
			Issuer:    "https://other",
			Subject:   "alice",
			Audience:  []string{"https://gw"},
			Scope:     "a b",
			IssuedAt:  time.Unix(100, 0),
			NotBefore: time.Unix(150, 0),
			Expiry:    time.Unix(200, 0),
			Alg:       authtest.ES256,
		}, "ES256", map[string]any{
			"iss": "https://other", "sub": "alice", "aud": []any{"https://gw"}, "scope": "a b",
			"iat": float64(100), "nbf": float64(150), "exp": float64(200),
		}},
		{"extra replaces and removes", authtest.Claims{
			Subject: "alice",
			Extra:   map[string]any{"sub": "bob", "exp": nil, "aud": "https://gw", "groups": []string{"g"}},
		}, "RS256", map[string]any{
			"iss": p.Issuer(), "sub": "bob", "iat": float64(now), "aud": "https://gw", "groups": []any{"g"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := p.Token(t, tc.claims)
			header, claims := parts(t, token)
			if header["alg"] != tc.alg || header["typ"] != "at+jwt" || header["kid"] != p.SigningKey(tc.alg).KID() {
				t.Errorf("header = %v, want alg %s, typ at+jwt, kid %s", header, tc.alg, p.SigningKey(tc.alg).KID())
			}
			if got, _ := json.Marshal(claims); string(got) != string(must(json.Marshal(tc.want))) {
				t.Errorf("claims = %s, want %s", got, must(json.Marshal(tc.want)))
			}
			if err := verifySignature(t, p, token); err != nil {
				t.Errorf("signature does not verify with the JWKS: %v", err)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestTokenForged(t *testing.T) {
	p := authtest.NewProvider(t, nil)
	kid := p.SigningKey(authtest.RS256).KID()

	none := p.Token(t, authtest.Claims{Alg: authtest.None})
	if h, _ := parts(t, none); h["alg"] != "none" || h["kid"] != kid || !strings.HasSuffix(none, ".") {
		t.Errorf("alg none token = %s (header %v), want alg none, kid %s, no signature", none, h, kid)
	}
	hs := p.Token(t, authtest.Claims{Alg: authtest.HS256})
	if h, _ := parts(t, hs); h["alg"] != "HS256" || h["kid"] != kid {
		t.Errorf("HS256 token header = %v, want alg HS256, kid %s", h, kid)
	}

	other := authtest.NewKey(t, authtest.ES256, "mine")
	token := p.Token(t, authtest.Claims{Key: other})
	if h, _ := parts(t, token); h["alg"] != "ES256" || h["kid"] != "mine" {
		t.Errorf("token of Key header = %v, want alg ES256, kid mine", h)
	}
	if err := verifySignature(t, p, token); err == nil {
		t.Errorf("token of an unpublished key verifies with the JWKS")
	}
	p.Publish(other)
	if err := verifySignature(t, p, token); err != nil {
		t.Errorf("token of a published key: %v", err)
	}
}

func TestRotateKeyAndPublish(t *testing.T) {
	p := authtest.NewProvider(t, nil)
	rs, es := p.SigningKey(authtest.RS256), p.SigningKey(authtest.ES256)
	if got, want := kids(jwks(t, p)), []string{rs.KID(), es.KID()}; !slices.Equal(got, want) {
		t.Fatalf("JWKS kids = %q, want %q", got, want)
	}
	old := p.Token(t, authtest.Claims{})

	rs2 := p.RotateKey(t, authtest.RS256)
	if rs2.KID() == rs.KID() || p.SigningKey(authtest.RS256) != rs2 || rs2.Alg() != authtest.RS256 {
		t.Fatalf("RotateKey = %s, current %s; want a new current RS256 key", rs2.KID(), p.SigningKey("").KID())
	}
	if got, want := kids(jwks(t, p)), []string{rs2.KID(), es.KID()}; !slices.Equal(got, want) {
		t.Errorf("JWKS kids after rotation = %q, want %q", got, want)
	}
	if err := verifySignature(t, p, old); err == nil {
		t.Errorf("token of the rotated-out key still verifies")
	}
	if err := verifySignature(t, p, p.Token(t, authtest.Claims{})); err != nil {
		t.Errorf("token of the new key: %v", err)
	}

	p.Publish(rs, rs2)
	if got, want := kids(jwks(t, p)), []string{rs.KID(), rs2.KID()}; !slices.Equal(got, want) {
		t.Errorf("JWKS kids after Publish = %q, want %q", got, want)
	}
	p.Publish()
	if set := jwks(t, p); set.Keys == nil || len(set.Keys) != 0 {
		t.Errorf("JWKS after Publish() = %v, want an empty list", set.Keys)
	}
	if p.SigningKey("PS256") != nil {
		t.Errorf("SigningKey(PS256) != nil")
	}
}

func TestMetadataAndStatus(t *testing.T) {
	p := authtest.NewProvider(t, nil)
	var meta map[string]any
	if status := get(t, p.URL(authtest.DiscoveryEndpoint), &meta); status != http.StatusOK {
		t.Fatalf("discovery status = %d", status)
	}
	for k, want := range map[string]string{
		"issuer":                 p.Issuer(),
		"jwks_uri":               p.URL(authtest.JWKSEndpoint),
		"token_endpoint":         p.URL(authtest.TokenEndpoint),
		"introspection_endpoint": p.URL(authtest.IntrospectionEndpoint),
	} {
		if meta[k] != want {
			t.Errorf("metadata %s = %v, want %s", k, meta[k], want)
		}
	}
	if status := get(t, p.URL(authtest.OAuthMetadataEndpoint), nil); status != http.StatusNotFound {
		t.Errorf("RFC 8414 metadata status = %d, want 404", status)
	}
	p.SetStatus(authtest.JWKSEndpoint, http.StatusServiceUnavailable)
	if status := get(t, p.URL(authtest.JWKSEndpoint), nil); status != http.StatusServiceUnavailable {
		t.Errorf("JWKS status after SetStatus = %d, want 503", status)
	}
	p.SetStatus(authtest.JWKSEndpoint, 0)
	jwks(t, p)
	if d, o, j := p.Requests(authtest.DiscoveryEndpoint), p.Requests(authtest.OAuthMetadataEndpoint), p.Requests(authtest.JWKSEndpoint); d != 1 || o != 1 || j != 2 {
		t.Errorf("requests: discovery %d, RFC 8414 %d, JWKS %d; want 1, 1, 2", d, o, j)
	}
	if n := p.TotalRequests(); n != 4 {
		t.Errorf("TotalRequests = %d, want 4", n)
	}

	oauth := authtest.NewProvider(t, &authtest.ProviderOptions{OAuthMetadataOnly: true})
	if status := get(t, oauth.URL(authtest.DiscoveryEndpoint), nil); status != http.StatusNotFound {
		t.Errorf("OAuthMetadataOnly: discovery status = %d, want 404", status)
	}
	meta = nil
	if status := get(t, oauth.URL(authtest.OAuthMetadataEndpoint), &meta); status != http.StatusOK || meta["issuer"] != oauth.Issuer() {
		t.Errorf("OAuthMetadataOnly: RFC 8414 metadata status = %d, issuer %v", status, meta["issuer"])
	}
}

func TestTokenEndpoint(t *testing.T) {
	const secret = "s3cr:t/+%"
	clk := authtest.NewClock()
	p := authtest.NewProvider(t, &authtest.ProviderOptions{Now: clk.Now, Clients: map[string]string{"gw": secret}})
	u := p.URL(authtest.TokenEndpoint)
	grant := url.Values{"grant_type": {"client_credentials"}, "scope": {"a b"}, "resource": {"https://up.example.com/mcp"}}

	var resp struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
		Error       string `json:"error"`
	}
	if status := post(t, u, grant, "gw", secret, &resp); status != http.StatusOK {
		t.Fatalf("client_secret_basic: status %d, error %q", status, resp.Error)
	}
	if resp.TokenType != "Bearer" || resp.ExpiresIn != 3600 || resp.Scope != "a b" {
		t.Errorf("response = %+v, want a Bearer token for an hour with scope a b", resp)
	}
	// The token verifies as an access token for the resource.
	v, err := auth.NewVerifier(auth.Config{
		Mode:     auth.ModeOAuth2,
		Issuers:  []auth.IssuerConfig{{URL: p.Issuer()}},
		Audience: "https://up.example.com/mcp",
	}, &auth.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := v.Verify(context.Background(), resp.AccessToken)
	if err != nil {
		t.Fatalf("Verify(issued token) = %v", err)
	}
	if pr.Subject != "gw" || !slices.Equal(pr.Scopes, []string{"a", "b"}) || pr.Claims["client_id"] != "gw" {
		t.Errorf("principal = %s %q %v, want gw [a b] with client_id gw", pr.Subject, pr.Scopes, pr.Claims)
	}

	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"gw"}, "client_secret": {secret}}
	if status := post(t, u, form, "", "", &resp); status != http.StatusOK {
		t.Errorf("client_secret_post: status %d, error %q", status, resp.Error)
	}
	for _, tc := range []struct {
		name       string
		form       url.Values
		id, secret string
		wantStatus int
		wantError  string
	}{
		{"wrong secret", grant, "gw", "wrong", http.StatusUnauthorized, "invalid_client"},
		{"unknown client", grant, "nobody", "", http.StatusUnauthorized, "invalid_client"},
		{"no credentials", grant, "", "", http.StatusUnauthorized, "invalid_client"},
		{"other grant", url.Values{"grant_type": {"password"}}, "gw", secret, http.StatusBadRequest, "unsupported_grant_type"},
	} {
		resp.Error = ""
		if status := post(t, u, tc.form, tc.id, tc.secret, &resp); status != tc.wantStatus || resp.Error != tc.wantError {
			t.Errorf("%s: status %d, error %q; want %d, %q", tc.name, status, resp.Error, tc.wantStatus, tc.wantError)
		}
	}

	issued := p.IssuedTokens()
	if len(issued) != 2 {
		t.Fatalf("IssuedTokens = %d, want 2", len(issued))
	}
	if got := issued[0]; got.ClientID != "gw" || got.Scope != "a b" || !slices.Equal(got.Resource, []string{"https://up.example.com/mcp"}) ||
		!got.Expiry.Equal(time.Unix(clk.Now().Add(time.Hour).Unix(), 0)) {
		t.Errorf("IssuedTokens()[0] = %+v", got)
	}
	if issued[0].AccessToken == issued[1].AccessToken {
		t.Errorf("two issued tokens are equal")
	}
	if _, c := parts(t, issued[1].AccessToken); c["aud"] != nil || c["scope"] != nil {
		t.Errorf("token without resource and scope has aud %v, scope %v; want neither", c["aud"], c["scope"])
	}
	if n := p.Requests(authtest.TokenEndpoint); n != 6 {
		t.Errorf("token requests = %d, want 6", n)
	}

	p.SetTokenLifetime(time.Second)
	if post(t, u, grant, "gw", secret, &resp); resp.ExpiresIn != 1 {
		t.Errorf("expires_in after SetTokenLifetime(1s) = %d, want 1", resp.ExpiresIn)
	}
}

func TestIntrospectionEndpoint(t *testing.T) {
	p := authtest.NewProvider(t, &authtest.ProviderOptions{Clients: map[string]string{"gw": "pw"}})
	u := p.URL(authtest.IntrospectionEndpoint)
	ask := func(token string) map[string]any {
		t.Helper()
		var answer map[string]any
		if status := post(t, u, url.Values{"token": {token}, "token_type_hint": {"access_token"}}, "gw", "pw", &answer); status != http.StatusOK {
			t.Fatalf("introspection status = %d", status)
		}
		return answer
	}

	if got := ask("unknown"); len(got) != 1 || got["active"] != false {
		t.Errorf("unknown token: %v, want inactive", got)
	}
	p.SetIntrospection("t", map[string]any{"active": true, "sub": "bob"})
	if got := ask("t"); got["active"] != true || got["sub"] != "bob" {
		t.Errorf("known token: %v, want the answer set", got)
	}
	p.SetIntrospection("t", nil)
	if got := ask("t"); got["active"] != false {
		t.Errorf("forgotten token: %v, want inactive", got)
	}
	if status := post(t, u, url.Values{"token": {"t"}}, "gw", "wrong", nil); status != http.StatusUnauthorized {
		t.Errorf("wrong secret: status %d, want 401", status)
	}
	p.SetStatus(authtest.IntrospectionEndpoint, http.StatusInternalServerError)
	if status := post(t, u, url.Values{"token": {"t"}}, "gw", "pw", nil); status != http.StatusInternalServerError {
		t.Errorf("after SetStatus: status %d, want 500", status)
	}

	want := []authtest.IntrospectionRequest{
		{ClientID: "gw", Token: "unknown", TokenTypeHint: "access_token"},
		{ClientID: "gw", Token: "t", TokenTypeHint: "access_token"},
		{ClientID: "gw", Token: "t", TokenTypeHint: "access_token"},
	}
	if got := p.IntrospectionRequests(); !slices.Equal(got, want) {
		t.Errorf("IntrospectionRequests = %+v, want %+v", got, want)
	}
	if n := p.Requests(authtest.IntrospectionEndpoint); n != 5 {
		t.Errorf("introspection requests = %d, want 5", n)
	}
}

func TestClock(t *testing.T) {
	c := authtest.NewClock()
	start := c.Now()
	if d := time.Since(start); d < 0 || d > time.Minute {
		t.Errorf("NewClock starts at %v, want about now", start)
	}
	c.Advance(time.Hour)
	if got := c.Now(); !got.Equal(start.Add(time.Hour)) {
		t.Errorf("after Advance(1h): %v, want %v", got, start.Add(time.Hour))
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c.Set(at)
	if got := c.Now(); !got.Equal(at) {
		t.Errorf("after Set: %v, want %v", got, at)
	}
}
