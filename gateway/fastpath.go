package gateway

// The fast path: a tools/call to a shared upstream, on a 2025-era
// Streamable HTTP session or as a 2026-07-28 stateless request, is served
// here rather than through the SDK's server transport and session.
//
// Why: the SDK decodes each incoming message six times on its way to a
// handler (the batch probe, the envelope, the method, the _meta twice, the
// params; more for 2026-07-28 requests, whose headers it checks against
// the body), each decode with a fresh 32 KiB buffer. That is half or more
// of what a proxied call allocates, and the collector's work for it is a
// large part of the gateway's CPU per call. Here the front door's one
// light decode is reused and the params are decoded once with
// encoding/json.
//
// What stays the same: the call runs through the same middleware (in-flight
// count, metrics, policy) and the same tool handler as on the SDK's path,
// with the same session (none for 2026-07-28), principal and routing; the
// body is decoded as the SDK decodes it (field names matched exactly, its
// nesting limit), and the answer is the same JSON-RPC response as an
// application/json body (the call sends the client nothing else). On a
// 2025-era session a call still running at the first keep-alive interval
// gets an SSE stream with keep-alive comments and then the response
// instead; a 2026-07-28 call gets nothing until its answer, as from the
// SDK, so that a protocol-level error keeps its HTTP status. With Redis
// (where the SDK's streams are resumable) that stream is resumable too: a
// priming event, ids, the response kept in the event store; a GET with
// Last-Event-ID takes the stream over while the call runs, and the SDK's
// path replays the response once it has ended.
// notifications/cancelled for a fast call on a session cancels it; a
// 2026-07-28 client cancels by closing the connection.
//
// What is left to the SDK's path, where the request goes untouched:
// batches, requests with a progress token (progress goes out on the
// request's own stream), MRTR retries, per-session upstreams (their
// server-to-client requests go out on the request's stream), tools that
// are unknown or whose upstream is down (the SDK words those errors), ids
// the SDK would rewrite (1.0, escaped strings), POSTs with Last-Event-ID,
// 2025-era sessions whose version header does not match or whose requests
// carry 2026-07-28 _meta, 2026-07-28 requests whose headers or _meta the
// SDK would refuse (it words those errors too), and tools that bind
// arguments to headers.
//
// A call on a 2025-era session whose 2026-07-28 upstream asks for input
// (which such a client answers on the request's stream) is given back to
// the SDK's path before anything is written, with the upstream's request
// for input (handback): the SDK's path asks the client and goes on from
// there, so the upstream runs the call once. Past the first keep-alive,
// with the stream's headers sent, the input is asked on the session's
// standalone stream instead.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	segjson "github.com/segmentio/encoding/json"
)

// errNeedsStream says that a fast call needs the request's own stream
// (to ask the client for input) and was given back to the SDK's path.
var errNeedsStream = errors.New("the call needs the request's stream")

// fastCallKey marks, in a fast call's context, its *fastCall.
type fastCallKey struct{}

// fastCall is the response of one fast call: nothing is written until the
// result is ready, or the keep-alive interval passes, whichever is first.
type fastCall struct {
	interval time.Duration
	resume   *fastResume // nil: the stream's events have no ids

	mu          sync.Mutex
	w           http.ResponseWriter // where the stream goes: the POST's, or a GET's that resumed it
	timer       *time.Timer
	committed   bool          // the SSE headers are written
	yielded     bool          // given back to the SDK's path
	pending     *handback     // the first round, when given back
	done        bool          // the response is out (or given back): nothing more is written
	ended       chan struct{} // with resume: closed by stop, once nothing more is written
	endedClosed bool
}

// newFastCall starts the keep-alive timer of a fast call's response;
// resume, if not nil, makes its stream resumable.
func newFastCall(w http.ResponseWriter, interval time.Duration, resume *fastResume) *fastCall {
	fc := &fastCall{w: w, interval: interval, resume: resume}
	if resume != nil {
		fc.ended = make(chan struct{})
	}
	if interval > 0 {
		fc.mu.Lock()
		fc.timer = time.AfterFunc(interval, fc.tick)
		fc.mu.Unlock()
	}
	return fc
}

