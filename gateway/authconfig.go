package gateway

// The auth section of the config and upstream credentials. The YAML types
// live here (their keys are a contract); package auth gets plain values.

import (
	"net"
	"strconv"
	"strings"

	"github.com/mcpgw/gateway/auth"
)

// AuthConfig is the auth section: how callers authenticate and what each
// may use.
type AuthConfig struct {
	// Mode is "oauth2" or "none". If empty, none. None on a listener that
	// is not loopback is refused unless AllowUnauthenticated is set.
	Mode string `yaml:"mode"`
	// AllowUnauthenticated accepts mode none on a non-loopback listener, for
	// deployments where a proxy in front authenticates every request.
	AllowUnauthenticated bool `yaml:"allow_unauthenticated"`
	// Issuers are the trusted token issuers (OIDC discovery + JWKS).
	Issuers []IssuerConfig `yaml:"issuers"`
	// Audience is this gateway's resource URL (RFC 8707), which tokens must
	// name. If empty, public_url + "/mcp" (or http://<listen>/mcp).
	Audience string `yaml:"audience"`
	// RequiredScopes are needed for any MCP request.
	RequiredScopes []string `yaml:"required_scopes"`
	// Introspection, if set, verifies opaque tokens (RFC 7662).
	Introspection *IntrospectionConfig `yaml:"introspection"`
	// Policies decide, per caller, which upstream entries exist: first
	// match wins; no match means allowed.
	Policies []PolicyConfig `yaml:"policies"`
}

// IssuerConfig is one trusted issuer.
type IssuerConfig struct {
	URL string `yaml:"url"`
}

// IntrospectionConfig is an RFC 7662 endpoint and the gateway's client
// credentials for it.
type IntrospectionConfig struct {
	URL          string `yaml:"url"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
}

// PolicyConfig is one policy rule. Tools, prompts and resources are globs
// over upstream-side names and URIs.
type PolicyConfig struct {
	Upstreams     []string            `yaml:"upstreams"`
	Tools         []string            `yaml:"tools"`
	Prompts       []string            `yaml:"prompts"`
	Resources     []string            `yaml:"resources"`
	RequireScopes []string            `yaml:"require_scopes"`
	RequireClaims map[string][]string `yaml:"require_claims"`
}

// CredentialsConfig is how the gateway authenticates to an upstream. The
// caller's own token is never forwarded.
type CredentialsConfig struct {
	// OAuth2ClientCredentials gets the gateway a token of its own (cached,
	// refreshed before expiry) for every request to the upstream.
	OAuth2ClientCredentials *ClientCredentialsConfig `yaml:"oauth2_client_credentials"`
}

// ClientCredentialsConfig is an OAuth 2.0 client-credentials grant.
type ClientCredentialsConfig struct {
	TokenURL     string   `yaml:"token_url"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret"`
	Scopes       []string `yaml:"scopes"`
	// Resource is sent as the RFC 8707 resource parameter.
	Resource string `yaml:"resource"`
}

// toAuth converts the auth section for package auth, defaults applied.
func (c *Config) toAuth() auth.Config {
	a := c.Auth
	out := auth.Config{
		Mode:           a.Mode,
		Audience:       a.Audience,
		RequiredScopes: a.RequiredScopes,
	}
	if out.Mode == "" {
		out.Mode = auth.ModeNone
	}
	for _, is := range a.Issuers {
		out.Issuers = append(out.Issuers, auth.IssuerConfig{URL: is.URL})
	}
	if in := a.Introspection; in != nil {
		out.Introspection = &auth.IntrospectionConfig{URL: in.URL, ClientID: in.ClientID, ClientSecret: in.ClientSecret}
	}
	for _, p := range a.Policies {
		out.Policies = append(out.Policies, auth.PolicyRule{
			Upstreams: p.Upstreams, Tools: p.Tools, Prompts: p.Prompts, Resources: p.Resources,
			RequireScopes: p.RequireScopes, RequireClaims: p.RequireClaims,
		})
	}
	out.ApplyDefaults(c.defaultAudience())
	return out
}

// listensBeyondLoopback reports whether a valid listen address reaches more
// than loopback (an invalid one is reported elsewhere).
func listensBeyondLoopback(listen string) bool {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if _, err := strconv.Atoi(port); err != nil {
		return false
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil {
		return false
	}
	return !listenerIsLoopback(listen)
}

// defaultAudience is public_url + "/mcp", or the listen address's.
func (c *Config) defaultAudience() string {
	if c.PublicURL != "" {
		return strings.TrimSuffix(c.PublicURL, "/") + PathMCP
	}
	return "http://" + c.Listen + PathMCP
}

func (cc *ClientCredentialsConfig) toAuth() auth.ClientCredentialsConfig {
	return auth.ClientCredentialsConfig{
		TokenURL: cc.TokenURL, ClientID: cc.ClientID, ClientSecret: cc.ClientSecret,
		Scopes: cc.Scopes, Resource: cc.Resource,
	}
}

// validateAuth adds the auth section's problems, and those of upstream
// credentials.
func (c *Config) validateAuth(p *problemList) {
	ac := c.toAuth()
	for _, problem := range ac.Validate() {
		p.add("%s", problem)
	}
	if ac.Mode == auth.ModeNone && !c.Auth.AllowUnauthenticated && listensBeyondLoopback(c.Listen) {
		p.add("auth.mode: none on the non-loopback listener %s would let anyone use every upstream; set mode: oauth2, or allow_unauthenticated: true if a proxy in front authenticates", c.Listen)
	}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		if u.Credentials == nil || u.Credentials.OAuth2ClientCredentials == nil {
			continue
		}
		at := upstreamPath(i, u)
		if u.Transport == TransportStdio {
			p.add("%s: credentials apply to remote upstreams; give a stdio upstream its secrets in env", at)
			continue
		}
		cc := u.Credentials.OAuth2ClientCredentials.toAuth()
		for _, problem := range cc.Validate(at + ".credentials.oauth2_client_credentials") {
			p.add("%s", problem)
		}
	}
}
