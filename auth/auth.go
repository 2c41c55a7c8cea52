// Package auth makes the gateway an OAuth 2.1 resource server and decides
// who may use what.
//
// It verifies bearer tokens (JWTs through OpenID Connect discovery and JWKS,
// opaque tokens through optional RFC 7662 introspection), serves the RFC 9728
// protected resource metadata that tells clients where to get a token,
// answers failures with RFC 6750 WWW-Authenticate challenges, evaluates the
// policy that filters catalogs and gates calls, and gives upstream
// connections credentials of their own (OAuth 2.0 client credentials), so
// that a caller's token never travels further than the gateway.
//
// The package knows MCP only as far as a kind (tool, prompt, resource), an
// upstream name and an upstream-side name or URI. It never touches the
// network at construction: OpenID discovery happens on the first token from
// an issuer, so a gateway starts even while its identity provider is down.
//
// All types are safe for concurrent use once constructed. Nothing here logs
// a token or a claim; a Principal logs and prints as its Key.
//
// # Where the pieces go
//
//	a, err := auth.New(cfg, &auth.Options{Logger: log})
//	mux.Handle("/.well-known/oauth-protected-resource", a.MetadataHandler())
//	mux.Handle("/.well-known/oauth-protected-resource/mcp", a.MetadataHandler())
//	mux.Handle("/mcp", a.Middleware(mcpHandler))
//	...
//	p := auth.PrincipalFromContext(ctx)             // in handlers
//	if err := a.Authorize(p, auth.KindTool, up, name); err != nil {
//		a.WriteError(w, r, err)                      // 403 with a challenge
//	}
package auth

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
)

// Modes of Config.Mode.
const (
	ModeNone   = "none"
	ModeOAuth2 = "oauth2"
)

// Config is the auth section of the gateway configuration. The gateway's
// loader decodes YAML into its own types and converts them to this one; the
// comments give the YAML keys, which are a contract.
type Config struct {
	// Mode (mode) is ModeOAuth2 or ModeNone. If empty, none; Validate
	// reports an empty mode next to configured issuers, since that is
	// almost certainly a forgotten "mode: oauth2".
	Mode string
	// Issuers (issuers) are the trusted token issuers.
	Issuers []IssuerConfig
	// Audience (audience) is this gateway's resource identifier (RFC 8707):
	// tokens must name it in aud, and the protected resource metadata
	// advertises it as resource. The gateway defaults it to public_url +
	// "/mcp" with ApplyDefaults.
	Audience string
	// RequiredScopes (required_scopes) are needed for any MCP request.
	RequiredScopes []string
	// Introspection (introspection), if set, verifies opaque tokens.
	Introspection *IntrospectionConfig
	// Policies (policies) gate tools, prompts and resources; see Policy.
	Policies []PolicyRule
}

// IssuerConfig is one trusted issuer.
type IssuerConfig struct {
	// URL (url) is the issuer identifier: it must equal the tokens' iss and
	// the issuer in the discovery document, byte for byte.
	URL string
}

// IntrospectionConfig reaches an RFC 7662 introspection endpoint.
type IntrospectionConfig struct {
	// URL (url) is the introspection endpoint.
	URL string
	// ClientID (client_id) and ClientSecret (client_secret) authenticate
	// the gateway to the endpoint with HTTP Basic (client_secret_basic).
	ClientID     string
	ClientSecret string
}

// ApplyDefaults fills in defaults that need knowledge only the gateway has:
// an empty Audience becomes defaultAudience (public_url + "/mcp").
func (c *Config) ApplyDefaults(defaultAudience string) {
	if c.Audience == "" {
		c.Audience = defaultAudience
	}
}

