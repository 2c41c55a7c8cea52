// Token verification.
//
// A token that looks like a JWT (three dot-separated parts whose payload
// decodes to JSON) is routed by an unverified peek at its iss: if that names
// a configured issuer, the token is verified locally against that issuer's
// keys and the outcome is final. Every other token (opaque, or a JWT from an
// issuer not configured) goes to introspection when it is configured, and is
// invalid otherwise. The peek only routes: the issuer is checked again, with
// everything else, after the signature.
//
// Each issuer is discovered lazily, on the first token that names it, with
// one discovery in flight at a time. A failed discovery is remembered for
// Options.DiscoveryRetry, during which its tokens get ErrUnavailable at once
// instead of each waiting on a dead provider. The JWKS is go-oidc's remote
// key set: it caches keys and refetches when a token names an unknown kid,
// which is how key rotation is picked up without a restart.

package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Verifier checks bearer tokens. Create it with NewVerifier.
type Verifier struct {
	audience   string
	skew       time.Duration
	now        func() time.Time
	issuers    map[string]*issuer // by issuer URL
	issuerURLs []string           // in config order
	introspect *introspector      // nil if not configured
}

// signingAlgs returns the JWS algorithms accepted for access tokens: every
// asymmetric algorithm go-oidc supports, and never HS* or none (a symmetric
// key would have to be shared with the gateway).
func signingAlgs() []string {
	return []string{
		oidc.RS256, oidc.RS384, oidc.RS512,
		oidc.ES256, oidc.ES384, oidc.ES512,
		oidc.PS256, oidc.PS384, oidc.PS512,
		oidc.EdDSA,
	}
}

// discoveryTimeout bounds one discovery attempt, whatever the HTTP client.
const discoveryTimeout = 30 * time.Second

// NewVerifier returns a Verifier for cfg's issuers, audience and
// introspection endpoint. It checks cfg (see Config.Validate) but makes no
// network request.
func NewVerifier(cfg Config, opts *Options) (*Verifier, error) {
	if problems := cfg.Validate(); len(problems) > 0 {
		return nil, fmt.Errorf("invalid auth config: %s", strings.Join(problems, "; "))
	}
	o := opts.resolved()
	v := &Verifier{
		audience: cfg.Audience,
		skew:     o.ClockSkew,
		now:      o.Now,
		issuers:  map[string]*issuer{},
	}
	for _, ic := range cfg.Issuers {
		v.issuerURLs = append(v.issuerURLs, ic.URL)
		v.issuers[ic.URL] = &issuer{url: ic.URL, client: o.HTTPClient, retry: o.DiscoveryRetry, now: o.Now}
	}
	if cfg.Introspection != nil {
		v.introspect = newIntrospector(*cfg.Introspection, v, o)
	}
	return v, nil
}

// Verify checks token and returns its principal. Errors match ErrNoToken,
// ErrInvalidToken or ErrUnavailable. Scopes are reported, not required:
// that is the Authenticator's job.
func (v *Verifier) Verify(ctx context.Context, token string) (*Principal, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if iss, ok := peekIssuer(token); ok {
		if is := v.issuers[iss]; is != nil {
			return v.verifyJWT(ctx, is, token)
		}
	}
	if v.introspect != nil {
		return v.introspect.verify(ctx, token)
	}
	return nil, fmt.Errorf("%w: not a JWT from a trusted issuer", ErrInvalidToken)
}

func (v *Verifier) verifyJWT(ctx context.Context, is *issuer, token string) (*Principal, error) {
	verifier, err := is.verifier(ctx)
	if err != nil {
		return nil, err
	}
	// go-oidc checks the signature, the algorithm and the issuer. Audience
	// and time are checked below: go-oidc compares aud with one client ID
	// and allows no configurable skew.
	idt, err := verifier.Verify(ctx, token)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("%w: decoding claims: %w", ErrInvalidToken, err)
	}
	if !oauthex.MatchesResource(idt.Audience, v.audience) {
		return nil, fmt.Errorf("%w: audience does not include this resource", ErrInvalidToken)
	}
	if idt.Expiry.IsZero() {
		return nil, fmt.Errorf("%w: no exp claim", ErrInvalidToken)
	}
	if err := v.checkTimes(idt.Expiry, claims["nbf"]); err != nil {
		return nil, err
	}
	if idt.Subject == "" {
		return nil, fmt.Errorf("%w: no sub claim", ErrInvalidToken)
	}
	return &Principal{
		Issuer:  idt.Issuer,
		Subject: idt.Subject,
		Scopes:  scopesOf(claims),
		Claims:  claims,
		Expiry:  idt.Expiry,
	}, nil
}