// tick sends a keep-alive comment, committing the stream first.
func (fc *fastCall) tick() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.done || fc.yielded {
		return
	}
	fc.commitLocked()
	if _, err := fc.w.Write([]byte(": keep-alive\n\n")); err != nil {
		return
	}
	http.NewResponseController(fc.w).Flush()
	fc.timer.Reset(fc.interval)
}

func (fc *fastCall) commitLocked() {
	if fc.committed {
		return
	}
	fc.committed = true
	h := fc.w.Header()
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("Content-Type", "text/event-stream")
	fc.w.WriteHeader(http.StatusOK)
	if fc.resume != nil {
		fc.resume.open(fc)
	}
}

// yield gives the call back to the SDK's path with its first round, if
// nothing is written yet.
func (fc *fastCall) yield(pending *handback) bool {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.committed || fc.done {
		return false
	}
	fc.yielded, fc.pending = true, pending
	return true
}

// finish writes the response: as a JSON body with status if nothing is
// written yet (the call sends the client nothing else), else as the
// stream's event, in one write. The event is written without the lock, so
// that a write blocked on a lost connection holds up no GET that resumes
// the stream: such a GET finds the call done and gets the response from
// the store.
func (fc *fastCall) finish(msg []byte, status int) {
	fc.mu.Lock()
	fc.done = true
	if fc.timer != nil {
		fc.timer.Stop()
	}
	if !fc.committed {
		defer fc.mu.Unlock()
		h := fc.w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(msg)))
		fc.w.WriteHeader(status)
		fc.w.Write(msg)
		return
	}
	var b bytes.Buffer
	b.Grow(len(msg) + 64)
	b.WriteString("event: message\n")
	if fc.resume != nil {
		b.WriteString("id: " + fc.resume.event(msg) + "\n")
	}
	b.WriteString("data: ")
	b.Write(msg)
	b.WriteString("\n\n")
	w := fc.w
	fc.mu.Unlock()
	w.Write(b.Bytes())
}

// stop ends the keep-alives without writing (the call was given back, or
// its response is out); a GET that resumed the stream may return.
func (fc *fastCall) stop() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.done = true
	if fc.timer != nil {
		fc.timer.Stop()
	}
	if fc.resume != nil {
		fc.resume.close()
	}
	if fc.ended != nil && !fc.endedClosed {
		close(fc.ended)
		fc.endedClosed = true
	}
}

// fastResume makes a fast call's stream resumable as the SDK's are: its
// events have ids and are stored in the session's event store, so that a
// client that loses the stream gets the response with a GET and
// Last-Event-ID (the SDK's path replays any stream the store holds). A
// response sent as a JSON body needs none of this: it is one write.
type fastResume struct {
	ctx    context.Context
	store  mcp.EventStore
	ls     *liveSession
	prime  bool   // the revision has priming events (2025-11-25 on)
	stream string // set when the stream opens: fastStreamPrefix + random
	last   int    // the index of the last event sent; -1 before the first
}

// fastStreamPrefix starts the ids of fast calls' streams; the SDK's own are
// rand.Text too, which has no lower case.
const fastStreamPrefix = "f"

// open starts the stream of fc (whose lock is held): an id, a place among
// the session's resumable streams and, where the revision has them, a
// priming event that gives the client an id to resume from, as the SDK
// writes it.
func (fr *fastResume) open(fc *fastCall) {
	fr.stream, fr.last = fastStreamPrefix+rand.Text(), -1
	fr.ls.mu.Lock()
	if fr.ls.fastStreams == nil {
		fr.ls.fastStreams = map[string]*fastCall{}
	}
	fr.ls.fastStreams[fr.stream] = fc
	fr.ls.mu.Unlock()
	if !fr.prime {
		return
	}
	fr.store.Append(fr.ctx, fr.ls.id, fr.stream, nil)
	fr.last++
	fc.w.Write([]byte("event: prime\nid: " + fr.stream + "_" + strconv.Itoa(fr.last) + "\ndata: \n\n"))
}

// event stores msg as the stream's next event and returns its id.
func (fr *fastResume) event(msg []byte) string {
	fr.store.Append(fr.ctx, fr.ls.id, fr.stream, msg)
	fr.last++
	return fr.stream + "_" + strconv.Itoa(fr.last)
}

// close takes the stream out of the session's resumable ones: from now on
// a GET for it is the SDK's, which replays what the store holds.
func (fr *fastResume) close() {
	if fr.stream == "" {
		return
	}
	fr.ls.mu.Lock()
	delete(fr.ls.fastStreams, fr.stream)
	fr.ls.mu.Unlock()
}