// Options tune New and NewVerifier. The zero value (or nil) is ready to use.
type Options struct {
	// Logger receives rejected tokens (without the token) and unreachable
	// identity providers. If nil, logs are discarded.
	Logger *slog.Logger
	// HTTPClient makes discovery, JWKS and introspection requests. If nil,
	// a client with a 10s timeout.
	HTTPClient *http.Client
	// ClockSkew is tolerated when checking exp and nbf. If zero, 60s.
	// Negative means no tolerance.
	ClockSkew time.Duration
	// DiscoveryRetry is how long a failed OpenID discovery answers requests
	// with "unavailable" before the next request tries again. If zero, 10s.
	// Negative retries on every request.
	DiscoveryRetry time.Duration
	// IntrospectionCacheTTL caps how long an active introspection result is
	// reused (never past the token's exp). If zero, 60s. Negative disables
	// the cache.
	IntrospectionCacheTTL time.Duration
	// IntrospectionCacheSize bounds the number of cached introspection
	// results. If zero, 10000.
	IntrospectionCacheSize int
	// Now is the clock for exp, nbf, caches and retries. If nil, time.Now.
	Now func() time.Time
}

const (
	defaultHTTPTimeout    = 10 * time.Second
	defaultClockSkew      = 60 * time.Second
	defaultDiscoveryRetry = 10 * time.Second
	defaultCacheTTL       = 60 * time.Second
	defaultCacheSize      = 10000
)

// resolved returns a copy of o (which may be nil) with defaults applied.
func (o *Options) resolved() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	if r.HTTPClient == nil {
		r.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	switch {
	case r.ClockSkew == 0:
		r.ClockSkew = defaultClockSkew
	case r.ClockSkew < 0:
		r.ClockSkew = 0
	}
	switch {
	case r.DiscoveryRetry == 0:
		r.DiscoveryRetry = defaultDiscoveryRetry
	case r.DiscoveryRetry < 0:
		r.DiscoveryRetry = 0
	}
	if r.IntrospectionCacheTTL == 0 {
		r.IntrospectionCacheTTL = defaultCacheTTL
	}
	if r.IntrospectionCacheSize <= 0 {
		r.IntrospectionCacheSize = defaultCacheSize
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return r
}

// Principal is the verified identity behind a bearer token. It is shared
// between requests and must not be modified.
type Principal struct {
	// Issuer is the token's iss. For an introspected token whose response
	// has no iss, it is the introspection URL, the authority that vouched
	// for it.
	Issuer string
	// Subject is the token's sub; for an introspected token without sub,
	// its client_id.
	Subject string
	// Scopes are the granted scopes, from scope (space-separated) and scp
	// (a list or a string).
	Scopes []string
	// Claims are all claims of the token or introspection response. Never
	// log them.
	Claims map[string]any
	// Expiry is the token's exp; zero if an introspection response had none.
	Expiry time.Time
}

// Key identifies the principal across tokens: issuer + "|" + subject. The
// gateway binds sessions to it. A nil Principal has the empty key.
func (p *Principal) Key() string {
	if p == nil {
		return ""
	}
	return p.Issuer + "|" + p.Subject
}

// String returns Key, so that printing a Principal cannot leak its claims.
func (p *Principal) String() string {
	return p.Key()
}

// LogValue implements slog.LogValuer: a Principal logs as its Key only.
func (p *Principal) LogValue() slog.Value {
	return slog.StringValue(p.Key())
}

// HasScopes reports whether p holds every one of scopes. A nil Principal
// holds none.
func (p *Principal) HasScopes(scopes ...string) bool {
	var have []string
	if p != nil {
		have = p.Scopes
	}
	return len(missing(scopes, have)) == 0
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the Principal that Middleware put in ctx, or
// nil (mode none, or no middleware).
func PrincipalFromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// tokenInfoPrincipal is the key of the Principal in sdkauth.TokenInfo.Extra.
const tokenInfoPrincipal = "mcpgw.principal"

// PrincipalFromTokenInfo returns the Principal behind ti, the go-sdk's view
// of the token that MCP handlers receive in RequestExtra.TokenInfo, or nil.
func PrincipalFromTokenInfo(ti *sdkauth.TokenInfo) *Principal {
	if ti == nil {
		return nil
	}
	p, _ := ti.Extra[tokenInfoPrincipal].(*Principal)
	return p
}

// missing returns the elements of need that have does not contain, in the
// order of need.
func missing(need, have []string) []string {
	var out []string
	for _, s := range need {
		found := false
		for _, h := range have {
			if h == s {
				found = true
				break
			}
		}
		if !found {
			out = append(out, s)
		}
	}
	return out
}

// union returns a followed by the elements of b not in a, without
// duplicates.
func union(a, b []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, list := range [][]string{a, b} {
		for _, s := range list {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}
