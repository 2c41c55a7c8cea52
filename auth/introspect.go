// RFC 7662 token introspection for tokens that are not JWTs of a configured
// issuer.
//
// Active results are cached for at most Options.IntrospectionCacheTTL and
// never past the token's exp, keyed by the SHA-256 of the token so that the
// cache holds no usable token. Inactive results and failures are not cached:
// a revoked token may not be reused, and an endpoint that recovers is used
// at once. When the cache is full, expired entries go first, then the entry
// closest to expiry.

package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

type introspector struct {
	cfg    IntrospectionConfig
	client *http.Client
	v      *Verifier // for audience, issuers, skew and clock
	ttl    time.Duration
	max    int

	mu    sync.Mutex // guards cache
	cache map[[sha256.Size]byte]cachedPrincipal
}

type cachedPrincipal struct {
	p     *Principal
	until time.Time
}

func newIntrospector(cfg IntrospectionConfig, v *Verifier, o Options) *introspector {
	return &introspector{
		cfg:    cfg,
		client: o.HTTPClient,
		v:      v,
		ttl:    o.IntrospectionCacheTTL,
		max:    o.IntrospectionCacheSize,
		cache:  map[[sha256.Size]byte]cachedPrincipal{},
	}
}

func (in *introspector) verify(ctx context.Context, token string) (*Principal, error) {
	key := sha256.Sum256([]byte(token))
	if p := in.lookup(key); p != nil {
		return p, nil
	}
	p, err := in.introspect(ctx, token)
	if err != nil {
		return nil, err
	}
	in.store(key, p)
	return p, nil
}

func (in *introspector) lookup(key [sha256.Size]byte) *Principal {
	in.mu.Lock()
	defer in.mu.Unlock()
	c, ok := in.cache[key]
	if !ok {
		return nil
	}
	if !in.v.now().Before(c.until) {
		delete(in.cache, key)
		return nil
	}
	return c.p
}

func (in *introspector) store(key [sha256.Size]byte, p *Principal) {
	if in.ttl <= 0 {
		return
	}
	now := in.v.now()
	until := now.Add(in.ttl)
	if !p.Expiry.IsZero() && p.Expiry.Before(until) {
		until = p.Expiry
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.cache) >= in.max {
		in.evictLocked(now)
	}
	in.cache[key] = cachedPrincipal{p: p, until: until}
}

// evictLocked drops expired entries and, if the cache is still full, the
// one that expires first.
func (in *introspector) evictLocked(now time.Time) {
	var first [sha256.Size]byte
	var firstUntil time.Time
	for k, c := range in.cache {
		if !now.Before(c.until) {
			delete(in.cache, k)
			continue
		}
		if firstUntil.IsZero() || c.until.Before(firstUntil) {
			first, firstUntil = k, c.until
		}
	}
	if len(in.cache) >= in.max {
		delete(in.cache, first)
	}
}

// introspect asks the endpoint about token and checks the answer.
func (in *introspector) introspect(ctx context.Context, token string) (*Principal, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.cfg.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: introspection request: %w", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: the credentials are form-encoded before Basic.
	req.SetBasicAuth(url.QueryEscape(in.cfg.ClientID), url.QueryEscape(in.cfg.ClientSecret))
	resp, err := in.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: introspection: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: introspection endpoint answered %s", ErrUnavailable, resp.Status)
	}
	var claims map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&claims); err != nil {
		return nil, fmt.Errorf("%w: decoding introspection response: %w", ErrUnavailable, err)
	}
	return in.principal(claims)
}

// principal checks an introspection response and builds its Principal.
func (in *introspector) principal(claims map[string]any) (*Principal, error) {
	if active, _ := claims["active"].(bool); !active {
		return nil, fmt.Errorf("%w: inactive", ErrInvalidToken)
	}
	var exp time.Time
	switch e := claims["exp"].(type) {
	case nil:
	case float64:
		exp = unixTime(e)
	default:
		return nil, fmt.Errorf("%w: exp is not a number", ErrInvalidToken)
	}
	if err := in.v.checkTimes(exp, claims["nbf"]); err != nil {
		return nil, err
	}
	iss := in.cfg.URL
	if s, _ := claims["iss"].(string); s != "" {
		if in.v.issuers[s] == nil {
			return nil, fmt.Errorf("%w: issuer not trusted", ErrInvalidToken)
		}
		iss = s
	}
	if !oauthex.MatchesResource(stringList(claims["aud"]), in.v.audience) {
		return nil, fmt.Errorf("%w: audience does not include this resource", ErrInvalidToken)
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		sub, _ = claims["client_id"].(string)
	}
	if sub == "" {
		return nil, fmt.Errorf("%w: neither sub nor client_id", ErrInvalidToken)
	}
	return &Principal{
		Issuer:  iss,
		Subject: sub,
		Scopes:  scopesOf(claims),
		Claims:  claims,
		Expiry:  exp,
	}, nil
}

// stringList reads a claim that is a string or a list of strings.
func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
