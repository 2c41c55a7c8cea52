package gateway

// Multi-round-trip requests (MRTR, 2026-07-28): instead of sending a request
// to its client in the middle of tools/call, prompts/get or resources/read,
// a 2026-07-28 server answers with an input_required result that lists what
// it needs (elicitation, sampling, roots) and an opaque requestState; the
// client retries the same request with inputResponses and that state.
//
// The gateway bridges every pairing of revisions:
//
//   - a 2026-07-28 client gets the upstream's input requests as they are and
//     a requestState sealed by the gateway. The seal (AES-256-GCM) binds the
//     caller's principal, an expiry, a digest of the request and the replica
//     that issued it, and carries the upstream's own state, which the client
//     never sees. A retry whose state was altered, has expired, belongs to
//     another principal or to another request gets -32602 and goes nowhere.
//   - a 2025-era client (Streamable HTTP or SSE) cannot take input_required:
//     the gateway asks it with real server-to-client requests, within the
//     capabilities it declared, and retries upstream with the answers, for
//     as many rounds as the upstream needs (up to maxInputRounds).
//
// The client's capabilities travel upstream in each request's _meta, so a
// 2026-07-28 upstream asks only for what the client at the other end can
// give, whichever connection carries the call.

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/upstream"
)

// maxInputRounds bounds the input rounds the gateway runs for a 2025-era
// client, so that an upstream that keeps asking cannot hold a call forever.
const maxInputRounds = 10

// stateVersion is the layout of a sealed state; a change of layout changes
// it, so that old states fail to open instead of being misread.
const stateVersion = 1

// sealedState is what a requestState handed to a client carries.
type sealedState struct {
	V         int    `json:"v"`
	Principal string `json:"p"`           // auth.Principal.Key() of the caller; "" without auth
	Expires   int64  `json:"e"`           // Unix milliseconds
	Digest    []byte `json:"d"`           // requestDigest of the request it continues
	Replica   string `json:"r"`           // the replica that issued it
	Upstream  string `json:"u,omitempty"` // the upstream's own requestState
	Held      string `json:"h,omitempty"` // the held call it continues (held.go)
	Owner     string `json:"o,omitempty"` // with Held: how other replicas reach Replica
}

// stateSealer seals and opens requestStates. All replicas of one deployment
// share its key, so that a retry may land on any of them.
type stateSealer struct {
	aead    cipher.AEAD
	ttl     time.Duration
	replica string
	owner   string // this replica's advertised URL, for held calls' states
	now     func() time.Time
}

// stateAAD ties sealed bytes to their use: a key shared with something else
// never opens a requestState.
var stateAAD = []byte("mcpgw requestState")

// newStateSealer returns a sealer with a 32-byte key; a nil key means a
// random one, which only this process knows.
func newStateSealer(key []byte, ttl time.Duration, replica string) (*stateSealer, error) {
	if key == nil {
		key = make([]byte, 32)
		rand.Read(key)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("request state key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &stateSealer{aead: aead, ttl: ttl, replica: replica, now: time.Now}, nil
}

// seal returns the requestState for a client: base64url(nonce || sealed JSON).
func (s *stateSealer) seal(principal string, digest []byte, upstreamState, held string) string {
	st := sealedState{V: stateVersion, Principal: principal, Expires: s.now().Add(s.ttl).UnixMilli(), Digest: digest, Replica: s.replica, Upstream: upstreamState, Held: held}
	if held != "" {
		st.Owner = s.owner
	}
	plain, _ := json.Marshal(st)
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, stateAAD))
}

// Reasons a requestState is refused. Each is a -32602 for the client, which
// should call again without inputResponses and requestState.
var (
	errStateInvalid = errors.New("requestState was not issued by this gateway or was altered")
	errStateExpired = errors.New("requestState has expired")
	errStateForeign = errors.New("requestState belongs to another caller or another request")
)

