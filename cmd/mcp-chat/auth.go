// Credentials for the gateway. Three ways, by precedence:
//
//   - --login: the OAuth 2.1 authorization code flow with PKCE, run by the
//     go-sdk's auth.AuthorizationCodeHandler when the gateway answers 401.
//     It reads the gateway's protected resource metadata (RFC 9728) and its
//     authorization server's metadata, registers the client (pre-registered
//     with --oauth-client-id, or dynamic client registration), prints the
//     URL to open, and takes the code at a loopback redirect served here.
//   - --oauth-token-url: the client credentials grant, tokens from
//     golang.org/x/oauth2/clientcredentials with the RFC 8707 resource
//     parameter (--oauth-resource, or the resource the gateway's protected
//     resource metadata names), refreshed before they expire.
//   - a bearer token from the environment ($MCP_BEARER_TOKEN by default).
//
// The Streamable HTTP transport takes the login handler as its
// OAuthHandler; the legacy SSE transport has no such hook, so for it the
// same handler runs behind an http.RoundTripper (oauthTransport) that does
// what the Streamable transport does.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// authOptions are the auth flags.
type authOptions struct {
	bearerEnv    string // the environment variable holding a bearer token
	login        bool   // authorization code flow with PKCE
	tokenURL     string // client credentials token endpoint
	clientID     string
	secretEnv    string // the environment variable holding the client secret
	scopes       string // space- or comma-separated
	resource     string // RFC 8707 resource for client credentials; default discovered, else the gateway URL
	redirectPort int    // loopback port for --login; 0 picks one
}

// scopeList returns the requested scopes.
func (o *authOptions) scopeList() []string {
	return strings.FieldsFunc(o.scopes, func(r rune) bool { return r == ',' || r == ' ' })
}

// credentials is how requests to the gateway are authorized.
type credentials struct {
	// describe says which credentials are used, for messages.
	describe string
	// source adds a token to every request; nil for none or for login.
	source oauth2.TokenSource
	// tokenURL is the client credentials token endpoint, for messages.
	tokenURL string
	// login runs the authorization code flow; nil unless --login.
	login auth.OAuthHandler
	// redirect serves the login redirect; nil unless --login.
	redirect *loopback
}

// newCredentials sets up o. ctx is the program's lifetime: the client
// credentials token source refreshes with it.
func newCredentials(ctx context.Context, o *authOptions, gatewayURL string, getenv func(string) string, term *terminal) (*credentials, error) {
	switch {
	case o.login:
		return newLogin(o, getenv, term)
	case o.tokenURL != "":
		secret := getenv(o.secretEnv)
		if o.clientID == "" || secret == "" {
			return nil, fmt.Errorf("--oauth-token-url needs --oauth-client-id and the client secret in $%s", o.secretEnv)
		}
		resource := o.resource
		if resource == "" {
			resource = discoverResource(ctx, gatewayURL)
		}
		cfg := &clientcredentials.Config{
			ClientID:       o.clientID,
			ClientSecret:   secret,
			TokenURL:       o.tokenURL,
			Scopes:         o.scopeList(),
			EndpointParams: map[string][]string{"resource": {resource}},
		}
		return &credentials{
			describe: "client credentials of " + strconv.Quote(o.clientID),
			source:   cfg.TokenSource(ctx),
			tokenURL: o.tokenURL,
		}, nil
	case getenv(o.bearerEnv) != "":
		tok := &oauth2.Token{AccessToken: getenv(o.bearerEnv), TokenType: "Bearer"}
		return &credentials{describe: "the bearer token in $" + o.bearerEnv, source: oauth2.StaticTokenSource(tok)}, nil
	}
	return &credentials{describe: "no credentials"}, nil
}

// close stops the login redirect listener, if any.
func (c *credentials) close() {
	if c.redirect != nil {
		c.redirect.close()
	}
}

// transport returns base with c's credentials added: the static or client
// credentials token, or, for login over SSE, the login flow.
func (c *credentials) transport(base http.RoundTripper, sse bool) http.RoundTripper {
	switch {
	case c.source != nil:
		return &oauth2.Transport{Source: c.source, Base: base}
	case c.login != nil && sse:
		return newOAuthTransport(c.login, base)
	}
	return base
}

