package auth_test

import (
	"strings"
	"testing"

	"github.com/mcpgw/gateway/auth"
)

func TestConfigValidate(t *testing.T) {
	valid := func(change func(*auth.Config)) auth.Config {
		c := auth.Config{
			Mode:           auth.ModeOAuth2,
			Issuers:        []auth.IssuerConfig{{URL: "https://idp.example.com"}},
			Audience:       "https://gw.example.com/mcp",
			RequiredScopes: []string{"mcp:tools"},
			Introspection:  &auth.IntrospectionConfig{URL: "https://idp.example.com/oauth2/introspect", ClientID: "gateway", ClientSecret: "hunter2"},
			Policies: []auth.PolicyRule{{
				Upstreams: []string{"admin*"}, Tools: []string{"*"},
				RequireScopes: []string{"mcp:admin"}, RequireClaims: map[string][]string{"groups": {"platform"}},
			}},
		}
		if change != nil {
			change(&c)
		}
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  auth.Config
		want []string
	}{
		{"valid", valid(nil), nil},
		{"zero is mode none", auth.Config{}, nil},
		{"loopback http", valid(func(c *auth.Config) {
			c.Issuers[0].URL = "http://127.0.0.1:9000/realms/x"
			c.Audience = "http://localhost:8080/mcp"
		}), nil},
		{"mode none ignores oauth fields", auth.Config{Mode: auth.ModeNone, Issuers: []auth.IssuerConfig{{URL: "ftp://x"}}}, nil},
		{"unknown mode", valid(func(c *auth.Config) { c.Mode = "oauth" }), []string{
			`auth.mode: "oauth" is not a mode; write oauth2 or none`,
		}},
		{"empty mode with issuers", valid(func(c *auth.Config) { c.Mode = "" }), []string{
			`auth.mode: is empty but issuers or introspection are set; write mode: oauth2 to require tokens, or mode: none to turn authentication off`,
		}},
		{"oauth2 without anything", auth.Config{Mode: auth.ModeOAuth2}, []string{
			`auth.issuers: is empty; mode oauth2 needs at least one trusted issuer, e.g. - url: https://idp.example.com`,
			`auth.audience: is empty; set it to the public MCP URL, e.g. https://gw.example.com/mcp (the gateway's default is public_url + /mcp)`,
		}},
		{"bad issuers", valid(func(c *auth.Config) {
			c.Issuers = []auth.IssuerConfig{
				{URL: "http://idp.example.com"},
				{URL: ""},
				{URL: "https://idp.example.com"},
				{URL: "https://idp.example.com"},
				{URL: "https://u:pw@idp.example.com"},
				{URL: "https://idp.example.com/?tenant=1"},
				{URL: "idp.example.com"},
				{URL: "https://h:x/"},
			}
		}), []string{
			`auth.issuers[0].url: "http://idp.example.com" must be an absolute https URL (http allowed only for loopback)`,
			`auth.issuers[1].url: is empty; write an absolute https URL, e.g. https://idp.example.com`,
			`auth.issuers[3].url: repeats auth.issuers[2].url; remove the duplicate`,
			`auth.issuers[4].url: "https://u:xxxxx@idp.example.com" must not contain credentials; remove the part before @`,
			`auth.issuers[5].url: "https://idp.example.com/?tenant=1" must not have a query or fragment; remove the part from ? or #`,
			`auth.issuers[6].url: "idp.example.com" must be an absolute https URL (http allowed only for loopback)`,
			`auth.issuers[7].url: is not a valid URL (invalid port ":x" after host); write an absolute https URL`,
		}},
		{"bad audience", valid(func(c *auth.Config) { c.Audience = "https://gw.example.com/mcp#frag" }), []string{
			`auth.audience: "https://gw.example.com/mcp#frag" must not have a query or fragment; remove the part from ? or #`,
		}},
		{"bad scopes", valid(func(c *auth.Config) { c.RequiredScopes = []string{"mcp:tools", "a b", `q"`, ""} }), []string{
			`auth.required_scopes[1]: "a b" is not a valid scope; a scope is one word of printable ASCII without spaces, " or \`,
			`auth.required_scopes[2]: "q\"" is not a valid scope; a scope is one word of printable ASCII without spaces, " or \`,
			`auth.required_scopes[3]: "" is not a valid scope; a scope is one word of printable ASCII without spaces, " or \`,
		}},
		{"bad introspection", valid(func(c *auth.Config) {
			c.Introspection = &auth.IntrospectionConfig{URL: "http://idp.example.com/introspect"}
		}), []string{
			`auth.introspection.url: "http://idp.example.com/introspect" must be an absolute https URL (http allowed only for loopback)`,
			`auth.introspection.client_id: is empty; set the client id the gateway authenticates with at the introspection endpoint`,
			`auth.introspection.client_secret: is empty; set it, e.g. client_secret: ${INTROSPECTION_SECRET}`,
		}},
		{"bad policies, even in mode none", auth.Config{Mode: auth.ModeNone, Policies: []auth.PolicyRule{
			{Upstreams: []string{"a[", ""}, Tools: []string{"ok*"}, Prompts: []string{`x\`}, Resources: []string{"file:///a/["}},
			{RequireScopes: []string{"ok", "no way"}, RequireClaims: map[string][]string{"groups": nil, "": {"x"}, "https://x/roles": {}}},
		}}, []string{
			`auth.policies[0].upstreams[0]: "a[" is not a valid glob (syntax error in pattern); use *, ? and [...] as in path.Match`,
			`auth.policies[0].upstreams[1]: is empty; write a glob such as "*"`,
			`auth.policies[0].prompts[0]: "x\\" is not a valid glob (syntax error in pattern); use *, ? and [...] as in path.Match`,
			`auth.policies[0].resources[0]: "file:///a/[" is not a valid glob (syntax error in pattern); use *, ? and [...] as in path.Match`,
			`auth.policies[1].require_scopes[1]: "no way" is not a valid scope; a scope is one word of printable ASCII without spaces, " or \`,
			`auth.policies[1].require_claims: has an empty claim name; name the claim, e.g. groups`,
			`auth.policies[1].require_claims.groups: lists no values; list at least one accepted value`,
			`auth.policies[1].require_claims["https://x/roles"]: lists no values; list at least one accepted value`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cfg.Validate()
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("Validate() problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if strings.Contains(strings.Join(got, "\n"), "hunter2") {
				t.Errorf("a secret appears in the problems")
			}
		})
	}
}

