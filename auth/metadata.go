package auth

import (
	"net/http"
	"slices"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Metadata returns the protected resource metadata (RFC 9728) of the
// gateway: resource is the audience, authorization_servers the issuers,
// scopes_supported the required scopes followed by those the policy
// requires (nothing else, to stay minimal), and tokens are accepted in the
// header only. In mode none it returns nil.
func (a *Authenticator) Metadata() *oauthex.ProtectedResourceMetadata {
	if a.mode == ModeNone {
		return nil
	}
	m := &oauthex.ProtectedResourceMetadata{
		Resource:               a.resource,
		ScopesSupported:        union(a.required, a.policy.Scopes()),
		AuthorizationServers:   slices.Clone(a.verifier.issuerURLs),
		BearerMethodsSupported: []string{"header"},
	}
	return m
}

// MetadataURL returns where clients find the metadata, as advertised in
// every challenge's resource_metadata: the audience with
// /.well-known/oauth-protected-resource inserted before its path (RFC 9728
// §3.1). Mount MetadataHandler there and at the bare
// /.well-known/oauth-protected-resource. Empty in mode none.
func (a *Authenticator) MetadataURL() string {
	return a.metadataURL
}

// MetadataHandler serves Metadata as JSON at whatever path it is mounted,
// with CORS open to any origin (the document is public, and browser-based
// clients must read it): GET, and OPTIONS for preflight. In mode none it
// answers 404, since there is nothing to authorize against.
func (a *Authenticator) MetadataHandler() http.Handler {
	if a.mode == ModeNone {
		return http.NotFoundHandler()
	}
	// The go-sdk's handler does exactly this.
	return sdkauth.ProtectedResourceMetadataHandler(a.Metadata())
}
