package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
)

// CodeUnauthorized is the JSON-RPC error code in the body of 401 and 403
// answers (the JSON-RPC server-error range; MCP defines no code for them).
const CodeUnauthorized = -32001

// JSON-RPC codes of the other answers WriteError writes.
const (
	codeInvalidRequest = -32600
	codeInternal       = -32603
)

// Authenticator guards the gateway's MCP endpoints: it verifies bearer
// tokens, requires the configured scopes, serves the protected resource
// metadata and applies the policy. Create it with New.
type Authenticator struct {
	mode        string
	verifier    *Verifier // nil in mode none
	policy      *Policy
	required    []string
	resource    string
	metadataURL string
	retryAfter  int // seconds, for 503
	log         *slog.Logger
	sdk         func(http.Handler) http.Handler
}

// New returns an Authenticator for cfg. It checks cfg (see Config.Validate)
// but makes no network request: issuers are discovered on first use.
func New(cfg Config, opts *Options) (*Authenticator, error) {
	if problems := cfg.Validate(); len(problems) > 0 {
		return nil, fmt.Errorf("invalid auth config: %s", strings.Join(problems, "; "))
	}
	o := opts.resolved()
	a := &Authenticator{
		mode:   cfg.Mode,
		policy: NewPolicy(cfg.Policies),
		log:    o.Logger,
	}
	if a.mode != ModeOAuth2 {
		a.mode = ModeNone
		return a, nil
	}
	v, err := NewVerifier(cfg, opts)
	if err != nil {
		return nil, err
	}
	a.verifier = v
	a.required = slices.Clone(cfg.RequiredScopes)
	a.resource = cfg.Audience
	a.metadataURL = metadataURL(cfg.Audience)
	a.retryAfter = max(1, int(o.DiscoveryRetry.Seconds()))
	// The go-sdk's RequireBearerToken is the only exported way to put an
	// sdkauth.TokenInfo into a request context, where its Streamable HTTP
	// handler binds sessions to TokenInfo.UserID and hands TokenInfo to MCP
	// handlers. Verification has already happened when it runs: its
	// "verifier" only converts the Principal. Expiration stays zero (with
	// AllowMissingExpiration) so that its own expiry check, on another clock
	// and without our skew, can never reject what we accepted.
	a.sdk = sdkauth.RequireBearerToken(
		func(ctx context.Context, _ string, _ *http.Request) (*sdkauth.TokenInfo, error) {
			p := PrincipalFromContext(ctx)
			return &sdkauth.TokenInfo{
				UserID: p.Key(),
				Scopes: p.Scopes,
				Extra:  map[string]any{tokenInfoPrincipal: p},
			}, nil
		},
		&sdkauth.RequireBearerTokenOptions{AllowMissingExpiration: true},
	)
	return a, nil
}

// Mode returns ModeOAuth2 or ModeNone.
func (a *Authenticator) Mode() string { return a.mode }

// Policy returns the policy, for filtering lists.
func (a *Authenticator) Policy() *Policy { return a.policy }