// reattach moves a running call's stream to w, a GET that resumes it after
// its last event so far (the priming one): the keep-alives and the
// response go there from now on. It reports false if the call is done (the
// SDK's path then replays the response from the store) or the event is
// not the stream's last.
func (fc *fastCall) reattach(w http.ResponseWriter, index int) bool {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.done || !fc.committed || fc.resume == nil || index != fc.resume.last {
		return false
	}
	fc.w = w
	if fc.timer != nil {
		fc.timer.Reset(fc.interval) // a keep-alive to the lost stream may have failed and stopped them
	}
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush()
	return true
}

// detach stops writing to w, a GET that resumed the stream and is gone. It
// reports false if the response is being written to it: the GET's handler
// must then wait for the write (to a closed connection: it fails at once).
func (fc *fastCall) detach(w http.ResponseWriter) bool {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.done {
		return fc.w != w
	}
	if fc.w == w {
		fc.w = &discardWriter{header: http.Header{}}
	}
	return true
}

// resumeFast serves a GET with Last-Event-ID that resumes the stream of a
// fast call still running on this session: the stream goes on, on this
// request, until the response is out or the client goes. It reports false
// for any other GET, which the SDK's path serves: the SDK knows nothing of
// fast calls' streams, but replays what they stored once they have ended.
func (ls *liveSession) resumeFast(w http.ResponseWriter, r *http.Request) bool {
	stream, idx, ok := strings.Cut(r.Header.Get("Last-Event-ID"), "_")
	if !ok || !strings.HasPrefix(stream, fastStreamPrefix) {
		return false
	}
	index, err := strconv.Atoi(idx)
	if err != nil || index < 0 {
		return false
	}
	ls.mu.Lock()
	fc := ls.fastStreams[stream]
	ls.mu.Unlock()
	if fc == nil || !fc.reattach(w, index) {
		return false
	}
	select {
	case <-fc.ended:
	case <-r.Context().Done():
		if !fc.detach(w) {
			<-fc.ended
		}
	}
	return true
}

// yieldForInput is called where a call needs the client to answer input on
// the request's stream: it reports whether the call was a fast one given
// back to the SDK's path, which then asks the client. pending is the
// upstream's request for input, which the SDK's path takes up (handback)
// instead of calling the upstream a second time.
func yieldForInput(ctx context.Context, pending *handback) bool {
	fc, _ := ctx.Value(fastCallKey{}).(*fastCall)
	return fc != nil && fc.yield(pending)
}

// handback is a fast call's first round, given back to the SDK's path: the
// upstream asked for input, which the SDK's path asks the client for.
type handback struct {
	digest   []byte // of the request, to match the request served again
	requests mcp.InputRequestMap
	state    string // the upstream's requestState
	at       time.Time
}

// handbackTTL bounds how long a given-back round waits to be taken up: the
// SDK's path serves the request at once.
const handbackTTL = 30 * time.Second

