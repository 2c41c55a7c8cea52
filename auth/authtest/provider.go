// Package authtest provides an OpenID provider for tests of code that
// verifies or obtains OAuth 2.0 access tokens, in the manner of
// net/http/httptest.
//
// A Provider is an httptest server that serves a real OpenID discovery
// document (or RFC 8414 authorization server metadata instead), a JWKS, a
// client credentials token endpoint and an RFC 7662 introspection endpoint,
// and signs real RS256 and ES256 tokens with its current keys. Tests can
// rotate and publish keys, forge tokens, fail endpoints, move the clock and
// count requests:
//
//	clk := authtest.NewClock()
//	p := authtest.NewProvider(t, &authtest.ProviderOptions{Now: clk.Now})
//	a, _ := auth.New(auth.Config{
//		Mode:     auth.ModeOAuth2,
//		Issuers:  []auth.IssuerConfig{{URL: p.Issuer()}},
//		Audience: "https://gw.example.com/mcp",
//	}, &auth.Options{Now: clk.Now})
//	token := p.Token(t, authtest.Claims{
//		Subject:  "alice",
//		Audience: []string{"https://gw.example.com/mcp"},
//		Scope:    "mcp:tools",
//	})
//
// The server speaks plain HTTP on a loopback address, which auth.Config
// accepts for issuers and endpoints.
package authtest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Endpoint is the path of one of a Provider's endpoints, relative to its
// Issuer.
type Endpoint string

// The endpoints of a Provider.
const (
	// DiscoveryEndpoint serves the OpenID Connect discovery document,
	// unless ProviderOptions.OAuthMetadataOnly (then it answers 404).
	DiscoveryEndpoint Endpoint = "/.well-known/openid-configuration"
	// OAuthMetadataEndpoint serves the same metadata as RFC 8414
	// authorization server metadata, if ProviderOptions.OAuthMetadataOnly
	// (otherwise it answers 404, so that OpenID discovery is the only way).
	OAuthMetadataEndpoint Endpoint = "/.well-known/oauth-authorization-server"
	// JWKSEndpoint serves the published keys (see Publish).
	JWKSEndpoint Endpoint = "/jwks"
	// TokenEndpoint issues tokens with the client credentials grant to the
	// clients of ProviderOptions.Clients.
	TokenEndpoint Endpoint = "/token"
	// IntrospectionEndpoint answers RFC 7662 introspection requests of
	// the clients of ProviderOptions.Clients (see SetIntrospection).
	IntrospectionEndpoint Endpoint = "/introspect"
)

var endpoints = []Endpoint{DiscoveryEndpoint, OAuthMetadataEndpoint, JWKSEndpoint, TokenEndpoint, IntrospectionEndpoint}

// ProviderOptions configure NewProvider. The zero value (or nil) is ready
// to use.
type ProviderOptions struct {
	// Now is the provider's clock: it sets the default iat (and so exp) of
	// Token and the iat and exp of the token endpoint's tokens. If nil,
	// time.Now. Pass a Clock's Now, shared with the code under test.
	Now func() time.Time
	// TokenLifetime is the lifetime of tokens (the default exp of Token,
	// and expires_in and exp at the token endpoint). If zero, one hour.
	// SetTokenLifetime changes it later.
	TokenLifetime time.Duration
	// OAuthMetadataOnly serves RFC 8414 metadata at OAuthMetadataEndpoint
	// and no OpenID discovery document, as an MCP authorization server
	// may.
	OAuthMetadataOnly bool
	// Clients maps the client IDs that may use the token and introspection
	// endpoints to their secrets. Clients authenticate with HTTP Basic
	// (client_secret_basic, with the form-encoding of RFC 6749 §2.3.1) or
	// with client_id and client_secret in the form (client_secret_post).
	Clients map[string]string
}

// IssuedToken is a token issued by the token endpoint.
type IssuedToken struct {
	// ClientID is the client it was issued to, also its sub and client_id.
	ClientID string
	// Scope is the scope parameter as requested, also the token's scope
	// claim; "" if none was requested.
	Scope string
	// Resource are the RFC 8707 resource parameters, also the token's aud.
	Resource []string
	// AccessToken is a JWT signed with the provider's current RS256 key.
	AccessToken string
	// Expiry is its exp.
	Expiry time.Time
}

// IntrospectionRequest is a request that the introspection endpoint
// answered.
type IntrospectionRequest struct {
	ClientID      string
	Token         string
	TokenTypeHint string // token_type_hint, "" if not sent
}