// Middleware authenticates every request to next: the token must come in
// the Authorization header (scheme "Bearer", any case), verify, and carry
// the required scopes. On success next runs with the Principal in the
// context (PrincipalFromContext) and the go-sdk's TokenInfo too
// (sdkauth.TokenInfoFromContext; UserID is Principal.Key). On failure the
// answer comes from WriteError and next is not called.
//
// In mode none, Middleware returns next unchanged: requests pass with a nil
// Principal.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	if a.mode == ModeNone {
		return next
	}
	withTokenInfo := a.sdk(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.authenticate(r)
		if err != nil {
			a.WriteError(w, r, err)
			return
		}
		withTokenInfo.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// authenticate extracts, verifies and scope-checks the request's token.
func (a *Authenticator) authenticate(r *http.Request) (*Principal, error) {
	// MCP forbids tokens in the query string, and one there has leaked
	// already (access logs, history, Referer). The answer is 400
	// invalid_request, as RFC 6750 §3.1 prescribes for a request that
	// includes an unsupported parameter, rather than 401: the token
	// itself may be fine, and a 401 would send the client to fetch another
	// one and put that in the URL too. The request is refused even with a
	// header present, so that the client gets fixed, not silently ignored.
	if r.URL.Query().Has("access_token") {
		return nil, fmt.Errorf("%w: access token in the query string", ErrInvalidRequest)
	}
	token, err := bearerToken(r.Header)
	if err != nil {
		return nil, err
	}
	p, err := a.verifier.Verify(r.Context(), token)
	if err != nil {
		return nil, err
	}
	if !p.HasScopes(a.required...) {
		return nil, &InsufficientScopeError{Scopes: a.required}
	}
	return p, nil
}

// bearerToken returns the token of the Authorization header. Another scheme
// (or none) counts as no token, as RFC 6750 §3.1 asks; so does "Bearer"
// with nothing after it, which clients send before they have a token.
func bearerToken(h http.Header) (string, error) {
	values := h.Values("Authorization")
	switch len(values) {
	case 0:
		return "", ErrNoToken
	case 1:
	default:
		return "", fmt.Errorf("%w: more than one Authorization header", ErrInvalidRequest)
	}
	// strings.Fields, as the go-sdk's middleware splits it too.
	fields := strings.Fields(values[0])
	switch {
	case len(fields) == 0 || !strings.EqualFold(fields[0], "Bearer"):
		return "", ErrNoToken
	case len(fields) == 1:
		return "", ErrNoToken
	case len(fields) > 2:
		return "", fmt.Errorf("%w: malformed Authorization header", ErrInvalidRequest)
	}
	return fields[1], nil
}

// Authorize decides whether p may use the named tool, prompt or resource
// of upstream (see Policy). It returns nil, an *InsufficientScopeError
// listing every scope needed (the required scopes plus the deciding rule's)
// when more scopes would help, or ErrForbidden when a claim requirement
// fails or, in mode none, when the rule requires anything at all.
func (a *Authenticator) Authorize(p *Principal, kind Kind, upstream, name string) error {
	if a.policy.Allowed(p, kind, upstream, name) {
		return nil
	}
	r := a.policy.match(kind, upstream, name)
	if p != nil && len(a.policy.missingScopes(r, p)) > 0 {
		return &InsufficientScopeError{Scopes: union(a.required, r.RequireScopes)}
	}
	return ErrForbidden
}

// WriteError answers a request that err (from Middleware's checks, Verify
// or Authorize) stops. It is the one place where these errors become
// statuses:
//
//	ErrNoToken                 401  challenge without error=
//	ErrInvalidToken            401  error="invalid_token"
//	ErrInvalidRequest          400  error="invalid_request"
//	*InsufficientScopeError    403  error="insufficient_scope", scope = all needed
//	ErrForbidden               403  no challenge (no token would help)
//	anything else              503  Retry-After (ErrUnavailable)
//
// Challenges carry resource_metadata and, if any scopes are needed, scope.
// The body is a JSON-RPC error object with a null id and a generic message;
// err's text is logged (at Info, or Warn for 503), never sent.
func (a *Authenticator) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := http.StatusServiceUnavailable, codeInternal, "Authorization server unavailable"
	var challenge string
	var scopeErr *InsufficientScopeError
	switch {
	case errors.As(err, &scopeErr):
		status, code, msg = http.StatusForbidden, CodeUnauthorized, "Forbidden"
		challenge = a.challenge("insufficient_scope", "", scopeErr.Scopes)
	case errors.Is(err, ErrForbidden):
		status, code, msg = http.StatusForbidden, CodeUnauthorized, "Forbidden"
	case errors.Is(err, ErrNoToken):
		status, code, msg = http.StatusUnauthorized, CodeUnauthorized, "Unauthorized"
		challenge = a.challenge("", "", a.required)
	case errors.Is(err, ErrInvalidToken):
		status, code, msg = http.StatusUnauthorized, CodeUnauthorized, "Unauthorized"
		challenge = a.challenge("invalid_token", "", a.required)
	case errors.Is(err, ErrInvalidRequest):
		status, code, msg = http.StatusBadRequest, codeInvalidRequest, "Bad Request"
		challenge = a.challenge("invalid_request", "send one access token, in the Authorization header only", a.required)
	default:
		w.Header().Set("Retry-After", strconv.Itoa(a.retryAfter))
	}

	level := slog.LevelInfo
	switch status {
	case http.StatusServiceUnavailable:
		level = slog.LevelWarn
	case http.StatusUnauthorized:
		if errors.Is(err, ErrNoToken) {
			level = slog.LevelDebug // the normal first step of the OAuth flow
		}
	}
	a.log.LogAttrs(r.Context(), level, "request not authorized",
		slog.Int("status", status),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Any("err", err))

	if challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	body, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"id":      nil,
		"error":   map[string]any{"code": code, "message": msg},
	})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}

// challenge builds a Bearer challenge: error (if any), error_description
// (if any), resource_metadata, then scope (if any scopes).
func (a *Authenticator) challenge(errCode, description string, scopes []string) string {
	var params []string
	if errCode != "" {
		params = append(params, "error="+quote(errCode))
	}
	if description != "" {
		params = append(params, "error_description="+quote(description))
	}
	if a.metadataURL != "" {
		params = append(params, "resource_metadata="+quote(a.metadataURL))
	}
	if len(scopes) > 0 {
		params = append(params, "scope="+quote(strings.Join(scopes, " ")))
	}
	if len(params) == 0 {
		return "Bearer"
	}
	return "Bearer " + strings.Join(params, ", ")
}

// quote makes an RFC 9110 quoted-string. Validated scopes and URLs contain
// neither '"' nor '\'; escaping them anyway keeps the header well-formed.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// metadataURL returns the RFC 9728 §3.1 metadata URL of resource:
// /.well-known/oauth-protected-resource inserted between host and path, so
// https://gw.example.com/mcp has
// https://gw.example.com/.well-known/oauth-protected-resource/mcp.
func metadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return ""
	}
	u.Path = "/.well-known/oauth-protected-resource" + strings.TrimSuffix(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u.String()
}
