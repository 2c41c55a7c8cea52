package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersionAndUsage(t *testing.T) {
	code, out, _ := runCmd(t, "version")
	if code != 0 || !strings.HasPrefix(out, "gateway ") {
		t.Errorf("version = %d, %q; want 0, \"gateway <version>\"", code, out)
	}
	for _, args := range [][]string{{"frobnicate"}, {}, {"validate"}, {"--config"}, {"--bogus"}} {
		if code, _, errOut := runCmd(t, args...); code != 2 || errOut == "" {
			t.Errorf("run(%q) = %d with stderr %q, want exit 2 and a usage message", args, code, errOut)
		}
	}
}

func TestValidate(t *testing.T) {
	code, out, errOut := runCmd(t, "validate", "--config", "../../configs/gateway.yaml")
	if code != 0 || strings.TrimSpace(out) != "ok" {
		t.Fatalf("validate configs/gateway.yaml = %d, %q, %q; want 0, \"ok\"", code, out, errOut)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte(`
listen: nowhere
upstreams:
  - name: Bad_Name
    transport: stdio
  - name: web
    transport: streamable-http
`), 0o644)
	code, _, errOut = runCmd(t, "validate", "--config", bad)
	if code != 1 {
		t.Fatalf("validate bad config = %d, want 1; stderr %q", code, errOut)
	}
	// Every problem at once, each with its path.
	for _, want := range []string{"listen", `upstreams[0]`, "command", `upstreams[1] "web"`, "url"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errOut)
		}
	}

	code, _, errOut = runCmd(t, "validate", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 1 || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("validate missing file = %d, %q; want 1 naming the file", code, errOut)
	}
}

var listeningRE = regexp.MustCompile(`msg="gateway listening" addr=(\S+)`)

// The gateway serves a config with a stdio upstream, --listen overrides the
// config's address, and a cancelled context (SIGTERM) shuts it down cleanly,
// stopping the child.
func TestServeAndShutdown(t *testing.T) {
	dir := t.TempDir()
	demo := filepath.Join(dir, "demo")
	if out, err := exec.Command("go", "build", "-o", demo, "../demo").CombinedOutput(); err != nil {
		t.Fatalf("building demo: %v\n%s", err, out)
	}
	// The marker holds this process's id: the same test running in another
	// test process (parallel `go test` runs) has a live child of its own.
	marker := childMarker(t, "demo")
	cfg := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(cfg, []byte(`
listen: 127.0.0.1:1
upstreams:
  - name: demo
    transport: stdio
    command: ./demo
    args: [--stdio, --name, `+marker+`]
`), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--config", cfg, "--listen", "127.0.0.1:0"}, io.Discard, pw)
		pw.Close()
	}()
	addr := make(chan string, 1)
	connected := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
			if strings.Contains(sc.Text(), `msg="upstream connected" upstream=demo`) {
				connected <- struct{}{}
			}
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case code := <-done:
		t.Fatalf("gateway exited with %d before listening", code)
	case <-time.After(30 * time.Second):
		t.Fatal("gateway did not report its address")
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /healthz = %v, %v; want 200", resp, err)
	}
	resp.Body.Close()
	// The upstream connects in the background; wait until it says so.
	select {
	case <-connected:
	case <-time.After(30 * time.Second):
		t.Fatal("the stdio upstream never connected")
	}
	if !childRunning(marker) {
		t.Fatal("the stdio upstream never started")
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("gateway exit code after shutdown = %d, want 0", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("gateway did not shut down")
	}
	if childRunning(marker) {
		t.Error("the stdio upstream outlived the gateway")
	}
}

// childRunning reports whether a process with marker as one of its
// arguments is alive (zombies do not count). The whole argument must match:
// the marker of test process 123 is a prefix of that of test process 1234.
func childRunning(marker string) bool {
	arg := []byte("\x00" + marker + "\x00")
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, arg) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err == nil && !bytes.Contains(stat, []byte(") Z ")) {
			return true
		}
	}
	return false
}

func TestBadListenOverride(t *testing.T) {
	code, _, errOut := runCmd(t, "--config", "../../configs/gateway.yaml", "--listen", "not-an-address")
	if code != 1 || !strings.Contains(errOut, "listen") {
		t.Errorf("--listen not-an-address = %d, %q; want 1 naming listen", code, errOut)
	}
}
