package auth

import (
	"context"
	"net/http"
	"net/url"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// ClientCredentialsConfig is an upstream's
// credentials.oauth2_client_credentials: the gateway gets a token of its own
// for the upstream with the OAuth 2.0 client credentials grant.
type ClientCredentialsConfig struct {
	// TokenURL (token_url) is the token endpoint.
	TokenURL string
	// ClientID (client_id) and ClientSecret (client_secret) authenticate
	// the gateway; the endpoint's preferred style (Basic or form) is
	// detected on first use.
	ClientID     string
	ClientSecret string
	// Scopes (scopes) are requested, if any.
	Scopes []string
	// Resource (resource), if set, is sent as the RFC 8707 resource
	// parameter, so that the token is minted for that upstream only.
	Resource string
}

// CredentialsOptions tune ClientCredentials. The zero value (or nil) is
// ready to use.
type CredentialsOptions struct {
	// Base carries the upstream requests. If nil, http.DefaultTransport.
	Base http.RoundTripper
	// TokenClient requests tokens. If nil, a client on Base with a 10s
	// timeout. It must not be a client that itself uses the returned
	// transport.
	TokenClient *http.Client
}

// ClientCredentials returns a RoundTripper that sends every request with
// "Authorization: Bearer <gateway token>", replacing any Authorization the
// request had, so that a caller's token can never reach the upstream. The
// token is fetched on first use, reused while valid and fetched again
// shortly before it expires (oauth2.ReuseTokenSource). A failure to get a
// token fails the request; the next request tries again. The request
// passed in is not modified.
func ClientCredentials(cfg ClientCredentialsConfig, opts *CredentialsOptions) http.RoundTripper {
	var o CredentialsOptions
	if opts != nil {
		o = *opts
	}
	if o.Base == nil {
		o.Base = http.DefaultTransport
	}
	if o.TokenClient == nil {
		o.TokenClient = &http.Client{Transport: o.Base, Timeout: defaultHTTPTimeout}
	}
	cc := &clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		TokenURL:     cfg.TokenURL,
		Scopes:       cfg.Scopes,
	}
	if cfg.Resource != "" {
		cc.EndpointParams = url.Values{"resource": {cfg.Resource}}
	}
	// x/oauth2 keeps this context for every token request it makes later;
	// it carries only the HTTP client (its way of configuring one), so it
	// has no cancellation to outlive.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, o.TokenClient)
	// oauth2.Transport clones the request and Sets (not Adds) the header.
	return &oauth2.Transport{Source: cc.TokenSource(ctx), Base: o.Base}
}
