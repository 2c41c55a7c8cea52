package gateway

// Held calls: a 2026-07-28 client in front of an upstream that asks for input
// with requests.
//
// An upstream reached at a 2025-era revision asks for input (sampling,
// elicitation, roots) by sending a request in the middle of a call and
// waiting for the answer. A 2026-07-28 client can only be asked with an
// input_required result, after which its HTTP request is over. So when such
// a client calls through a mount with sharing: per-session, the gateway
//
//   - gives the call its own upstream connection, declaring exactly the
//     capabilities the client declared in the request's _meta, so that every
//     request on it belongs to this call for certain;
//   - holds the call on this replica, and turns each request the upstream
//     sends into an input_required result whose sealed requestState names
//     the held call;
//   - hands the retry's answer to the waiting upstream request, and goes on
//     waiting for the next request or the call's result.
//
// A retry that lands on another replica than the one holding its call (a
// plain load balancer in front of several) is forwarded there, as the
// requests of a session go to its owner (replicas.go): the sealed state
// names the holding replica and how to reach it.
//
// A held call ends, and is cancelled upstream, when its result is out, when
// its client does not continue it within request_state.ttl, when the
// client's stream closes while it waits (2026-07-28: that is cancellation),
// or when its requestState comes back altered or from another caller. A
// connection per call is the price of per-session semantics for a client
// that has no session: for a stdio upstream, one child process per call.

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/auth"
	"github.com/mcpgw/gateway/upstream"
)

// heldPrefix marks a requestState that continues a held call: "h" + the
// call's id + "." + the sealed state. The id is in clear so that a state that
// fails to open can still cancel the call it names (if the caller owns it).
const heldPrefix = "h"

// heldCall is an upstream call waiting for a 2026-07-28 client's input.
type heldCall struct {
	id        string
	principal string
	asks      chan *heldAsk   // requests from the upstream, in order
	done      chan heldResult // the call's outcome; buffered 1
	ctx       context.Context // the call's lifetime
	cancel    context.CancelFunc
	seq       atomic.Int64

	mu      sync.Mutex
	current *heldAsk    // given to the client, awaiting its answer
	timer   *time.Timer // cancels the call if the client does not continue it
}

// heldAsk is one request from the upstream.
type heldAsk struct {
	key   string
	req   mcp.InputRequest
	reply chan mcp.InputResponse // buffered 1
}

type heldResult struct {
	res mcp.Result
	err error
}

// heldCalls are this replica's held calls, by id.
type heldCalls struct {
	mu       sync.Mutex
	calls    map[string]*heldCall
	closed   bool
	running  sync.WaitGroup // the calls' goroutines
	onRemove func()         // test hook: called after a held call ends
}

// cancelGrace is how long a cancelled held call's connection stays open
// before it is closed. The SDK sends notifications/cancelled, and the error
// answers to the upstream's pending requests, in the background; closing
// the session first (an HTTP DELETE) can overtake them, and a server whose
// handler still waits for its request's answer may then never finish it.
const cancelGrace = 500 * time.Millisecond

// closeAll cancels every held call and waits for them to end.
func (hc *heldCalls) closeAll() {
	hc.mu.Lock()
	hc.closed = true
	calls := make([]*heldCall, 0, len(hc.calls))
	for _, h := range hc.calls {
		calls = append(calls, h)
	}
	hc.mu.Unlock()
	for _, h := range calls {
		h.cancel()
	}
	hc.running.Wait()
}

// add registers h, whose goroutine is about to start; false once closed.
func (hc *heldCalls) add(h *heldCall) bool {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.closed {
		return false
	}
	if hc.calls == nil {
		hc.calls = map[string]*heldCall{}
	}
	hc.calls[h.id] = h
	hc.running.Add(1)
	return true
}

func (hc *heldCalls) get(id string) *heldCall {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	return hc.calls[id]
}

func (hc *heldCalls) remove(h *heldCall) {
	hc.mu.Lock()
	if hc.calls[h.id] == h {
		delete(hc.calls, h.id)
	}
	hook := hc.onRemove
	hc.mu.Unlock()
	if hook != nil {
		hook()
	}
}

// cancelOwned cancels the held call id if principal owns it: its state came
// back unusable, so nobody can continue it.
func (hc *heldCalls) cancelOwned(id, principal string) {
	if h := hc.get(id); h != nil && h.principal == principal {
		h.cancel()
	}
}

// len reports how many calls are held, for tests.
func (hc *heldCalls) len() int {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	return len(hc.calls)
}

