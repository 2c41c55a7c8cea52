package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Algorithms of keys and tokens.
const (
	// RS256 and ES256 are the algorithms of signing keys (NewKey,
	// RotateKey) and of the tokens they sign.
	RS256 = "RS256"
	ES256 = "ES256"
	// None and HS256 are Claims.Alg values for forged tokens, which a
	// verifier must reject; see Claims.Alg.
	None  = "none"
	HS256 = "HS256"
)

// Key is a private signing key with its key ID and algorithm. Create one
// with NewKey, or get a provider's with Provider.SigningKey.
type Key struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

// kids numbers generated key IDs, so that they are unique in the process.
var kids atomic.Int64

// NewKey generates a key for alg (RS256, a 2048-bit RSA key, or ES256, a
// P-256 key; "" means RS256) with key ID kid, or a generated unique kid if
// kid is "". A key belongs to no provider until it is published (see
// Provider.Publish); it can sign tokens either way (see Claims.Key).
func NewKey(t testing.TB, alg, kid string) *Key {
	t.Helper()
	k, err := newKey(alg, kid)
	if err != nil {
		t.Fatalf("authtest.NewKey: %v", err)
	}
	return k
}

func newKey(alg, kid string) (*Key, error) {
	if alg == "" {
		alg = RS256
	}
	if kid == "" {
		kid = fmt.Sprintf("%s-%d", strings.ToLower(alg), kids.Add(1))
	}
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("unsupported algorithm %q, want %s or %s", alg, RS256, ES256)
	}
	if err != nil {
		return nil, err
	}
	return &Key{kid: kid, alg: jose.SignatureAlgorithm(alg), priv: priv}, nil
}

// KID returns the key ID, which signed tokens carry in their kid header.
func (k *Key) KID() string { return k.kid }

// Alg returns the key's algorithm, RS256 or ES256.
func (k *Key) Alg() string { return string(k.alg) }

// jwk returns the public key as published in a JWKS.
func (k *Key) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// Claims describe a token for Provider.Token. Every field is optional: zero
// values are left out of the token, except the times and the issuer, which
// have defaults.
type Claims struct {
	// Issuer (iss) defaults to the provider's Issuer.
	Issuer string
	// Subject (sub) is left out if empty.
	Subject string
	// Audience (aud) is a JSON list, even of one; left out if empty. For
	// aud as a single string, use Extra.
	Audience []string
	// Scope (scope) is a space-separated list; left out if empty.
	Scope string
	// IssuedAt (iat) defaults to the provider's clock (ProviderOptions.Now).
	IssuedAt time.Time
	// NotBefore (nbf) is left out if zero.
	NotBefore time.Time
	// Expiry (exp) defaults to IssuedAt plus the provider's token lifetime.
	Expiry time.Time
	// Extra claims are added last, replacing any claim of the same name
	// that the fields above set; a nil value removes the claim instead
	// (e.g. "exp": nil for a token without exp). Values are encoded with
	// encoding/json.
	Extra map[string]any

	// Alg chooses how the token is signed: RS256 (if empty) or ES256, with
	// the provider's current key of that algorithm. For tokens a verifier
	// must reject, None makes an unsecured JWT ({"alg":"none"}, empty
	// signature) and HS256 signs with HMAC-SHA256 keyed by the PKIX DER
	// encoding of the RS256 public key (the algorithm confusion attack),
	// both with the kid of the provider's current RS256 key.
	Alg string
	// Key, if set, signs instead of the provider's current key; it need
	// not be published, which makes tokens with a bad signature or an
	// unknown kid. Alg must then be empty, Key's algorithm, None or HS256
	// (forged with Key's kid and public key).
	Key *Key
}

// claimSet returns c as a JWT claims set, with the defaults of an issuer at
// now whose tokens live for lifetime.
func (c Claims) claimSet(issuer string, now time.Time, lifetime time.Duration) map[string]any {
	if c.Issuer != "" {
		issuer = c.Issuer
	}
	iat := c.IssuedAt
	if iat.IsZero() {
		iat = now
	}
	exp := c.Expiry
	if exp.IsZero() {
		exp = iat.Add(lifetime)
	}
	m := map[string]any{
		"iss": issuer,
		"iat": iat.Unix(),
		"exp": exp.Unix(),
	}
	if c.Subject != "" {
		m["sub"] = c.Subject
	}
	if len(c.Audience) > 0 {
		m["aud"] = c.Audience
	}
	if c.Scope != "" {
		m["scope"] = c.Scope
	}
	if !c.NotBefore.IsZero() {
		m["nbf"] = c.NotBefore.Unix()
	}
	for k, v := range c.Extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// sign returns a compact JWS (typ at+jwt, RFC 9068) of claims, signed with
// k or, if alg is None or HS256, forged with k's kid.
func (k *Key) sign(claims map[string]any, alg string) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encoding claims: %w", err)
	}
	var sk jose.SigningKey
	opts := (&jose.SignerOptions{}).WithType("at+jwt")
	switch alg {
	case "", string(k.alg):
		sk = jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}
	case None:
		header, err := json.Marshal(map[string]string{"alg": "none", "kid": k.kid, "typ": "at+jwt"})
		if err != nil {
			return "", err
		}
		enc := base64.RawURLEncoding.EncodeToString
		return enc(header) + "." + enc(payload) + ".", nil
	case HS256:
		secret, err := x509.MarshalPKIXPublicKey(k.priv.Public())
		if err != nil {
			return "", err
		}
		sk = jose.SigningKey{Algorithm: jose.HS256, Key: secret}
		// go-jose sets kid from asymmetric keys only.
		opts.WithHeader("kid", k.kid)
	default:
		return "", fmt.Errorf("Alg %q cannot be used with key %s (%s)", alg, k.kid, k.alg)
	}
	signer, err := jose.NewSigner(sk, opts)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
