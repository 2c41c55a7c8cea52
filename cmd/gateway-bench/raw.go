// Plain HTTP clients: sessions, streams and lists without a go-sdk
// client, for measurements where the client's own work would hide the
// server's (memory per session, the cost of a tools/list).

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// rawInitialize opens a 2025-11-25 session with plain HTTP requests and
// returns its id.
func rawInitialize(ctx context.Context, hc *http.Client, endpoint string) (string, error) {
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"gateway-bench","version":"1"}}}`
	resp, _, err := rawPost(ctx, hc, endpoint, "", initialize)
	if err != nil {
		return "", err
	}
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		return "", fmt.Errorf("initialize: status %d, session id %q", resp.StatusCode, sid)
	}
	resp, _, err = rawPost(ctx, hc, endpoint, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("notifications/initialized: status %d, want 202", resp.StatusCode)
	}
	return sid, nil
}

// rawPost posts one JSON-RPC message and returns the response with its
// whole body (read, so that the connection goes back to the pool).
func rawPost(ctx context.Context, hc *http.Client, endpoint, sid, body string) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", rev20251125)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	return resp, data, nil
}

// rawDelete ends a session.
func rawDelete(ctx context.Context, hc *http.Client, endpoint, sid string) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, endpoint, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", rev20251125)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return nil
}

// rawListTarget lists every tool with plain HTTP requests, on sessions
// opened the same way: what the server spends on a list, without the
// go-sdk client's decoding and checking of every tool.
func rawListTarget(name, endpoint string, hc *http.Client, want int) *target {
	return &target{name: name, open: func(ctx context.Context, n int) ([]op, func(), error) {
		var sids []string
		release := func() {
			for _, sid := range sids {
				rawDelete(context.WithoutCancel(ctx), hc, endpoint, sid)
			}
		}
		ops := make([]op, n)
		for i := range ops {
			sid, err := rawInitialize(ctx, hc, endpoint)
			if err != nil {
				release()
				return nil, nil, fmt.Errorf("%s: %w", name, err)
			}
			sids = append(sids, sid)
			ops[i] = func(ctx context.Context) error { return rawListAll(ctx, hc, endpoint, sid, want) }
		}
		return ops, release, nil
	}}
}

// rawListAll sends tools/list until there is no next page and checks that
// the pages held want tools. It looks into the bodies only for the cursor
// and to count the tools.
func rawListAll(ctx context.Context, hc *http.Client, endpoint, sid string, want int) error {
	cursor, n := "", 0
	for id := 1; ; id++ {
		params := ""
		if cursor != "" {
			c, _ := json.Marshal(cursor)
			params = fmt.Sprintf(`,"params":{"cursor":%s}`, c)
		}
		resp, body, err := rawPost(ctx, hc, endpoint, sid, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/list"%s}`, id, params))
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("tools/list: status %d: %s", resp.StatusCode, excerpt(body))
		}
		n += bytes.Count(body, []byte(`"inputSchema"`))
		cursor = nextCursor(body)
		if cursor == "" {
			break
		}
	}
	if n != want {
		return fmt.Errorf("tools/list returned %d tools, want %d", n, want)
	}
	return nil
}

// nextCursor finds a list result's nextCursor in a response body, or "".
func nextCursor(body []byte) string {
	_, after, ok := bytes.Cut(body, []byte(`"nextCursor":"`))
	if !ok {
		return ""
	}
	end := bytes.IndexByte(after, '"')
	if end < 0 {
		return ""
	}
	return string(after[:end])
}

// openStream sends GET url on a TCP connection of its own and returns the
// connection once the response headers (and, with endpointEvent, the
// legacy transport's first event) have arrived. Nothing reads it after.
func openStream(url string, header map[string]string, endpointEvent bool) (net.Conn, error) {
	rest, ok := strings.CutPrefix(url, "http://")
	if !ok {
		return nil, fmt.Errorf("openStream: %q is not an http URL", url)
	}
	host, path, _ := strings.Cut(rest, "/")
	conn, err := net.DialTimeout("tcp", host, streamTimeout)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(streamTimeout))
	var req strings.Builder
	fmt.Fprintf(&req, "GET /%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n", path, host)
	for k, v := range header {
		fmt.Fprintf(&req, "%s: %s\r\n", k, v)
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		conn.Close()
		return nil, err
	}
	var got []byte
	buf := make([]byte, 1024)
	for {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("reading the stream's start: %w (got %q)", err, excerpt(got))
		}
		head, body, complete := bytes.Cut(got, []byte("\r\n\r\n"))
		if !complete {
			continue
		}
		if !bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) {
			conn.Close()
			return nil, fmt.Errorf("GET %s: %s", url, excerpt(head))
		}
		if !endpointEvent {
			break
		}
		if _, ev, ok := bytes.Cut(body, []byte("event: endpoint")); ok && bytes.Contains(ev, []byte("\n\n")) {
			break
		}
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

// excerpt returns the first line of b, shortened.
func excerpt(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	if len(line) > 120 {
		line = line[:120]
	}
	return string(line)
}

// rawConnCost measures what one end of a loopback TCP connection costs
// this process: n connection pairs to a listener that only accepts,
// divided by 2n.
func rawConnCost(n int) (memDelta, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return memDelta{}, err
	}
	defer ln.Close()
	accepted := make(chan net.Conn)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	before := snapshot()
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return memDelta{}, err
		}
		s, ok := <-accepted
		if !ok {
			c.Close()
			return memDelta{}, errors.New("listener closed")
		}
		conns = append(conns, c, s)
	}
	return snapshot().since(before, 2*n), nil
}