// newLogin prepares the authorization code flow: a redirect listener on
// loopback and the go-sdk handler that uses it.
func newLogin(o *authOptions, getenv func(string) string, term *terminal) (*credentials, error) {
	lb, err := listenLoopback(o.redirectPort, term)
	if err != nil {
		return nil, err
	}
	cfg := &auth.AuthorizationCodeHandlerConfig{
		RedirectURL:              lb.redirectURL,
		AuthorizationCodeFetcher: lb.fetch,
		RequestRefreshToken:      true,
	}
	describe := "login"
	if o.clientID != "" {
		client := &oauthex.ClientCredentials{ClientID: o.clientID}
		if s := getenv(o.secretEnv); s != "" {
			client.ClientSecretAuth = &oauthex.ClientSecretAuth{ClientSecret: s}
		}
		cfg.PreregisteredClient = client
		describe = "login as client " + strconv.Quote(o.clientID)
	} else {
		cfg.DynamicClientRegistrationConfig = &auth.DynamicClientRegistrationConfig{
			Metadata: &oauthex.ClientRegistrationMetadata{
				RedirectURIs:            []string{lb.redirectURL},
				ClientName:              "mcp-chat",
				GrantTypes:              []string{"authorization_code", "refresh_token"},
				ResponseTypes:           []string{"code"},
				TokenEndpointAuthMethod: "none",
			},
		}
		describe = "login (dynamic client registration)"
	}
	if scopes := o.scopeList(); len(scopes) > 0 {
		cfg.ScopeFilter = func([]string) []string { return scopes }
	}
	h, err := auth.NewAuthorizationCodeHandler(cfg)
	if err != nil {
		lb.close()
		return nil, fmt.Errorf("setting up --login: %w", err)
	}
	return &credentials{describe: describe, login: h, redirect: lb}, nil
}

// loopback receives the authorization server's redirect (RFC 8252 §7.3).
type loopback struct {
	redirectURL string
	srv         *http.Server
	done        chan struct{} // closed when Serve returns
	results     chan callback // the latest redirect, if not yet taken
	term        *terminal
}

// callback is what one redirect carried.
type callback struct {
	res *auth.AuthorizationResult
	err error
}

// listenLoopback listens on 127.0.0.1:port (0 picks a free port) and serves
// /callback until close.
func listenLoopback(port int, term *terminal) (*loopback, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("listening for the login redirect: %w", err)
	}
	lb := &loopback{
		redirectURL: "http://" + ln.Addr().String() + "/callback",
		done:        make(chan struct{}),
		results:     make(chan callback, 1),
		term:        term,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", lb.serveCallback)
	lb.srv = &http.Server{Handler: mux}
	go func() {
		defer close(lb.done)
		lb.srv.Serve(ln)
	}()
	return lb, nil
}

// serveCallback takes the redirect: the code, state and iss, or the
// authorization server's error, for fetch.
func (lb *loopback) serveCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var cb callback
	page := "Signed in. You can close this tab and return to mcp-chat."
	if e := q.Get("error"); e != "" {
		cb.err = fmt.Errorf("the authorization server refused: %s %s", e, q.Get("error_description"))
		page = "Sign-in failed: " + e + " " + q.Get("error_description")
	} else if q.Get("code") == "" {
		http.Error(w, "missing code", http.StatusBadRequest)
		return
	} else {
		cb.res = &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}
	}
	select {
	case lb.results <- cb:
	default: // a redirect nobody waits for yet; the older one stays
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!doctype html><title>mcp-chat</title><p>%s</p>\n", html.EscapeString(page))
}

// fetch is the auth.AuthorizationCodeFetcher: it asks the user to open the
// authorization URL and waits for the redirect.
func (lb *loopback) fetch(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
	lb.term.printf("\nThe gateway needs you to sign in. Open this URL in your browser:\n\n  %s\n\nWaiting for the redirect to %s ...\n", args.URL, lb.redirectURL)
	select {
	case cb := <-lb.results:
		if cb.err != nil {
			return nil, cb.err
		}
		lb.term.printf("Signed in.\n")
		return cb.res, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the login redirect: %w", ctx.Err())
	}
}

// close stops the listener and waits for Serve to return.
func (lb *loopback) close() {
	lb.srv.Close()
	<-lb.done
}

