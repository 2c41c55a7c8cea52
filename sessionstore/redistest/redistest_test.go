package redistest

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	if got := ping(s.Addr()); got != nil {
		t.Fatalf("PING after Start = %v, want PONG", got)
	}
	if want := "redis://" + s.Addr(); s.URL() != want {
		t.Errorf("URL() = %q, want %q", s.URL(), want)
	}

	s.Stop()
	s.Stop() // idempotent
	if err := ping(s.Addr()); err == nil {
		t.Fatal("PING after Stop succeeded, want the connection refused")
	}

	s.Restart()
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("PING after Restart = %v, want PONG", err)
	}
}

// TestStartTwo checks that servers started side by side get ports of their
// own.
func TestStartTwo(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers on one address %q", a.Addr())
	}
	for _, s := range []*Server{a, b} {
		if err := ping(s.Addr()); err != nil {
			t.Errorf("PING %s = %v, want PONG", s.Addr(), err)
		}
	}
}

// TestMissingBinary checks what a machine without redis-server gets: a
// failure that says how to install it, or a skip when MCPGW_SKIP_REDIS=1.
func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, tc := range []struct {
		skipEnv  string
		wantSkip bool
		want     string
	}{
		{"", false, "apt-get install redis-server"},
		{"0", false, "apt-get install redis-server"},
		{"1", true, "MCPGW_SKIP_REDIS=1"},
	} {
		t.Setenv(SkipEnv, tc.skipEnv)
		rec := &recordingTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Start(rec)
			rec.record("returned", "Start returned")
		}()
		<-done
		kind, msg := rec.result()
		wantKind := "fatal"
		if tc.wantSkip {
			wantKind = "skip"
		}
		if kind != wantKind || !strings.Contains(msg, tc.want) {
			t.Errorf("%s=%q: Start ended with %s %q, want %s mentioning %q", SkipEnv, tc.skipEnv, kind, msg, wantKind, tc.want)
		}
	}
}

// recordingTB records how Start ends instead of ending the test.
type recordingTB struct {
	testing.TB

	mu        sync.Mutex // guards the fields below
	kind, msg string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.record("fatal", fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.record("skip", fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (r *recordingTB) record(kind, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kind == "" {
		r.kind, r.msg = kind, msg
	}
}

func (r *recordingTB) result() (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.kind, r.msg
}

// ping sends PING to addr and returns nil if the answer is PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("answer %q", line)
	}
	return nil
}
