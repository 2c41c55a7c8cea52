package upstream

// Progress ordering. The SDK delivers a call's response to the caller as
// soon as it is read, but queues notifications for a handler goroutine, so
// the last notifications/progress of a call can reach OnProgress after the
// call has returned: too late to travel on the client's stream before the
// result. To keep progress in order, the gateway asks WaitProgress, after a
// call returns, to wait until every progress notification for the call's
// token that was read before the response has been handed to OnProgress.
//
// Counting happens on the wire: every response body and the stdio child's
// stdout pass through a lineObserver, which sees each line (an NDJSON
// message on stdio, an SSE "data:" line over HTTP) before the SDK decodes
// it, and so before the response that follows it.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
)

// maxObservedLine bounds the bytes a lineObserver buffers for one line;
// longer lines (large results, never progress notifications) are skipped.
const maxObservedLine = 64 << 10

// progressWatch counts progress notifications per token from the moment they
// are read off the wire until OnProgress has returned for them.
type progressWatch struct {
	mu      sync.Mutex // guards the fields below
	pending map[string]int
	idle    map[string]chan struct{} // closed when pending drops to zero
}

func (w *progressWatch) seen(tok string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending == nil {
		w.pending = map[string]int{}
		w.idle = map[string]chan struct{}{}
	}
	if w.pending[tok] == 0 {
		w.idle[tok] = make(chan struct{})
	}
	w.pending[tok]++
}

func (w *progressWatch) done(tok string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending[tok] == 0 {
		return
	}
	w.pending[tok]--
	if w.pending[tok] == 0 {
		delete(w.pending, tok)
		close(w.idle[tok])
		delete(w.idle, tok)
	}
}

func (w *progressWatch) wait(ctx context.Context, tok string) {
	w.mu.Lock()
	ch, ok := w.idle[tok]
	w.mu.Unlock()
	if !ok {
		return
	}
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// WaitProgress waits until the progress notifications for token that have
// been read from the upstream so far have all been passed to OnProgress, or
// ctx ends.
func (u *Upstream) WaitProgress(ctx context.Context, token string) {
	u.progress.wait(ctx, token)
}

// observeLine counts line if it is a progress notification with a string
// token.
func (w *progressWatch) observeLine(line []byte) {
	line = bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(line), []byte("data:")))
	if !bytes.Contains(line, []byte(`"notifications/progress"`)) {
		return
	}
	var msg struct {
		Method string `json:"method"`
		Params struct {
			ProgressToken any `json:"progressToken"`
		} `json:"params"`
	}
	if json.Unmarshal(line, &msg) != nil || msg.Method != "notifications/progress" {
		return
	}
	if tok, ok := msg.Params.ProgressToken.(string); ok {
		w.seen(tok)
	}
}

// lineObserver passes reads through and shows each complete line to fn.
type lineObserver struct {
	r    io.ReadCloser
	fn   func([]byte)
	buf  []byte
	skip bool // the current line outgrew the buffer; drop it up to its end
}

func (o *lineObserver) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	data := p[:n]
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if !o.skip {
				o.buf = append(o.buf, data...)
				if len(o.buf) > maxObservedLine {
					o.buf, o.skip = o.buf[:0], true
				}
			}
			break
		}
		if !o.skip {
			o.buf = append(o.buf, data[:i]...)
			o.fn(o.buf)
		}
		o.buf, o.skip = o.buf[:0], false
		data = data[i+1:]
	}
	return n, err
}

func (o *lineObserver) Close() error { return o.r.Close() }

// observingTransport shows every response body to a lineObserver.
type observingTransport struct {
	base http.RoundTripper
	fn   func([]byte)
}

func (t *observingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil && resp.Body != nil {
		resp.Body = &lineObserver{r: resp.Body, fn: t.fn}
	}
	return resp, err
}
