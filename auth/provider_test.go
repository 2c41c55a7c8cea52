package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The audience (resource) that the tests configure, and its metadata URL.
const (
	testAudience    = "https://gw.example.com/mcp"
	testMetadataURL = "https://gw.example.com/.well-known/oauth-protected-resource/mcp"
)

// idp is an OpenID provider on httptest: it serves a real discovery
// document (or, with oauthOnly, RFC 8414 metadata instead) and a JWKS, and
// signs real tokens.
type idp struct {
	srv *httptest.Server

	mu              sync.Mutex // guards the fields below
	published       []*signingKey
	discoveryStatus int // if non-zero, discovery answers with it
	oauthOnly       bool
	discoveryHits   int
	jwksHits        int
}

func newIdP(t *testing.T) *idp {
	t.Helper()
	p := &idp{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.discoveryHits++
		status, oauthOnly := p.discoveryStatus, p.oauthOnly
		p.mu.Unlock()
		switch {
		case oauthOnly:
			http.NotFound(w, r)
		case status != 0:
			http.Error(w, "down", status)
		default:
			p.writeMetadata(w)
		}
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		oauthOnly := p.oauthOnly
		p.mu.Unlock()
		if !oauthOnly {
			http.NotFound(w, r)
			return
		}
		p.writeMetadata(w)
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.jwksHits++
		var set jose.JSONWebKeySet
		for _, k := range p.published {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
		}
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(set)
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) writeMetadata(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"issuer":   p.URL(),
		"jwks_uri": p.URL() + "/jwks",
		// Only RS256 for ID tokens: access tokens in other algorithms
		// must verify all the same.
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func (p *idp) URL() string { return p.srv.URL }

// publish replaces the JWKS with keys.
func (p *idp) publish(keys ...*signingKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = keys
}

func (p *idp) setDiscoveryStatus(status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.discoveryStatus = status
}

func (p *idp) hits() (discovery, jwks int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.discoveryHits, p.jwksHits
}

// signingKey is a private key with its kid and algorithm.
type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func newRSAKey(t *testing.T, kid string) *signingKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &signingKey{kid: kid, alg: jose.RS256, priv: priv}
}

func newECKey(t *testing.T, kid string) *signingKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &signingKey{kid: kid, alg: jose.ES256, priv: priv}
}

// sign returns a compact JWS of claims.
func (k *signingKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	return signWith(t, jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, claims)
}

func signWith(t *testing.T, key jose.SigningKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unsigned returns a JWT with alg "none".
func unsigned(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","kid":"k1"}`)) + "." + enc(payload) + "."
}

// claims returns valid access token claims from iss at now, with changes
// applied: a nil value deletes the claim.
func claims(iss string, now time.Time, changes map[string]any) map[string]any {
	c := map[string]any{
		"iss":   iss,
		"sub":   "alice",
		"aud":   []string{testAudience},
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
		"scope": "mcp:tools",
	}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// clock is a settable clock for Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