// forwardHeld forwards the retry of a call that another replica holds to
// that replica, and reports whether it did. A state that does not open,
// that belongs to another caller, or that names this replica or one that
// cannot be reached is left to resume, which refuses it with the reason.
// The holding replica checks the request and its token again.
func (g *Gateway) forwardHeld(w http.ResponseWriter, r *http.Request, msg wireMessage) bool {
	if r.Header.Get(headerForwarded) != "" || !bytes.Contains(msg.params, []byte(`"requestState"`)) {
		return false
	}
	var p struct {
		RequestState string `json:"requestState"`
	}
	if strictUnmarshal(msg.params, &p) != nil {
		return false
	}
	_, sealed, ok := splitHeld(p.RequestState)
	if !ok {
		return false
	}
	// Only a live state of this caller's goes anywhere with its token; a
	// state naming this replica's address under another id is from a
	// process that is gone.
	st, err := g.states.unseal(sealed)
	if err != nil || st.Held == "" || st.Replica == g.states.replica || st.Owner == "" || st.Owner == g.advertise ||
		st.Principal != auth.PrincipalFromContext(r.Context()).Key() || g.states.now().UnixMilli() > st.Expires {
		return false
	}
	return g.sessions.forward(w, r, st.Owner) == forwarded
}

// splitHeld splits a held call's requestState into the call id and the
// sealed part; ok is false for any other state.
func splitHeld(state string) (id, sealed string, ok bool) {
	rest, ok := strings.CutPrefix(state, heldPrefix)
	if !ok {
		return "", "", false
	}
	// A sealed state alone is base64url, which has no ".", so a state
	// that merely starts with "h" is not taken for a held call's.
	if id, sealed, ok = strings.Cut(rest, "."); !ok {
		return "", "", false
	}
	return id, sealed, true
}

// holds reports whether a request from ss to m must be a held call: the
// client speaks 2026-07-28, m gives each client its own connection, and
// the upstream is 2025-era (it declined 2026-07-28 on the mount's shared
// connection), so it asks with requests. An upstream that speaks
// 2026-07-28 is asked on the shared connection instead, where its
// input_required results pass through with their own keys.
func (g *Gateway) holds(ss *mcp.ServerSession, m *mount) bool {
	if !clientIsModern(ss) || m.cfg.Sharing != SharingPerSession {
		return false
	}
	cs, err := m.up.Session()
	if err != nil {
		return m.cfg.upstreamVersion(false) < version20260728
	}
	r := cs.InitializeResult()
	return r != nil && r.ProtocolVersion < version20260728
}

// ask is the upstream side: it gives req to the client waiting on the held
// call and returns the client's answer. It gives up when the upstream
// cancels its request (ctx) or the held call ends: the SDK does not end a
// request's context when its connection closes.
func (h *heldCall) ask(ctx context.Context, req mcp.InputRequest) (mcp.InputResponse, error) {
	a := &heldAsk{key: fmt.Sprintf("gw-%d", h.seq.Add(1)), req: req, reply: make(chan mcp.InputResponse, 1)}
	select {
	case h.asks <- a:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-h.ctx.Done():
		return nil, h.ctx.Err()
	}
	select {
	case r := <-a.reply:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-h.ctx.Done():
		return nil, h.ctx.Err()
	}
}

// heldCall runs or continues a held call for req and waits until the
// upstream asks for input (ask) or the call ends (res, err).
func held[R mcp.Result](ctx context.Context, g *Gateway, req mcp.Request, m *mount, digest func() []byte, cont continuation, call func(context.Context, *mcp.ClientSession, continuation) (R, error)) (res R, ask *inputRequired, err error) {
	ss, _ := req.GetSession().(*mcp.ServerSession)
	principal := g.principalOf(req).Key()
	var h *heldCall
	if cont.held != "" {
		if h = g.held.get(cont.held); h == nil || h.principal != principal {
			return res, nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams,
				Message: "the call this requestState continues has ended (it finished, timed out or was cancelled); call again without inputResponses and requestState"}
		}
		h.mu.Lock()
		a := h.current
		if h.timer != nil {
			h.timer.Stop()
		}
		h.mu.Unlock()
		if a == nil {
			return res, nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "this requestState was used already; continue with the newest one"}
		}
		resp, ok := cont.responses[a.key]
		if !ok || !answers(a.req, resp) {
			// Ask again, as a server does for a missing answer.
			h.armTimer(g)
			return res, &inputRequired{requests: mcp.InputRequestMap{a.key: a.req}, state: g.sealHeld(principal, digest(), h)}, nil
		}
		h.mu.Lock()
		h.current = nil
		h.mu.Unlock()
		a.reply <- resp
	} else {
		h = g.startHeld(ss, m, principal, func(ctx context.Context, cs *mcp.ClientSession) (mcp.Result, error) {
			return call(ctx, cs, continuation{})
		})
	}

	select {
	case a := <-h.asks:
		h.mu.Lock()
		h.current = a
		h.mu.Unlock()
		h.armTimer(g)
		return res, &inputRequired{requests: mcp.InputRequestMap{a.key: a.req}, state: g.sealHeld(principal, digest(), h)}, nil
	case out := <-h.done:
		if out.err != nil {
			return res, nil, out.err
		}
		return out.res.(R), nil, nil
	case <-ctx.Done():
		// A 2026-07-28 client that closes its stream cancels the call.
		h.cancel()
		return res, nil, ctx.Err()
	}
}