// Provider is an OpenID provider on an httptest server. Create it with
// NewProvider. Its methods are safe for concurrent use.
type Provider struct {
	srv       *httptest.Server
	now       func() time.Time
	oauthOnly bool
	clients   map[string]string

	mu            sync.Mutex // guards the fields below
	current       map[string]*Key
	published     []*Key
	lifetime      time.Duration
	status        map[Endpoint]int
	requests      map[Endpoint]int
	answers       map[string]map[string]any // introspection responses by token
	introspected  []IntrospectionRequest
	issued        []IssuedToken
	issuedSerials int
}

// NewProvider starts a Provider with a current RS256 key and a current
// ES256 key, both published. t.Cleanup closes its server.
func NewProvider(t testing.TB, opts *ProviderOptions) *Provider {
	t.Helper()
	var o ProviderOptions
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TokenLifetime == 0 {
		o.TokenLifetime = time.Hour
	}
	p := &Provider{
		now:       o.Now,
		oauthOnly: o.OAuthMetadataOnly,
		clients:   map[string]string{},
		current:   map[string]*Key{},
		lifetime:  o.TokenLifetime,
		status:    map[Endpoint]int{},
		requests:  map[Endpoint]int{},
		answers:   map[string]map[string]any{},
	}
	for id, secret := range o.Clients {
		p.clients[id] = secret
	}
	for _, alg := range []string{RS256, ES256} {
		k := NewKey(t, alg, "")
		p.current[alg] = k
		p.published = append(p.published, k)
	}

	mux := http.NewServeMux()
	handle := func(method string, e Endpoint, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+string(e), func(w http.ResponseWriter, r *http.Request) {
			p.mu.Lock()
			p.requests[e]++
			status := p.status[e]
			p.mu.Unlock()
			if status != 0 {
				http.Error(w, "authtest: status set by SetStatus", status)
				return
			}
			h(w, r)
		})
	}
	handle(http.MethodGet, DiscoveryEndpoint, func(w http.ResponseWriter, r *http.Request) {
		if p.oauthOnly {
			http.NotFound(w, r)
			return
		}
		p.writeMetadata(w)
	})
	handle(http.MethodGet, OAuthMetadataEndpoint, func(w http.ResponseWriter, r *http.Request) {
		if !p.oauthOnly {
			http.NotFound(w, r)
			return
		}
		p.writeMetadata(w)
	})
	handle(http.MethodGet, JWKSEndpoint, p.serveJWKS)
	handle(http.MethodPost, TokenEndpoint, p.serveToken)
	handle(http.MethodPost, IntrospectionEndpoint, p.serveIntrospection)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// Issuer returns the issuer identifier, the server's base URL (no trailing
// slash). It is the default iss of tokens and the URL to configure.
func (p *Provider) Issuer() string { return p.srv.URL }

// URL returns the URL of endpoint e.
func (p *Provider) URL(e Endpoint) string { return p.srv.URL + string(e) }

// Token returns a JWT access token (compact JWS, typ at+jwt as in RFC
// 9068) of claims c (see Claims for the defaults), signed with the
// provider's current key of c.Alg or with c.Key. It fails t if c cannot be
// signed as asked.
func (p *Provider) Token(t testing.TB, c Claims) string {
	t.Helper()
	key := c.Key
	if key == nil {
		alg := c.Alg
		if alg == "" || alg == None || alg == HS256 {
			alg = RS256
		}
		if key = p.SigningKey(alg); key == nil {
			t.Fatalf("authtest: Token: unsupported Alg %q", c.Alg)
		}
	}
	p.mu.Lock()
	lifetime := p.lifetime
	p.mu.Unlock()
	s, err := key.sign(c.claimSet(p.Issuer(), p.now(), lifetime), c.Alg)
	if err != nil {
		t.Fatalf("authtest: Token: %v", err)
	}
	return s
}