// open checks a requestState from a retry against the caller and the
// request, and returns what it carries.
func (s *stateSealer) open(token, principal string, digest []byte) (*sealedState, error) {
	st, err := s.unseal(token)
	if err != nil {
		return nil, err
	}
	if st.Principal != principal || string(st.Digest) != string(digest) {
		return nil, errStateForeign
	}
	if s.now().UnixMilli() > st.Expires {
		return nil, errStateExpired
	}
	return st, nil
}

// unseal returns what a requestState carries if this gateway sealed it,
// without checking whose it is or whether it is still good.
func (s *stateSealer) unseal(token string) (*sealedState, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return nil, errStateInvalid
	}
	nonce, sealed := raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():]
	plain, err := s.aead.Open(nil, nonce, sealed, stateAAD)
	if err != nil {
		return nil, errStateInvalid
	}
	var st sealedState
	if err := json.Unmarshal(plain, &st); err != nil || st.V != stateVersion {
		return nil, errStateInvalid
	}
	return &st, nil
}

// requestDigest identifies a request across its retries: the method, the
// public name or URI, and the arguments in canonical form (encoding/json
// sorts map keys). Retries carry the same request by definition.
func requestDigest(method, name string, args any) []byte {
	if raw, ok := args.(json.RawMessage); ok {
		var v any
		if json.Unmarshal(raw, &v) == nil {
			args = v
		}
	}
	canon, _ := json.Marshal(args)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", method, name)
	h.Write(canon)
	return h.Sum(nil)
}

// lazyDigest returns requestDigest's value, computed on first use: most
// calls never need it (no input round trip), and it re-encodes the
// arguments.
func lazyDigest(method, name string, args any) func() []byte {
	return sync.OnceValue(func() []byte { return requestDigest(method, name, args) })
}

// continuation is where a retried request picks up: the upstream's state or
// the held call, and the client's answers.
type continuation struct {
	upstreamState string
	held          string
	responses     mcp.InputResponseMap
}

// resume opens the requestState of a retry. A request that is no retry
// returns the zero continuation.
func (g *Gateway) resume(req mcp.Request, state string, responses mcp.InputResponseMap, digest func() []byte) (continuation, error) {
	if state == "" {
		// Answers without the state they answer are not understood, and
		// unrecognized information is ignored: the call starts over, and
		// the upstream asks again for what it needs.
		return continuation{}, nil
	}
	principal := g.principalOf(req).Key()
	heldID, sealed, isHeld := splitHeld(state)
	if !isHeld {
		sealed = state
	}
	st, err := g.states.open(sealed, principal, digest())
	if err == nil && st.Held != heldID {
		err = errStateInvalid
	}
	if err == nil && st.Held != "" && st.Replica != g.states.replica {
		// Another replica holds the call, and forwardHeld could not reach it.
		err = fmt.Errorf("the call this requestState continues was held by replica %s, which cannot be reached", st.Replica)
	}
	if err != nil {
		if isHeld {
			g.held.cancelOwned(heldID, principal)
		}
		g.log.Debug("refused a requestState", "err", err)
		return continuation{}, stateError(err)
	}
	return continuation{upstreamState: st.Upstream, held: st.Held, responses: responses}, nil
}

func stateError(err error) error {
	return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: err.Error() + "; call again without inputResponses and requestState"}
}

// clientIsModern reports whether the client speaks 2026-07-28 or later and
// so takes input_required results itself.
func clientIsModern(ss *mcp.ServerSession) bool {
	if ss == nil {
		return false
	}
	p := ss.InitializeParams()
	return p != nil && p.ProtocolVersion >= version20260728
}

// clientCapabilitiesMeta is the client's capabilities in the form a
// 2026-07-28 request's _meta carries them (roots as an object).
func clientCapabilitiesMeta(ss *mcp.ServerSession) map[string]any {
	if ss == nil || ss.InitializeParams() == nil || ss.InitializeParams().Capabilities == nil {
		return map[string]any{}
	}
	return capabilitiesMeta(ss.InitializeParams().Capabilities)
}