func TestConfigApplyDefaults(t *testing.T) {
	c := auth.Config{}
	c.ApplyDefaults("https://gw.example.com/mcp")
	if c.Audience != "https://gw.example.com/mcp" {
		t.Errorf("ApplyDefaults: Audience = %q, want the default", c.Audience)
	}
	c.ApplyDefaults("https://other")
	if c.Audience != "https://gw.example.com/mcp" {
		t.Errorf("ApplyDefaults overwrote Audience: %q", c.Audience)
	}
}

func TestClientCredentialsConfigValidate(t *testing.T) {
	const at = `upstreams[0] "github".credentials.oauth2_client_credentials`
	for _, tc := range []struct {
		name string
		cfg  auth.ClientCredentialsConfig
		want []string
	}{
		{"valid", auth.ClientCredentialsConfig{
			TokenURL: "https://idp.example.com/oauth2/token", ClientID: "gw", ClientSecret: "hunter2",
			Scopes: []string{"repo:read"}, Resource: "https://example.com/mcp",
		}, nil},
		{"empty", auth.ClientCredentialsConfig{}, []string{
			at + `.token_url: is empty; write an absolute https URL, e.g. https://idp.example.com`,
			at + `.client_id: is empty; set the client id the gateway has at the token endpoint`,
			at + `.client_secret: is empty; set it, e.g. client_secret: ${CLIENT_SECRET}`,
		}},
		{"bad values", auth.ClientCredentialsConfig{
			TokenURL: "http://idp.example.com/token", ClientID: "gw", ClientSecret: "hunter2",
			Scopes: []string{"a b"}, Resource: "https://example.com/mcp#x",
		}, []string{
			at + `.token_url: "http://idp.example.com/token" must be an absolute https URL (http allowed only for loopback)`,
			at + `.scopes[0]: "a b" is not a valid scope; a scope is one word of printable ASCII without spaces, " or \`,
			at + `.resource: "https://example.com/mcp#x" must be an absolute URI without a fragment (RFC 8707), e.g. https://mcp.example.com/mcp`,
		}},
		{"relative resource", auth.ClientCredentialsConfig{
			TokenURL: "https://idp.example.com/token", ClientID: "gw", ClientSecret: "hunter2", Resource: "/mcp",
		}, []string{
			at + `.resource: "/mcp" must be an absolute URI without a fragment (RFC 8707), e.g. https://mcp.example.com/mcp`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cfg.Validate(at)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("Validate(%q) problems:\n%s\nwant:\n%s", at, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