// takeHandback returns and forgets the first round that a fast call on
// ss's session gave back for the request whose digest this is, if any.
func (g *Gateway) takeHandback(ss *mcp.ServerSession, digest func() []byte) *handback {
	ls := g.sessions.byServer(ss)
	if ls == nil {
		return nil
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	hb := ls.handback
	if hb == nil {
		return nil
	}
	if time.Since(hb.at) > handbackTTL {
		ls.handback = nil
		return nil
	}
	if !bytes.Equal(hb.digest, digest()) {
		return nil
	}
	ls.handback = nil
	return hb
}

// fastParams are the tools/call params the fast path needs to see,
// decoded as the SDK decodes them (strictUnmarshal).
type fastParams struct {
	Meta           map[string]any  `json:"_meta"`
	Name           string          `json:"name"`
	Arguments      json.RawMessage `json:"arguments"`
	InputResponses json.RawMessage `json:"inputResponses"`
	RequestState   *string         `json:"requestState"`
}

// fastToolCall serves msg, a request on ls that reached this replica's
// session, if it qualifies for the fast path (see the top of this file);
// it reports false, having written nothing, if the SDK's path must serve
// it.
func (g *Gateway) fastToolCall(w http.ResponseWriter, r *http.Request, ls *liveSession, msg wireMessage) bool {
	if !g.cfg.fastPath() || !msg.request || msg.method != "tools/call" || !plainID(msg.id) || ls.streamable == nil ||
		len(r.Header.Values("Last-Event-ID")) > 0 {
		return false
	}
	ls.mu.Lock()
	ss := ls.session
	ls.mu.Unlock()
	if ss == nil {
		return false
	}
	ip := ss.InitializeParams()
	if ip == nil || ip.ProtocolVersion >= version20260728 || !versionHeaderMatches(r.Header.Get(headerProtocolVersion), ip.ProtocolVersion) {
		return false
	}
	p, e, ok := g.fastRoute(msg)
	if !ok {
		return false
	}
	for k := range p.Meta {
		if strings.HasPrefix(k, "io.modelcontextprotocol/") {
			return false
		}
	}
	// As on the SDK's path for 2025-era sessions, the client going away
	// does not cancel the call; notifications/cancelled does.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	forget, ok := ls.trackFast(msg.id, cancel)
	if !ok {
		// As the SDK answers a request whose id is already in flight.
		writeJSON(w, http.StatusBadRequest, encodeResponse(msg.id, nil, &jsonrpc.Error{
			Code: jsonrpc.CodeInvalidRequest, Message: "duplicate in-flight request ID " + idText(msg.id)}))
		return true
	}
	defer forget()
	var resume *fastResume
	if store := g.eventStore(); store != nil {
		resume = &fastResume{ctx: ctx, store: store, ls: ls, prime: ip.ProtocolVersion >= version20251125}
	}
	fc := newFastCall(w, g.opts.KeepAlive, resume)
	defer fc.stop()
	ctx = context.WithValue(ctx, fastCallKey{}, fc)
	ls.begin()
	defer ls.end()
	res, err := g.runFast(ctx, r, ss, p, e)
	if errors.Is(err, errNeedsStream) {
		// Given back (yield): nothing was written, and no keep-alive will be.
		fc.mu.Lock()
		pending := fc.pending
		fc.mu.Unlock()
		if pending != nil {
			ls.mu.Lock()
			ls.handback = pending
			ls.mu.Unlock()
		}
		return false
	}
	fc.finish(encodeResponse(msg.id, res, err), http.StatusOK)
	return true
}

// fastStatelessCall serves msg, a 2026-07-28 request without a session, if
// it qualifies for the fast path: a well-formed request whose Mcp-Method
// and Mcp-Name headers match it and whose _meta carries the version of its
// MCP-Protocol-Version header, the client's capabilities and, if any, a
// well-formed client info; else the SDK's stateless handler serves it (and
// words whatever is wrong). The result is stamped as the SDK stamps it for
// this revision (resultType, the gateway's serverInfo), a protocol-level
// error gets its HTTP status, and the client closing the connection
// cancels the call.
func (g *Gateway) fastStatelessCall(w http.ResponseWriter, r *http.Request, msg wireMessage, version string) bool {
	if !g.cfg.fastPath() || !msg.request || msg.method != "tools/call" || !plainID(msg.id) || version != version20260728 ||
		r.Header.Get("Mcp-Method") != msg.method || len(r.Header.Values("Last-Event-ID")) > 0 {
		return false
	}
	p, e, ok := g.fastRoute(msg)
	if !ok || r.Header.Get("Mcp-Name") != p.Name || e.headerParams {
		return false
	}
	if v, _ := p.Meta[mcp.MetaKeyProtocolVersion].(string); v != version {
		return false
	}
	// The client's capabilities and info, decoded as the SDK decodes them;
	// the capabilities go upstream in the SDK's normalized form.
	var caps struct {
		mcp.ClientCapabilities
		Roots *mcp.RootCapabilities `json:"roots,omitempty"`
	}
	if raw, ok := p.Meta[mcp.MetaKeyClientCapabilities]; !ok || raw == nil || remarshal(raw, &caps) != nil {
		return false
	}
	if raw, present := p.Meta[mcp.MetaKeyClientInfo]; present {
		var info *mcp.Implementation
		if raw == nil || remarshal(raw, &info) != nil {
			return false
		}
	}
	normalized := caps.ClientCapabilities
	normalized.RootsV2 = caps.Roots
	if caps.Roots != nil {
		normalized.Roots = *caps.Roots
	}
	p.Meta[mcp.MetaKeyClientCapabilities] = &normalized
	// As the SDK's stateless handler: nothing is written until the answer
	// (no keep-alives), so that a protocol-level error keeps its status.
	fc := newFastCall(w, 0, nil)
	defer fc.stop()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	res, err := g.runFast(ctx, r, nil, p, e)
	status := http.StatusOK
	var werr *jsonrpc.Error
	switch {
	case errors.As(err, &werr):
		switch werr.Code {
		case jsonrpc.CodeMethodNotFound:
			status = http.StatusNotFound
		case jsonrpc.CodeInvalidParams, mcp.CodeUnsupportedProtocolVersion, mcp.CodeMissingRequiredClientCapabilities:
			status = http.StatusBadRequest
		}
	case err == nil:
		if tr, ok := res.(*mcp.CallToolResult); ok && tr != nil {
			if tr.Meta == nil {
				tr.Meta = mcp.Meta{}
			}
			if _, ok := tr.Meta[mcp.MetaKeyServerInfo]; !ok {
				tr.Meta[mcp.MetaKeyServerInfo] = g.impl
			}
		}
	}
	body := encodeResponse(msg.id, res, err)
	if err == nil {
		resultType := "complete"
		if tr, ok := res.(*mcp.CallToolResult); ok && tr != nil && tr.InputRequests != nil {
			resultType = "input_required"
		}
		body = withResultType(body, resultType)
	}
	fc.finish(body, status)
	return true
}

// fastRoute decodes msg's params and finds the tool, for either revision:
// it reports false for what the fast path leaves to the SDK (see the top
// of this file).
func (g *Gateway) fastRoute(msg wireMessage) (fastParams, toolEntry, bool) {
	var p fastParams
	// decodeWire has checked the message's nesting already.
	if strictUnmarshal(msg.params, &p) != nil ||
		p.InputResponses != nil || p.RequestState != nil || p.Name == "" {
		return p, toolEntry{}, false
	}
	if _, ok := p.Meta["progressToken"]; ok {
		return p, toolEntry{}, false
	}
	e, ok := g.catalog.tool(p.Name)
	if !ok || e.m.cfg.Sharing == SharingPerSession {
		return p, toolEntry{}, false
	}
	return p, e, true
}

// runFast runs the call through the middleware the SDK's path runs it
// through (in-flight count, metrics, policy) and the tool's handler. ss is
// nil for a 2026-07-28 request.
func (g *Gateway) runFast(ctx context.Context, r *http.Request, ss *mcp.ServerSession, p fastParams, e toolEntry) (mcp.Result, error) {
	req := &mcp.CallToolRequest{
		Session: ss,
		Params:  &mcp.CallToolParamsRaw{Meta: p.Meta, Name: p.Name, Arguments: p.Arguments},
		Extra:   &mcp.RequestExtra{TokenInfo: sdkauth.TokenInfoFromContext(r.Context()), Header: r.Header},
	}
	handle := g.countInflight(g.metrics.countRequests(func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if err := g.gate(ctx, method, req); err != nil {
			return nil, err
		}
		return g.toolHandler(e.route)(ctx, req.(*mcp.CallToolRequest))
	}))
	return handle(ctx, "tools/call", req)
}