// capabilitiesMeta is caps in the form a 2026-07-28 request's _meta
// carries them.
func capabilitiesMeta(caps *mcp.ClientCapabilities) map[string]any {
	b, err := json.Marshal(caps)
	out := map[string]any{}
	if err != nil || json.Unmarshal(b, &out) != nil {
		return map[string]any{}
	}
	delete(out, "roots")
	if caps.RootsV2 != nil {
		out["roots"] = caps.RootsV2
	}
	return out
}

// callMeta is the _meta to send upstream for a request from ss over cs: the
// client's own keys (upstreamMeta) and, to a 2026-07-28 upstream, the
// client's capabilities, so that it asks only for input the client can give.
func callMeta(m mcp.Meta, ss *mcp.ServerSession, cs *mcp.ClientSession) mcp.Meta {
	caps, hasCaps := m[mcp.MetaKeyClientCapabilities]
	m = upstreamMeta(m)
	if r := cs.InitializeResult(); r != nil && r.ProtocolVersion >= version20260728 {
		if m == nil {
			m = mcp.Meta{}
		}
		if c, ok := caps.(*mcp.ClientCapabilities); ss == nil && hasCaps && ok {
			// A 2026-07-28 request served without a session (the fast
			// path) carries the client's capabilities itself.
			m[mcp.MetaKeyClientCapabilities] = capabilitiesMeta(c)
		} else {
			m[mcp.MetaKeyClientCapabilities] = clientCapabilitiesMeta(ss)
		}
	}
	return m
}

// fulfill asks a 2025-era client for every input an upstream needs, with
// real requests on its session, all at once, and returns the answers.
// A request the client did not declare the capability for fails the whole
// call with an error that says so, rather than hanging or guessing.
func fulfill(ctx context.Context, ss *mcp.ServerSession, upstreamName string, reqs mcp.InputRequestMap) (mcp.InputResponseMap, error) {
	if len(reqs) == 0 {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("upstream %q is busy; try again later", upstreamName)}
	}
	var caps *mcp.ClientCapabilities
	if p := ss.InitializeParams(); p != nil {
		caps = p.Capabilities
	}
	if caps == nil {
		caps = &mcp.ClientCapabilities{}
	}
	for _, ir := range reqs {
		var missing string
		switch ir.(type) {
		case *mcp.ElicitParams:
			if caps.Elicitation == nil {
				missing = "elicitation"
			}
		case *mcp.CreateMessageParams, *mcp.CreateMessageWithToolsParams:
			if caps.Sampling == nil {
				missing = "sampling"
			}
		case *mcp.ListRootsParams:
			if caps.RootsV2 == nil && caps.Roots == (mcp.RootCapabilities{}) {
				missing = "roots"
			}
		default:
			missing = fmt.Sprintf("%T", ir)
		}
		if missing != "" {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest,
				Message: fmt.Sprintf("upstream %q needs %s from the client, which this client did not declare", upstreamName, missing)}
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		out      = make(mcp.InputResponseMap, len(reqs))
		firstErr error
	)
	for id, ir := range reqs {
		wg.Go(func() {
			var (
				res mcp.InputResponse
				err error
			)
			switch p := ir.(type) {
			case *mcp.ElicitParams:
				res, err = ss.Elicit(ctx, p)
			case *mcp.CreateMessageParams:
				res, err = ss.CreateMessage(ctx, p)
			case *mcp.CreateMessageWithToolsParams:
				res, err = ss.CreateMessageWithTools(ctx, p)
			case *mcp.ListRootsParams:
				res, err = ss.ListRoots(ctx, p)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			out[id] = res
		})
	}
	wg.Wait()
	if firstErr != nil {
		var werr *jsonrpc.Error
		if errors.As(firstErr, &werr) {
			return nil, werr
		}
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("asking the client for input to upstream %q failed: %v", upstreamName, firstErr)}
	}
	return out, nil
}

// inputRequired is an upstream's input_required answer on its way to a
// 2026-07-28 client, with the gateway's sealed state.
type inputRequired struct {
	requests mcp.InputRequestMap
	state    string
}