// sealHeld seals a state that continues h.
func (g *Gateway) sealHeld(principal string, digest []byte, h *heldCall) string {
	return heldPrefix + h.id + "." + g.states.seal(principal, digest, "", h.id)
}

// armTimer (re)starts the wait for the client's next retry.
func (h *heldCall) armTimer(g *Gateway) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.timer != nil {
		h.timer.Stop()
	}
	h.timer = time.AfterFunc(g.states.ttl, h.cancel)
}

// startHeld opens a connection of its own to m for one call from ss and
// starts the call on it, in the background, bounded by m's timeout.
func (g *Gateway) startHeld(ss *mcp.ServerSession, m *mount, principal string, call func(context.Context, *mcp.ClientSession) (mcp.Result, error)) *heldCall {
	ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
	h := &heldCall{id: rand.Text(), principal: principal, asks: make(chan *heldAsk), done: make(chan heldResult, 1), ctx: ctx, cancel: cancel}
	if !g.held.add(h) {
		cancel()
		h.done <- heldResult{err: errClosed}
		return h
	}
	u := g.newCallUpstream(ss, m, h)
	u.Start()
	go func() {
		defer g.held.running.Done()
		cs, err := u.WaitSession(ctx)
		var res mcp.Result
		if err == nil {
			res, err = call(ctx, cs)
		}
		h.done <- heldResult{res: res, err: err}
		cancelled := ctx.Err() != nil
		cancel()
		h.mu.Lock()
		if h.timer != nil {
			h.timer.Stop()
		}
		h.mu.Unlock()
		g.held.remove(h)
		if cancelled {
			time.Sleep(cancelGrace)
		}
		u.Close()
	}()
	return h
}

// newCallUpstream builds (without starting) a connection to m for one held
// call, declaring the capabilities that ss's client declared; the upstream's
// requests on it go to h.
func (g *Gateway) newCallUpstream(ss *mcp.ServerSession, m *mount, h *heldCall) *upstream.Upstream {
	uopts := g.upstreamOptions(m)
	// Reconnecting would start the call over; one attempt is all it gets.
	uopts.MinBackoff, uopts.MaxBackoff = m.timeout, m.timeout
	var caps *mcp.ClientCapabilities
	if ip := ss.InitializeParams(); ip != nil {
		caps = ip.Capabilities
	}
	if caps == nil {
		caps = &mcp.ClientCapabilities{}
	}
	if caps.Sampling != nil {
		uopts.CreateMessageHandler = func(ctx context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			resp, err := h.ask(ctx, req.Params)
			if err != nil {
				return nil, err
			}
			switch r := resp.(type) {
			case *mcp.CreateMessageResult:
				return r, nil
			case *mcp.CreateMessageWithToolsResult:
				if len(r.Content) != 1 {
					return nil, fmt.Errorf("the client answered sampling with %d content blocks; this upstream takes one", len(r.Content))
				}
				return &mcp.CreateMessageResult{Meta: r.Meta, Content: r.Content[0], Model: r.Model, Role: r.Role, StopReason: r.StopReason}, nil
			}
			return nil, fmt.Errorf("the client answered sampling with %T", resp)
		}
	}
	if caps.Elicitation != nil {
		uopts.Elicitation = caps.Elicitation
		uopts.ElicitationHandler = func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			resp, err := h.ask(ctx, req.Params)
			if err != nil {
				return nil, err
			}
			return resp.(*mcp.ElicitResult), nil
		}
	}
	if caps.RootsV2 != nil || caps.Roots != (mcp.RootCapabilities{}) {
		uopts.ListRootsHandler = func(ctx context.Context, req *mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
			params := req.Params
			if params == nil {
				params = &mcp.ListRootsParams{}
			}
			resp, err := h.ask(ctx, params)
			if err != nil {
				return nil, err
			}
			return resp.(*mcp.ListRootsResult), nil
		}
	}
	return upstream.New(m.upstreamConfig(g.cfg.Dir, true), &uopts)
}

// answers reports whether resp is an answer of the right kind for req.
func answers(req mcp.InputRequest, resp mcp.InputResponse) bool {
	switch req.(type) {
	case *mcp.ElicitParams:
		_, ok := resp.(*mcp.ElicitResult)
		return ok
	case *mcp.CreateMessageParams, *mcp.CreateMessageWithToolsParams:
		switch resp.(type) {
		case *mcp.CreateMessageResult, *mcp.CreateMessageWithToolsResult:
			return true
		}
	case *mcp.ListRootsParams:
		_, ok := resp.(*mcp.ListRootsResult)
		return ok
	}
	return false
}