// checkTimes checks exp (unless zero) and nbf (a JSON number, if present)
// with the configured skew.
func (v *Verifier) checkTimes(exp time.Time, nbf any) error {
	now := v.now()
	if !exp.IsZero() && now.After(exp.Add(v.skew)) {
		return fmt.Errorf("%w: expired", ErrInvalidToken)
	}
	switch n := nbf.(type) {
	case nil:
	case float64:
		if now.Add(v.skew).Before(unixTime(n)) {
			return fmt.Errorf("%w: not valid yet", ErrInvalidToken)
		}
	default:
		return fmt.Errorf("%w: nbf is not a number", ErrInvalidToken)
	}
	return nil
}

func unixTime(f float64) time.Time {
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

// scopesOf returns the scopes in the scope claim (a space-separated string)
// and the scp claim (a list of strings, or a string), without duplicates.
func scopesOf(claims map[string]any) []string {
	var scopes []string
	add := func(v any) {
		switch v := v.(type) {
		case string:
			scopes = union(scopes, strings.Fields(v))
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok && s != "" {
					scopes = union(scopes, []string{s})
				}
			}
		}
	}
	add(claims["scope"])
	add(claims["scp"])
	return scopes
}

// peekIssuer returns the iss of a token that looks like a JWS in compact
// form, without verifying anything.
func peekIssuer(token string) (string, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", false
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Iss == "" {
		return "", false
	}
	return c.Iss, true
}

// issuer discovers one trusted issuer lazily and keeps its verifier.
type issuer struct {
	url    string
	client *http.Client
	retry  time.Duration
	now    func() time.Time

	mu       sync.Mutex // guards the fields below
	v        *oidc.IDTokenVerifier
	err      error         // of the last failed discovery
	failedAt time.Time     // when it failed
	running  chan struct{} // non-nil while a discovery runs; closed when it ends
}

// verifier returns the issuer's token verifier, discovering it first if
// needed. Errors match ErrUnavailable.
func (is *issuer) verifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	for {
		is.mu.Lock()
		switch {
		case is.v != nil:
			v := is.v
			is.mu.Unlock()
			return v, nil
		case is.running != nil:
			running := is.running
			is.mu.Unlock()
			select {
			case <-running:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: waiting for discovery: %w", ErrUnavailable, ctx.Err())
			}
		case is.err != nil && is.now().Sub(is.failedAt) < is.retry:
			err := is.err
			is.mu.Unlock()
			return nil, err
		}
		running := make(chan struct{})
		is.running = running
		is.mu.Unlock()

		// Detached from the request: a client that goes away must not turn
		// into a failed discovery that every other request then waits out.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discoveryTimeout)
		v, err := is.discover(dctx)
		cancel()

		is.mu.Lock()
		is.running = nil
		if err != nil {
			err = fmt.Errorf("%w: discovering issuer %s: %w", ErrUnavailable, is.url, err)
			is.err, is.failedAt = err, is.now()
		} else {
			is.v, is.err = v, nil
		}
		is.mu.Unlock()
		close(running)
		return v, err
	}
}

// discover fetches the issuer's OpenID configuration or, failing that, its
// RFC 8414 authorization server metadata (which MCP authorization servers
// may publish instead), and returns a verifier over its JWKS.
func (is *issuer) discover(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	ctx = oidc.ClientContext(ctx, is.client)
	p, err := oidc.NewProvider(ctx, is.url)
	if err != nil {
		var merr error
		if p, merr = is.discoverOAuth(ctx); merr != nil {
			return nil, fmt.Errorf("%w; OAuth metadata: %w", err, merr)
		}
	}
	// Provider.Verifier uses a key set that lives as long as the provider,
	// with the HTTP client given to discovery.
	return p.Verifier(&oidc.Config{
		SkipClientIDCheck:    true, // aud is checked against the resource
		SkipExpiryCheck:      true, // exp and nbf are checked with our skew
		SupportedSigningAlgs: signingAlgs(),
	}), nil
}

// discoverOAuth reads RFC 8414 metadata from the well-known URL formed by
// inserting /.well-known/oauth-authorization-server before the issuer's path.
func (is *issuer) discoverOAuth(ctx context.Context) (*oidc.Provider, error) {
	u, err := url.Parse(is.url)
	if err != nil {
		return nil, err
	}
	u.Path = "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := is.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	var meta oauthex.AuthServerMeta
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&meta); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", u, err)
	}
	switch {
	case meta.Issuer != is.url:
		return nil, fmt.Errorf("%s names issuer %q, want %q", u, meta.Issuer, is.url)
	case meta.JWKSURI == "":
		return nil, errors.New(u.String() + " has no jwks_uri")
	}
	pc := oidc.ProviderConfig{IssuerURL: is.url, JWKSURL: meta.JWKSURI}
	return pc.NewProvider(ctx), nil
}
