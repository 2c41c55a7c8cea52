package upstream

import (
	"context"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// The observer sees every complete line whatever the read sizes, skips
// lines longer than its buffer, and counts only progress notifications with
// string tokens.
func TestLineObserverCountsProgress(t *testing.T) {
	long := `{"jsonrpc":"2.0","id":9,"result":{"text":"` + strings.Repeat("x", 2*maxObservedLine) + `"}}`
	stream := strings.Join([]string{
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"gw-1","progress":1}}`,
		`data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"gw-1","progress":2}}`,
		long,
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":7,"progress":1}}`,
		`{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"notifications/progress"}}`,
		`event: message`,
		`data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"gw-2","progress":1}}`,
		``,
	}, "\n")
	var w progressWatch
	o := &lineObserver{r: io.NopCloser(iotest.OneByteReader(strings.NewReader(stream))), fn: w.observeLine}
	data, err := io.ReadAll(o)
	if err != nil || string(data) != stream {
		t.Fatalf("observer changed the stream or failed: %v", err)
	}
	if got := w.pending["gw-1"]; got != 2 {
		t.Errorf("pending[gw-1] = %d, want 2", got)
	}
	if got := w.pending["gw-2"]; got != 1 {
		t.Errorf("pending[gw-2] = %d, want 1", got)
	}
	if len(w.pending) != 2 {
		t.Errorf("pending = %v, want only gw-1 and gw-2", w.pending)
	}

	// wait returns once every counted notification is done.
	waited := make(chan struct{})
	go func() {
		w.wait(context.Background(), "gw-1")
		close(waited)
	}()
	w.done("gw-1")
	select {
	case <-waited:
		t.Fatal("wait returned with one notification still pending")
	default:
	}
	w.done("gw-1")
	<-waited
	w.wait(context.Background(), "unknown") // returns at once
}
