package auth

import (
	"errors"
	"strings"
)

// Errors of verification and authorization. Callers branch with errors.Is
// and errors.As; Authenticator.WriteError turns them into statuses. Their
// text (and that of errors wrapping them) is for logs only: it never
// contains a token or a claim value, and never reaches a client.
var (
	// ErrNoToken: the request carries no bearer token (401, challenge
	// without error=, as RFC 6750 §3.1 asks when no credentials were sent).
	ErrNoToken = errors.New("no bearer token")
	// ErrInvalidRequest: the request sends a token in a way this server
	// refuses, such as in the query string (400, error="invalid_request").
	ErrInvalidRequest = errors.New("invalid request")
	// ErrInvalidToken: a token was sent but is not acceptable: malformed,
	// badly signed, from an untrusted issuer, for another audience, expired
	// or not yet valid, inactive (401, error="invalid_token").
	ErrInvalidToken = errors.New("invalid token")
	// ErrForbidden: the principal is authenticated but a policy's claim
	// requirement fails, which no further scope could fix (403 without a
	// challenge).
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable: the token could not be checked because an identity
	// provider or introspection endpoint is unreachable or misbehaving
	// (503). The client should retry, not throw its token away.
	ErrUnavailable = errors.New("token verification unavailable")
)

// InsufficientScopeError means the token lacks scopes (403,
// error="insufficient_scope"). It matches ErrForbidden with errors.Is.
type InsufficientScopeError struct {
	// Scopes is every scope the request needs, not only the missing ones:
	// the challenge's scope parameter tells the client what to ask for.
	Scopes []string
}

func (e *InsufficientScopeError) Error() string {
	return "insufficient scope: needs " + strings.Join(e.Scopes, " ")
}

// Is makes an InsufficientScopeError match ErrForbidden.
func (e *InsufficientScopeError) Is(target error) bool {
	return target == ErrForbidden
}