// oauthTransport authorizes requests with an auth.OAuthHandler the way the
// go-sdk's Streamable HTTP transport does: the handler's token on every
// request; on a 401 (or a 403 asking for more scope), Authorize once and
// retry. Authorizations are serialized, and a request that failed with a
// token older than the current one is retried without another flow.
//
// The handler checks that the protected resource metadata names the URL
// it was refused at (RFC 9728 §3.3), but a legacy SSE endpoint (/sse) is
// not the resource: the gateway's resource is its /mcp URL. So the handler
// is shown the request at the resource that resource returns, which
// discoverResource accepts only on the same origin.
type oauthTransport struct {
	handler  auth.OAuthHandler
	base     http.RoundTripper
	resource func(ctx context.Context, url string) string
	// authorizing holds a token while a flow runs, so one runs at a time.
	authorizing chan struct{}
}

// newOAuthTransport returns an oauthTransport running h's flow for
// requests to base.
func newOAuthTransport(h auth.OAuthHandler, base http.RoundTripper) *oauthTransport {
	return &oauthTransport{handler: h, base: base, resource: discoverResource, authorizing: make(chan struct{}, 1)}
}

// RoundTrip sends req with the current token, and once more after a flow
// if it is refused.
func (t *oauthTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	send := func() (resp *http.Response, sent string, err error) {
		r := req.Clone(req.Context())
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		ts, err := t.handler.TokenSource(req.Context())
		if err != nil {
			return nil, "", err
		}
		if ts != nil {
			tok, err := ts.Token()
			if err != nil {
				return nil, "", err
			}
			tok.SetAuthHeader(r)
			sent = tok.AccessToken
		}
		resp, err = t.base.RoundTrip(r)
		return resp, sent, err
	}
	resp, sent, err := send()
	if err != nil || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden) {
		return resp, err
	}
	if err := t.authorize(req, resp, sent); err != nil {
		return nil, err
	}
	resp, _, err = send()
	return resp, err
}

// authorize runs the handler's flow for req, refused with resp when it
// carried the token sent, unless another request's flow has replaced that
// token meanwhile. It closes resp's body.
func (t *oauthTransport) authorize(req *http.Request, resp *http.Response, sent string) error {
	ctx := req.Context()
	select {
	case t.authorizing <- struct{}{}:
	case <-ctx.Done():
		resp.Body.Close()
		return ctx.Err()
	}
	defer func() { <-t.authorizing }()
	if current := t.token(ctx); current != "" && current != sent {
		resp.Body.Close()
		return nil
	}
	at := req
	if r := t.resource(ctx, req.URL.String()); r != req.URL.String() {
		if u, err := url.Parse(r); err == nil {
			at = req.Clone(ctx)
			at.URL = u
		}
	}
	// Authorize reads the challenge and closes the body.
	if err := t.handler.Authorize(ctx, at, resp); err != nil {
		return fmt.Errorf("authorizing: %w", err)
	}
	return nil
}

// token returns the handler's current access token, or "".
func (t *oauthTransport) token(ctx context.Context) string {
	ts, err := t.handler.TokenSource(ctx)
	if err != nil || ts == nil {
		return ""
	}
	tok, err := ts.Token()
	if err != nil {
		return ""
	}
	return tok.AccessToken
}

// discoveryTimeout bounds the lookup of protected resource metadata.
const discoveryTimeout = 10 * time.Second

// discoverResource returns the resource identifier (RFC 8707) of the
// server at rawURL: the "resource" of its protected resource metadata
// (RFC 9728), looked up at the URL's path and then at the root, if it is
// on the same origin; otherwise rawURL itself. For the gateway's /sse URL
// it is the gateway's /mcp URL, which tokens must name.
func discoverResource(ctx context.Context, rawURL string) string {
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return rawURL
	}
	paths := []string{"/.well-known/oauth-protected-resource"}
	if p := strings.TrimSuffix(u.Path, "/"); p != "" {
		paths = append([]string{"/.well-known/oauth-protected-resource" + p}, paths...)
	}
	for _, p := range paths {
		mu := url.URL{Scheme: u.Scheme, Host: u.Host, Path: p}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, mu.String(), nil)
		if err != nil {
			return rawURL
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return rawURL
		}
		var meta struct {
			Resource string `json:"resource"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&meta)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil || meta.Resource == "" {
			continue
		}
		if r, err := url.Parse(meta.Resource); err == nil && r.Scheme == u.Scheme && r.Host == u.Host {
			return meta.Resource
		}
		return rawURL
	}
	return rawURL
}
