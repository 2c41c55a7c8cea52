// Connecting to the gateway: Streamable HTTP, falling back to the legacy
// HTTP+SSE transport when the URL does not speak it (a URL ending in /sse,
// or a 4xx other than 401/403 to the POST of initialize, as the MCP spec's
// backwards-compatibility section says), and errors that say what went
// wrong: unreachable, refused credentials with the resource metadata URL
// from WWW-Authenticate, a token endpoint that refused, a timeout.

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
)

// protocolVersion is the revision mcp-chat asks for. Not 2026-07-28, the
// go-sdk's default: the gateway serves that revision statelessly, and a
// stateless client gets no sampling, elicitation or roots requests.
const protocolVersion = "2025-11-25"

// Transport names, as --transport takes them.
const (
	transportAuto       = "auto"
	transportStreamable = "streamable"
	transportSSE        = "sse"
)

// connectOptions says how to reach the gateway.
type connectOptions struct {
	url       string
	transport string        // auto, streamable or sse
	timeout   time.Duration // for the handshake; not applied while a login runs
	creds     *credentials
	term      *terminal
}

// connection is an open session and what keeps it alive.
type connection struct {
	*mcp.ClientSession
	transport string // the one that worked
	// stop ends the context the session was connected with, which the SSE
	// transport's stream lives on. Call it after Close.
	stop context.CancelFunc
}

// connect opens a session with client. ctx bounds the session's life.
func connect(ctx context.Context, client *mcp.Client, o *connectOptions) (*connection, error) {
	rec := &recorder{base: http.DefaultTransport}
	kind := o.transport
	if kind == transportAuto {
		kind = transportStreamable
		if u, err := url.Parse(o.url); err == nil && strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/sse") {
			kind = transportSSE
		}
	}
	conn, err := connectWith(ctx, client, o, kind, rec)
	if err != nil && o.transport == transportAuto && kind == transportStreamable {
		if f := rec.response(); f != nil && f.status >= 400 && f.status < 500 && f.status != http.StatusUnauthorized && f.status != http.StatusForbidden {
			o.term.printf("%s answered %d to a Streamable HTTP initialize; trying the legacy SSE transport\n", o.url, f.status)
			kind = transportSSE
			conn, err = connectWith(ctx, client, o, kind, rec)
		}
	}
	if err != nil {
		return nil, explain(err, kind, rec, o)
	}
	return conn, nil
}

// connectWith makes one attempt over the transport kind.
func connectWith(ctx context.Context, client *mcp.Client, o *connectOptions, kind string, rec *recorder) (*connection, error) {
	rec.reset()
	hc := &http.Client{Transport: o.creds.transport(rec, kind == transportSSE)}
	var t mcp.Transport
	if kind == transportSSE {
		t = &mcp.SSEClientTransport{Endpoint: o.url, HTTPClient: hc}
	} else {
		st := &mcp.StreamableClientTransport{Endpoint: o.url, HTTPClient: hc}
		if o.creds.login != nil {
			st.OAuthHandler = o.creds.login
		}
		t = st
	}
	// The SSE transport's stream lives on the context Connect gets, so the
	// handshake is bounded by a timer that cancels it only while
	// connecting.
	sessionCtx, stop := context.WithCancel(ctx)
	var timer *time.Timer
	if o.timeout > 0 && o.creds.login == nil {
		timer = time.AfterFunc(o.timeout, stop)
	}
	cs, err := client.Connect(sessionCtx, t, &mcp.ClientSessionOptions{ProtocolVersion: protocolVersion})
	timedOut := timer != nil && !timer.Stop()
	if err != nil || timedOut {
		if cs != nil {
			cs.Close()
		}
		stop()
		if timedOut {
			return nil, errTimeout
		}
		return nil, err
	}
	return &connection{ClientSession: cs, transport: kind, stop: stop}, nil
}

// errTimeout is a handshake that took longer than --connect-timeout.
var errTimeout = errors.New("timed out")