// maxJSONDepth is the SDK's limit on how deeply a message may nest.
const maxJSONDepth = 1000

// exceedsDepth reports whether data, valid JSON, nests objects and arrays
// deeper than max.
func exceedsDepth(data []byte, max int) bool {
	depth, inString, escaped := 0, false, false
	for _, b := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
		case b == '"':
			inString = true
		case b == '{' || b == '[':
			if depth++; depth > max {
				return true
			}
		case b == '}' || b == ']':
			depth--
		}
	}
	return false
}

// strictUnmarshal decodes data into v as the SDK's decoder does: field
// names match exactly, not whatever their case (encoding/json's rule).
func strictUnmarshal(data []byte, v any) error {
	rest, err := segjson.Parse(data, v, segjson.DontMatchCaseInsensitiveStructFields)
	if err == nil && len(bytes.TrimSpace(rest)) > 0 {
		err = errors.New("unexpected data after the JSON value")
	}
	return err
}

// remarshal converts a decoded JSON value into v, strictly, as the SDK
// converts _meta values.
func remarshal(from, v any) error {
	data, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return strictUnmarshal(data, v)
}

// plainID reports whether a JSON-RPC id is one the fast path echoes as
// the SDK would: a string without escapes, or an integer in plain digits
// (the SDK rewrites 1.0 as 1 and "\u0041" as "A").
func plainID(id json.RawMessage) bool {
	if len(id) == 0 {
		return false
	}
	if id[0] == '"' {
		return !bytes.ContainsRune(id, '\\')
	}
	digits := id
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 15 {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// canonicalID is an id's JSON text in one form for each value, as the SDK
// compares ids: 7, 7.0 and 7e0 are one id, and so are "A" and "\u0041".
func canonicalID(id json.RawMessage) string {
	var v any
	if json.Unmarshal(id, &v) != nil {
		return string(id)
	}
	if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.FormatInt(int64(f), 10)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return string(id)
	}
	return string(b)
}

// idText is a plain id as the SDK prints it in messages.
func idText(id json.RawMessage) string {
	return strings.Trim(string(id), `"`)
}

// writeJSON writes body as an application/json answer with status.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// withResultType adds resultType to the result of an encoded response
// (the SDK's result types keep that field unexported).
func withResultType(resp []byte, resultType string) []byte {
	const key = `"result":{`
	i := bytes.Index(resp, []byte(key))
	if i < 0 {
		return resp
	}
	i += len(key)
	field := `"resultType":"` + resultType + `"`
	if resp[i] != '}' {
		field += ","
	}
	out := make([]byte, 0, len(resp)+len(field))
	out = append(out, resp[:i]...)
	out = append(out, field...)
	return append(out, resp[i:]...)
}

// fastPath reports whether the config enables the fast path.
func (c *Config) fastPath() bool { return c.FastPath == nil || *c.FastPath }

// versionHeaderMatches reports whether a request's MCP-Protocol-Version
// header agrees with the session's version (before 2025-06-18 clients
// need not send it).
func versionHeaderMatches(header, session string) bool {
	return header == session || header == "" && session < version20250618
}

// encodeResponse is the JSON-RPC response to the request with id, encoded
// as the SDK encodes it (no HTML escaping).
func encodeResponse(id json.RawMessage, res mcp.Result, err error) []byte {
	resp := struct {
		Version string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  mcp.Result      `json:"result,omitempty"`
		Error   *jsonrpc.Error  `json:"error,omitempty"`
	}{Version: "2.0", ID: id}
	if err != nil {
		var werr *jsonrpc.Error
		if !errors.As(err, &werr) {
			werr = &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: err.Error()}
		}
		resp.Error = werr
	} else {
		if tr, ok := res.(*mcp.CallToolResult); ok && tr != nil && tr.Content == nil && tr.InputRequests == nil {
			tr.Content = []mcp.Content{} // as the SDK sends a complete result: never null
		}
		resp.Result = res
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(resp); err != nil {
		b.Reset()
		enc.Encode(struct {
			Version string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Error   *jsonrpc.Error  `json:"error"`
		}{"2.0", id, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "the result could not be encoded"}})
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// trackFast registers the cancel function of a fast call under its request
// id, for notifications/cancelled; the returned function forgets it. It
// reports false if a fast call with that id is in flight.
func (ls *liveSession) trackFast(id json.RawMessage, cancel context.CancelFunc) (func(), bool) {
	key := canonicalID(id)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if _, dup := ls.fast[key]; dup {
		return nil, false
	}
	if ls.fast == nil {
		ls.fast = map[string]context.CancelFunc{}
	}
	ls.fast[key] = cancel
	return func() {
		ls.mu.Lock()
		delete(ls.fast, key)
		ls.mu.Unlock()
	}, true
}

// cancelFast cancels the fast calls that notifications/cancelled messages
// in msgs name. The messages go on to the SDK, which ignores ids it does
// not know.
func (ls *liveSession) cancelFast(msgs []wireMessage) {
	for _, msg := range msgs {
		if !msg.request || msg.method != "notifications/cancelled" {
			continue
		}
		var p struct {
			RequestID json.RawMessage `json:"requestId"`
		}
		if strictUnmarshal(msg.params, &p) != nil || len(p.RequestID) == 0 {
			continue
		}
		ls.mu.Lock()
		cancel := ls.fast[canonicalID(p.RequestID)]
		ls.mu.Unlock()
		if cancel != nil {
			cancel()
		}
	}
}
