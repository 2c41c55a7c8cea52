package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of run's
// two loggers.
type lockedBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args     []string
		want     config
		wantCode int
		wantErr  bool
	}{
		{args: []string{"--stdio"}, want: config{stdio: true, name: "demo"}},
		{args: []string{"--http", "127.0.0.1:13002", "--stateless", "--name", "two"}, want: config{httpAddr: "127.0.0.1:13002", stateless: true, name: "two"}},
		{args: []string{"-stdio", "-http=:0"}, want: config{stdio: true, httpAddr: ":0", name: "demo"}},
		{args: nil, wantCode: 2, wantErr: true},
		{args: []string{"--stateless"}, wantCode: 2, wantErr: true},
		{args: []string{"--stdio", "--stateless"}, wantCode: 2, wantErr: true},
		{args: []string{"--stdio", "extra"}, wantCode: 2, wantErr: true},
		{args: []string{"--stdio", "--name", ""}, wantCode: 2, wantErr: true},
		{args: []string{"--bogus"}, wantCode: 2, wantErr: true},
		{args: []string{"--help"}, wantCode: 0, wantErr: true},
	}
	for _, tc := range tests {
		var stderr lockedBuffer
		got, code, err := parseFlags(tc.args, &stderr)
		if (err != nil) != tc.wantErr || code != tc.wantCode {
			t.Errorf("parseFlags(%q) = code %d, err %v; want code %d, error %t", tc.args, code, err, tc.wantCode, tc.wantErr)
			continue
		}
		if err != nil {
			if !strings.Contains(stderr.String(), "usage: demo") {
				t.Errorf("parseFlags(%q) printed %q, want the usage", tc.args, stderr.String())
			}
			continue
		}
		if got != tc.want {
			t.Errorf("parseFlags(%q) = %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

// TestRunExitCodes covers the ways run ends without serving a client.
func TestRunExitCodes(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })

	// A context that is already done stands in for SIGTERM arriving at once.
	stopped, stop := context.WithCancel(t.Context())
	stop()

	tests := []struct {
		name       string
		ctx        context.Context
		args       []string
		wantCode   int
		wantStderr []string
	}{
		{"no transport", t.Context(), nil, 2, []string{"one of --stdio or --http is required", "usage: demo"}},
		{"http cannot listen", t.Context(), []string{"--http", busy.Addr().String()}, 1, []string{"msg=\"http unavailable\"", "addr=" + busy.Addr().String()}},
		{"http then signal", stopped, []string{"--http", "127.0.0.1:0", "--name", "sig"}, 0, []string{"msg=listening addr=127.0.0.1:", "reason=signal", "code=0"}},
		{"stateless then signal", stopped, []string{"--http", "127.0.0.1:0", "--stateless"}, 0, []string{"msg=listening addr=127.0.0.1:", "stateless=true"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr lockedBuffer
			if code := run(tc.ctx, tc.args, &stderr); code != tc.wantCode {
				t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tc.args, code, tc.wantCode, stderr.String())
			}
			for _, want := range tc.wantStderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("run(%q) stderr lacks %q:\n%s", tc.args, want, stderr.String())
				}
			}
		})
	}
}