// explain turns a failed connect into an error that says what to do.
func explain(err error, kind string, rec *recorder, o *connectOptions) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		endpoint := o.creds.tokenURL
		if re.Response != nil && re.Response.Request != nil {
			endpoint = re.Response.Request.URL.Redacted()
		}
		return fmt.Errorf("getting a token from %s: %s", endpoint, retrieveMessage(re))
	}
	if f := rec.response(); f != nil && (f.status == http.StatusUnauthorized || f.status == http.StatusForbidden) {
		return authError(err, f, o)
	}
	if errors.Is(err, errTimeout) {
		return fmt.Errorf("the gateway at %s did not complete the MCP handshake within %v (--connect-timeout)", o.url, o.timeout)
	}
	if nerr := rec.transportError(); nerr != nil {
		var opErr *net.OpError
		var dnsErr *net.DNSError
		if errors.As(nerr, &opErr) || errors.As(nerr, &dnsErr) {
			return fmt.Errorf("cannot reach the gateway at %s: %v", o.url, unwrapURL(nerr))
		}
	}
	if f := rec.response(); f != nil {
		return fmt.Errorf("the gateway at %s answered %s to %s %s (%s transport): %w", o.url, f.statusText, f.method, f.url, kind, err)
	}
	return fmt.Errorf("connecting to %s (%s transport): %w", o.url, kind, err)
}

// authError explains a 401 or 403: the challenge, where the protected
// resource metadata is, and what to try.
func authError(err error, f *failure, o *connectOptions) error {
	var b strings.Builder
	fmt.Fprintf(&b, "the gateway at %s requires authorization: %s", o.url, f.statusText)
	challenges, _ := oauthex.ParseWWWAuthenticate(f.header.Values("WWW-Authenticate"))
	var prm, scope, code, desc string
	for _, c := range challenges {
		if c.Scheme != "bearer" {
			continue
		}
		prm, scope, code, desc = c.Params["resource_metadata"], c.Params["scope"], c.Params["error"], c.Params["error_description"]
	}
	if code != "" {
		fmt.Fprintf(&b, " (%s", code)
		if desc != "" {
			fmt.Fprintf(&b, ": %s", desc)
		}
		b.WriteString(")")
	}
	if prm != "" {
		fmt.Fprintf(&b, "\n  protected resource metadata: %s", prm)
	} else {
		b.WriteString("\n  the WWW-Authenticate header names no resource_metadata")
	}
	if scope != "" {
		fmt.Fprintf(&b, "\n  scope: %s", scope)
	}
	c := o.creds
	switch {
	case c.login != nil:
		fmt.Fprintf(&b, "\n  login: %v", err)
	case c.source != nil:
		fmt.Fprintf(&b, "\n  %s was not accepted", c.describe)
	default:
		b.WriteString("\n  set $MCP_BEARER_TOKEN (see --bearer-env), or use --login, or --oauth-token-url with --oauth-client-id")
	}
	return errors.New(b.String())
}

// retrieveMessage summarizes a token endpoint's refusal.
func retrieveMessage(re *oauth2.RetrieveError) string {
	msg := ""
	if re.Response != nil {
		msg = re.Response.Status
	}
	if re.ErrorCode != "" {
		msg += ": " + re.ErrorCode
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
	} else if body := strings.TrimSpace(string(re.Body)); body != "" {
		msg += ": " + oneLine(body, 200)
	}
	return msg
}

// unwrapURL drops the *url.Error wrapper, whose text repeats the method
// and URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// recorder is an http.RoundTripper that remembers the first failed
// response, and the first transport error, since the last reset. The go-sdk
// reduces both to text; connect needs the status, the WWW-Authenticate
// header and the network error's type.
type recorder struct {
	base http.RoundTripper

	mu     sync.Mutex // guards the fields below
	failed *failure
	netErr error
}

// failure is a response with a status of 400 or more.
type failure struct {
	method, url string
	status      int
	statusText  string // "401 Unauthorized"
	header      http.Header
}

// RoundTrip sends req and records what failed.
func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil && r.netErr == nil && req.Context().Err() == nil:
		r.netErr = err
	case err == nil && resp.StatusCode >= 400 && r.failed == nil:
		r.failed = &failure{method: req.Method, url: req.URL.Redacted(), status: resp.StatusCode, statusText: resp.Status, header: resp.Header.Clone()}
	}
	return resp, err
}

// reset forgets what was recorded, before another attempt.
func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed, r.netErr = nil, nil
}

// response returns the first failed response, or nil.
func (r *recorder) response() *failure {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// transportError returns the first error of the transport (no response
// at all), or nil.
func (r *recorder) transportError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.netErr
}
