package auth

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strings"
)

// Validate returns every problem in c, each with its path under auth and
// its fix, e.g.
//
//	auth.issuers[0].url: "http://idp.example.com" must be an absolute https URL (http allowed only for loopback)
//
// It is pure: no network, no environment. Fields other than mode and
// policies are checked only in mode oauth2, since nothing else uses them.
// Call ApplyDefaults first. Secrets never appear in problems.
func (c *Config) Validate() []string {
	var p problems
	switch c.Mode {
	case ModeOAuth2, ModeNone:
	case "":
		if len(c.Issuers) > 0 || c.Introspection != nil {
			p.add("auth.mode: is empty but issuers or introspection are set; write mode: oauth2 to require tokens, or mode: none to turn authentication off")
		}
	default:
		p.add("auth.mode: %q is not a mode; write oauth2 or none", c.Mode)
	}
	for i, r := range c.Policies {
		r.validate(&p, fmt.Sprintf("auth.policies[%d]", i))
	}
	if c.Mode != ModeOAuth2 {
		return p
	}

	if len(c.Issuers) == 0 {
		p.add("auth.issuers: is empty; mode oauth2 needs at least one trusted issuer, e.g. - url: https://idp.example.com")
	}
	seen := map[string]int{}
	for i, is := range c.Issuers {
		at := fmt.Sprintf("auth.issuers[%d].url", i)
		if msg := checkEndpoint(is.URL); msg != "" {
			p.add("%s: %s", at, msg)
		} else if j, dup := seen[is.URL]; dup {
			p.add("%s: repeats auth.issuers[%d].url; remove the duplicate", at, j)
		} else {
			seen[is.URL] = i
		}
	}
	if c.Audience == "" {
		p.add("auth.audience: is empty; set it to the public MCP URL, e.g. https://gw.example.com/mcp (the gateway's default is public_url + /mcp)")
	} else if msg := checkEndpoint(c.Audience); msg != "" {
		p.add("auth.audience: %s", msg)
	}
	for i, s := range c.RequiredScopes {
		if msg := checkScope(s); msg != "" {
			p.add("auth.required_scopes[%d]: %s", i, msg)
		}
	}
	if in := c.Introspection; in != nil {
		if msg := checkEndpoint(in.URL); msg != "" {
			p.add("auth.introspection.url: %s", msg)
		}
		if in.ClientID == "" {
			p.add("auth.introspection.client_id: is empty; set the client id the gateway authenticates with at the introspection endpoint")
		}
		if in.ClientSecret == "" {
			p.add("auth.introspection.client_secret: is empty; set it, e.g. client_secret: ${INTROSPECTION_SECRET}")
		}
	}
	return p
}

func (r *PolicyRule) validate(p *problems, at string) {
	for _, list := range []struct {
		key   string
		globs []string
	}{
		{"upstreams", r.Upstreams},
		{"tools", r.Tools},
		{"prompts", r.Prompts},
		{"resources", r.Resources},
	} {
		for j, g := range list.globs {
			if msg := checkGlob(g); msg != "" {
				p.add("%s.%s[%d]: %s", at, list.key, j, msg)
			}
		}
	}
	for j, s := range r.RequireScopes {
		if msg := checkScope(s); msg != "" {
			p.add("%s.require_scopes[%d]: %s", at, j, msg)
		}
	}
	names := make([]string, 0, len(r.RequireClaims))
	for name := range r.RequireClaims {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		switch {
		case name == "":
			p.add("%s.require_claims: has an empty claim name; name the claim, e.g. groups", at)
		case len(r.RequireClaims[name]) == 0:
			p.add("%s.require_claims%s: lists no values; list at least one accepted value", at, keyPath(name))
		}
	}
}

// Validate returns every problem in c, each prefixed with at, the path of c
// in the gateway's config (e.g. `upstreams[0] "github".credentials.oauth2_client_credentials`).
// It is pure, and secrets never appear in problems.
func (c *ClientCredentialsConfig) Validate(at string) []string {
	var p problems
	if msg := checkEndpoint(c.TokenURL); msg != "" {
		p.add("%s.token_url: %s", at, msg)
	}
	if c.ClientID == "" {
		p.add("%s.client_id: is empty; set the client id the gateway has at the token endpoint", at)
	}
	if c.ClientSecret == "" {
		p.add("%s.client_secret: is empty; set it, e.g. client_secret: ${CLIENT_SECRET}", at)
	}
	for i, s := range c.Scopes {
		if msg := checkScope(s); msg != "" {
			p.add("%s.scopes[%d]: %s", at, i, msg)
		}
	}
	if c.Resource != "" {
		if u, err := url.Parse(c.Resource); err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(c.Resource, "#") {
			p.add("%s.resource: %q must be an absolute URI without a fragment (RFC 8707), e.g. https://mcp.example.com/mcp", at, redacted(c.Resource))
		}
	}
	return p
}

type problems []string

func (p *problems) add(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

// checkEndpoint checks that s is an absolute https URL (or http on a
// loopback host) without credentials, query or fragment, as issuer
// identifiers, resource identifiers and OAuth endpoints should be. It
// returns a problem or "".
func checkEndpoint(s string) string {
	const want = "must be an absolute https URL (http allowed only for loopback)"
	if s == "" {
		return "is empty; write an absolute https URL, e.g. https://idp.example.com"
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Sprintf("is not a valid URL (%v); write an absolute https URL", err)
	}
	switch {
	case u.Hostname() == "" || u.Opaque != "" || (u.Scheme != "https" && u.Scheme != "http"):
		return fmt.Sprintf("%q %s", u.Redacted(), want)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return fmt.Sprintf("%q %s", u.Redacted(), want)
	case u.User != nil:
		return fmt.Sprintf("%q must not contain credentials; remove the part before @", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Sprintf("%q must not have a query or fragment; remove the part from ? or #", u.Redacted())
	}
	return ""
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func redacted(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return s
}

// checkScope checks s against RFC 6749 §3.3's scope-token:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func checkScope(s string) string {
	valid := s != ""
	for _, c := range []byte(s) {
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			valid = false
		}
	}
	if !valid {
		return fmt.Sprintf(`%q is not a valid scope; a scope is one word of printable ASCII without spaces, " or \`, s)
	}
	return ""
}

func checkGlob(g string) string {
	if g == "" {
		return `is empty; write a glob such as "*"`
	}
	if _, err := path.Match(strings.ReplaceAll(g, "/", "\x00"), ""); err != nil {
		return fmt.Sprintf("%q is not a valid glob (%v); use *, ? and [...] as in path.Match", g, err)
	}
	return ""
}

// keyPath renders a map key in a problem path: .groups, or ["https://x/groups"].
func keyPath(k string) string {
	simple := strings.IndexFunc(k, func(r rune) bool {
		return !(r == '_' || r == '-' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) < 0
	if simple {
		return "." + k
	}
	return fmt.Sprintf("[%q]", k)
}