// readResult is ir as a resources/read result. resources/read of a URI that
// no list names is answered by the gateway's middleware, outside the SDK
// code that marks results input_required; decoding the wire form marks it.
func (ir *inputRequired) readResult() (*mcp.ReadResourceResult, error) {
	b, err := json.Marshal(map[string]any{"resultType": "input_required", "inputRequests": ir.requests, "requestState": ir.state})
	if err != nil {
		return nil, err
	}
	res := new(mcp.ReadResourceResult)
	if err := json.Unmarshal(b, res); err != nil {
		return nil, err
	}
	return res, nil
}

// inputNeeded returns the input requests and state of an input_required
// result, and whether it is one.
func inputNeeded(res mcp.Result) (mcp.InputRequestMap, string, bool) {
	switch r := res.(type) {
	case *mcp.CallToolResult:
		return r.InputRequests, r.RequestState, r.NeedsInput()
	case *mcp.GetPromptResult:
		return r.InputRequests, r.RequestState, r.NeedsInput()
	case *mcp.ReadResourceResult:
		return r.InputRequests, r.RequestState, r.NeedsInput()
	}
	return nil, "", false
}

// rounds runs a routed request upstream (call) until it completes. When the
// upstream answers input_required, a 2026-07-28 client gets the requests back
// (ask) with a sealed state; a 2025-era client is asked for the input on
// its session and call runs again with the answers.
func rounds[R mcp.Result](ctx context.Context, g *Gateway, req mcp.Request, m *mount, digest func() []byte, cont continuation, call func(continuation) (R, error)) (res R, ask *inputRequired, err error) {
	ss, _ := req.GetSession().(*mcp.ServerSession)
	var hb *handback
	if ss != nil && cont.upstreamState == "" && cont.responses == nil && cont.held == "" && !clientIsModern(ss) {
		// A fast call that asked the upstream already and was given back
		// for the client's input: go on from its round, not a new one.
		hb = g.takeHandback(ss, digest)
	}
	for round := 1; ; round++ {
		var (
			irs     mcp.InputRequestMap
			upState string
		)
		if round == 1 && hb != nil {
			irs, upState = hb.requests, hb.state
		} else {
			res, err = call(cont)
			if err != nil {
				return res, nil, err
			}
			var needs bool
			if irs, upState, needs = inputNeeded(res); !needs {
				return res, nil, nil
			}
		}
		if ss == nil || clientIsModern(ss) {
			return res, &inputRequired{requests: irs, state: g.states.seal(g.principalOf(req).Key(), digest(), upState, "")}, nil
		}
		if round >= maxInputRounds {
			return res, nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: fmt.Sprintf("upstream %q asked for input %d times without finishing", m.name, round)}
		}
		if yieldForInput(ctx, &handback{digest: digest(), requests: irs, state: upState, at: time.Now()}) {
			// A fast call: the SDK's path asks the client, on the
			// request's own stream, from this round.
			return res, nil, errNeedsStream
		}
		responses, err := fulfill(ctx, ss, m.name, irs)
		if err != nil {
			return res, nil, err
		}
		cont = continuation{upstreamState: upState, responses: responses}
	}
}

// forward runs a routed request against m: as a held call when it must be
// one (held.go), else on the connection upstreamFor picks, in rounds. up is
// the Upstream that carried it, when it is a long-lived one.
func forward[R mcp.Result](ctx context.Context, g *Gateway, req mcp.Request, m *mount, digest func() []byte, cont continuation, call func(context.Context, *mcp.ClientSession, continuation) (R, error)) (res R, ask *inputRequired, up *upstream.Upstream, err error) {
	ss, _ := req.GetSession().(*mcp.ServerSession)
	if cont.held != "" || g.holds(ss, m) {
		res, ask, err = held(ctx, g, req, m, digest, cont, call)
		return res, ask, nil, err
	}
	session, up, done, err := g.upstreamFor(ctx, ss, m)
	if err != nil {
		return res, nil, nil, err
	}
	defer done()
	res, ask, err = rounds(ctx, g, req, m, digest, cont, func(c continuation) (R, error) { return call(ctx, session, c) })
	return res, ask, up, err
}
