package auth_test

import (
	"time"

	"github.com/mcpgw/gateway/auth/authtest"
)

// The audience (resource) that the tests configure, and its metadata URL.
const (
	testAudience    = "https://gw.example.com/mcp"
	testMetadataURL = "https://gw.example.com/.well-known/oauth-protected-resource/mcp"
)

// claims returns valid access token claims for alice at now, with changes
// applied: a nil value deletes the claim. Token fills in the issuer.
func claims(now time.Time, changes map[string]any) authtest.Claims {
	return authtest.Claims{
		Subject:  "alice",
		Audience: []string{testAudience},
		Scope:    "mcp:tools",
		IssuedAt: now,
		Expiry:   now.Add(time.Hour),
		Extra:    changes,
	}
}

// signedBy returns c to be signed with k instead of the provider's current
// key.
func signedBy(k *authtest.Key, c authtest.Claims) authtest.Claims {
	c.Key = k
	return c
}

// withAlg returns c to be signed (or forged) with alg.
func withAlg(alg string, c authtest.Claims) authtest.Claims {
	c.Alg = alg
	return c
}

// withIssuer returns c naming iss as its issuer.
func withIssuer(iss string, c authtest.Claims) authtest.Claims {
	c.Issuer = iss
	return c
}

// introspections returns how many times p was asked to introspect token.
func introspections(p *authtest.Provider, token string) int {
	n := 0
	for _, r := range p.IntrospectionRequests() {
		if r.Token == token {
			n++
		}
	}
	return n
}