// SigningKey returns the current key for alg (RS256 if ""), which Token
// signs with, or nil if alg is neither RS256 nor ES256.
func (p *Provider) SigningKey(alg string) *Key {
	if alg == "" {
		alg = RS256
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.current[alg]
}

// RotateKey replaces the current key for alg (RS256 if "") with a new key
// of a new kid, and returns it. The new key takes the old one's place in
// the JWKS, if it was published, and is added to it otherwise: tokens of
// the old key stop verifying once a verifier refetches the JWKS (which a
// token of the new key makes it do). To keep the old key published too,
// Publish it with the new ones.
func (p *Provider) RotateKey(t testing.TB, alg string) *Key {
	t.Helper()
	if alg == "" {
		alg = RS256
	}
	k, err := newKey(alg, "")
	if err != nil {
		t.Fatalf("authtest: RotateKey: %v", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.current[alg]
	p.current[alg] = k
	if i := slices.Index(p.published, old); i >= 0 {
		p.published[i] = k
	} else {
		p.published = append(p.published, k)
	}
	return k
}

// Publish replaces the JWKS with keys, which may include keys of other
// providers or from NewKey. It does not change the keys Token signs with:
// tokens of an unpublished current key fail verification.
func (p *Provider) Publish(keys ...*Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = slices.Clone(keys)
}

// SetStatus makes every later request to e fail with the HTTP status
// status (e.g. 500), or, with 0, be served again.
func (p *Provider) SetStatus(e Endpoint, status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status[e] = status
}

// SetTokenLifetime sets the lifetime of later tokens (see
// ProviderOptions.TokenLifetime).
func (p *Provider) SetTokenLifetime(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lifetime = d
}

// SetIntrospection makes the introspection endpoint answer response (as
// JSON, as is: include "active") for token. Tokens without a response
// are answered {"active":false}, including the provider's own. A nil
// response forgets token.
func (p *Provider) SetIntrospection(token string, response map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if response == nil {
		delete(p.answers, token)
	} else {
		p.answers[token] = maps.Clone(response)
	}
}

// Requests returns how many requests reached endpoint e with its method
// (GET for metadata and JWKS, POST for the others), whatever their outcome.
func (p *Provider) Requests(e Endpoint) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[e]
}

// TotalRequests returns how many requests reached any endpoint.
func (p *Provider) TotalRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range endpoints {
		n += p.requests[e]
	}
	return n
}

// IssuedTokens returns the tokens the token endpoint issued, in order.
func (p *Provider) IssuedTokens() []IssuedToken {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.issued)
}

// IntrospectionRequests returns the requests the introspection endpoint
// answered (from an authenticated client, not failed by SetStatus), in
// order.
func (p *Provider) IntrospectionRequests() []IntrospectionRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.introspected)
}

func (p *Provider) writeMetadata(w http.ResponseWriter) {
	authMethods := []string{"client_secret_basic", "client_secret_post"}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.Issuer(),
		"jwks_uri":                              p.URL(JWKSEndpoint),
		"token_endpoint":                        p.URL(TokenEndpoint),
		"introspection_endpoint":                p.URL(IntrospectionEndpoint),
		"grant_types_supported":                 []string{"client_credentials"},
		"token_endpoint_auth_methods_supported": authMethods,
		"introspection_endpoint_auth_methods_supported": authMethods,
		// Only RS256 for ID tokens: access tokens in other algorithms
		// must verify all the same.
		"id_token_signing_alg_values_supported": []string{RS256},
	})
}

func (p *Provider) serveJWKS(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range p.published {
		set.Keys = append(set.Keys, k.jwk())
	}
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

// authenticate returns the client that r authenticates as, if any. r's
// form must be parsed.
func (p *Provider) authenticate(r *http.Request) (string, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return "", false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	want, ok := p.clients[id]
	return id, ok && id != "" && secret == want
}

// rejectClient answers a request without valid client credentials.
func rejectClient(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="authtest"`)
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
}

func (p *Provider) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	client, ok := p.authenticate(r)
	if !ok {
		rejectClient(w)
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	scope, resource := r.PostForm.Get("scope"), r.PostForm["resource"]

	now := p.now()
	p.mu.Lock()
	lifetime := p.lifetime
	key := p.current[RS256]
	p.issuedSerials++
	serial := p.issuedSerials
	p.mu.Unlock()
	c := Claims{
		Subject:  client,
		Audience: resource,
		Scope:    scope,
		IssuedAt: now,
		Expiry:   now.Add(lifetime),
		Extra:    map[string]any{"client_id": client, "jti": fmt.Sprintf("token-%d", serial)},
	}
	token, err := key.sign(c.claimSet(p.Issuer(), now, lifetime), "")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	p.mu.Lock()
	p.issued = append(p.issued, IssuedToken{
		ClientID:    client,
		Scope:       scope,
		Resource:    slices.Clone(resource),
		AccessToken: token,
		Expiry:      time.Unix(c.Expiry.Unix(), 0),
	})
	p.mu.Unlock()
	resp := map[string]any{
		"access_token": token,
		"token_type":   "Bearer",
		"expires_in":   int64((lifetime + time.Second - 1) / time.Second),
	}
	if scope != "" {
		resp["scope"] = scope
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

func (p *Provider) serveIntrospection(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	client, ok := p.authenticate(r)
	if !ok {
		rejectClient(w)
		return
	}
	req := IntrospectionRequest{
		ClientID:      client,
		Token:         r.PostForm.Get("token"),
		TokenTypeHint: r.PostForm.Get("token_type_hint"),
	}
	p.mu.Lock()
	p.introspected = append(p.introspected, req)
	answer, ok := p.answers[req.Token]
	p.mu.Unlock()
	if !ok {
		answer = map[string]any{"active": false}
	}
	writeJSON(w, http.StatusOK, answer)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
