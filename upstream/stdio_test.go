package upstream

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestStdioConnect(t *testing.T) {
	dir := t.TempDir()
	cfg := helperConfig("helper", "server")
	cfg.Dir = dir
	h := startUpstream(t, cfg, testOptions())
	up := h.waitUp(t)

	if !sameCatalog(up.catalog, wantCatalog()) {
		t.Errorf("Catalog() = %v, want %v (every page of every list)", catalogNames(up.catalog), wantCatalog())
	}
	if up.sessErr != nil {
		t.Errorf("Session() while up = %v, want a session", up.sessErr)
	}
	st := h.u.Status()
	if st.State != StateUp || st.PID <= 0 || st.LastError != nil || st.Restarts != 0 {
		t.Errorf("Status() = %+v, want up with a PID, no error, no restarts", st)
	}
	if got := callText(t, h.u, "pid", nil); got != strconv.Itoa(st.PID) {
		t.Errorf("pid tool = %s, want Status().PID %d", got, st.PID)
	}
	wantDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := callText(t, h.u, "cwd", nil); got != wantDir {
		t.Errorf("cwd tool = %q, want Config.Dir %q", got, wantDir)
	}
	s, _ := h.u.Session()
	if got := s.InitializeResult().ServerInfo.Name; got != "helper" {
		t.Errorf("server name = %q, want %q", got, "helper")
	}
	if got := h.u.Name(); got != "helper" {
		t.Errorf("Name() = %q, want %q", got, "helper")
	}
}

// TestStdioDemo mounts the repository's demo server, as the gateway does.
func TestStdioDemo(t *testing.T) {
	demo := demoBinary(t)
	h := startUpstream(t, Config{Name: "weather", Transport: TransportStdio, Command: demo, Args: []string{"--stdio", "--name", "demo-upstream"}}, testOptions())
	up := h.waitUp(t)

	var tools []string
	for _, tool := range up.catalog.Tools {
		tools = append(tools, tool.Name)
	}
	slices.Sort(tools)
	if want := []string{"get_alerts", "greet", "list_roots", "multiply", "save_memory", "search_memory", "slow_count", "summarize_alerts"}; !slices.Equal(tools, want) {
		t.Errorf("Catalog().Tools = %v, want %v", tools, want)
	}
	if got := [3]int{len(up.catalog.Prompts), len(up.catalog.Resources), len(up.catalog.Templates)}; got != [3]int{1, 1, 1} {
		t.Errorf("prompts, resources, templates = %v, want one of each", got)
	}
	if got := callText(t, h.u, "multiply", map[string]any{"a": 6, "b": 7}); !strings.Contains(got, "42") {
		t.Errorf("multiply(6, 7) = %q, want it to contain 42", got)
	}
	s, _ := h.u.Session()
	if got := s.InitializeResult().ServerInfo.Name; got != "demo-upstream" {
		t.Errorf("server name = %q, want %q", got, "demo-upstream")
	}
	// The demo logs to stderr at startup; the line reaches our log, tagged.
	h.logs.wait(t, "the demo's stderr", 1, func(r logRecord) bool {
		return r.msg == "upstream stderr" && r.attrs["upstream"] == "weather" && strings.Contains(r.attrs["line"], "msg=starting")
	})
}

func TestStdioEnvironment(t *testing.T) {
	t.Setenv("UPSTREAM_TEST_CANARY", "must-not-leak")
	t.Setenv("UPSTREAM_TEST_PASSED", "passed")
	os.Unsetenv("UPSTREAM_TEST_UNSET")
	inherited := func(names ...string) []string {
		var out []string
		for _, k := range names {
			if v, ok := os.LookupEnv(k); ok {
				out = append(out, k+"="+v)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		passEnv []string
		env     map[string]string
		want    []string
	}{
		{"default PassEnv plus configured", nil, map[string]string{"CONFIGURED": "yes"},
			append(inherited("PATH", "HOME"), "CONFIGURED=yes")},
		{"default PassEnv only", nil, nil, inherited("PATH", "HOME")},
		{"configured wins over passed", []string{"PATH", "UPSTREAM_TEST_PASSED"}, map[string]string{"PATH": "/configured/bin"},
			[]string{"PATH=/configured/bin", "UPSTREAM_TEST_PASSED=passed"}},
		{"unset passed variable is left out", []string{"UPSTREAM_TEST_UNSET", "UPSTREAM_TEST_PASSED"}, nil,
			[]string{"UPSTREAM_TEST_PASSED=passed"}},
		// An empty environment must stay empty: exec.Cmd reads a nil Env
		// as "inherit everything".
		{"nothing passed, nothing configured", []string{}, nil, nil},
		{"passed variables all unset", []string{"UPSTREAM_TEST_UNSET"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.PassEnv = tc.passEnv
			cfg := helperConfig("env", "server")
			cfg.Env = tc.env
			h := startUpstream(t, cfg, opts)
			h.waitUp(t)
			var got []string
			if text := callText(t, h.u, "environ", nil); text != "" {
				got = strings.Split(text, "\n")
			}
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("child environment with PassEnv %q, Env %v = %q, want %q", tc.passEnv, tc.env, got, want)
			}
		})
	}
}

func TestChildEnv(t *testing.T) {
	t.Setenv("UPSTREAM_TEST_A", "a")
	t.Setenv("UPSTREAM_TEST_B", "b")
	os.Unsetenv("UPSTREAM_TEST_UNSET")
	for _, tc := range []struct {
		passEnv []string
		env     map[string]string
		want    []string
	}{
		{[]string{"UPSTREAM_TEST_A"}, nil, []string{"UPSTREAM_TEST_A=a"}},
		{[]string{"UPSTREAM_TEST_A", "UPSTREAM_TEST_UNSET"}, nil, []string{"UPSTREAM_TEST_A=a"}},
		{[]string{"UPSTREAM_TEST_A"}, map[string]string{"UPSTREAM_TEST_A": "mine"}, []string{"UPSTREAM_TEST_A=mine"}},
		{[]string{"UPSTREAM_TEST_B", "UPSTREAM_TEST_A"}, map[string]string{"Z": "1", "M": "2"},
			[]string{"UPSTREAM_TEST_B=b", "UPSTREAM_TEST_A=a", "M=2", "Z=1"}},
		{nil, nil, []string{}},
		{[]string{"UPSTREAM_TEST_UNSET"}, nil, []string{}},
	} {
		got := childEnv(tc.passEnv, tc.env)
		// nil would make exec.Cmd inherit the whole environment.
		if got == nil || !slices.Equal(got, tc.want) {
			t.Errorf("childEnv(%q, %v) = %#v, want %#v", tc.passEnv, tc.env, got, tc.want)
		}
	}
}

func TestStdioStderrLogged(t *testing.T) {
	h := startUpstream(t, helperConfig("noisy", "longline"), testOptions())
	h.waitUp(t)
	h.logs.wait(t, "the line after the long one", 1, isStderr("noisy", "after long line"))

	var lines []string
	var tooLong int
	for _, r := range h.logs.all() {
		switch r.msg {
		case "upstream stderr":
			if r.attrs["upstream"] != "noisy" {
				t.Errorf("stderr record %v lacks upstream=noisy", r.attrs)
			}
			lines = append(lines, r.attrs["line"])
		case "upstream stderr line too long":
			tooLong++
		}
	}
	if want := []string{"before long line", "after long line"}; !slices.Equal(lines, want) {
		t.Errorf("stderr lines logged = %.40q, want %q (no fragments of the long line)", lines, want)
	}
	if tooLong != 1 {
		t.Errorf("%d \"line too long\" records, want 1", tooLong)
	}
}

func TestCloseStopsChildInStages(t *testing.T) {
	// Each stage's grace must let the child print that it saw the stage,
	// on a loaded machine too.
	const grace = time.Second
	for _, tc := range []struct {
		mode      string
		grace     time.Duration
		wantWarns []string // the escalations, in order
		wantLines []string // the child's stderr: proof it was alive to see each stage
		minTime   time.Duration
	}{
		{"server", 5 * time.Second, nil, []string{"helper: stdin closed, exiting"}, 0},
		{"stubborn", grace, []string{
			"upstream did not exit after stdin closed; sending SIGTERM",
			"upstream did not exit after SIGTERM; sending SIGKILL",
		}, []string{
			"stubborn: stdin closed, staying",
			"stubborn: got SIGTERM, staying",
		}, 2 * grace},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			opts := testOptions()
			opts.StopGrace = tc.grace
			h := startUpstream(t, helperConfig("child", tc.mode), opts)
			pid := h.waitUp(t).status.PID

			start := time.Now()
			if err := h.u.Close(); err != nil {
				t.Errorf("Close() = %v, want nil", err)
			}
			elapsed := time.Since(start)
			// Close has reaped the child: its pid is free.
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("after Close, kill(%d, 0) = %v, want ESRCH", pid, err)
			}
			if elapsed < tc.minTime {
				t.Errorf("Close() took %v, want at least %v (two grace periods)", elapsed, tc.minTime)
			}
			// Close also waited for the child's last stderr lines, so the
			// log is complete now.
			var warns, lines []string
			for _, r := range h.logs.all() {
				switch {
				case strings.HasPrefix(r.msg, "upstream did not exit"):
					warns = append(warns, r.msg)
				case r.msg == "upstream stderr" && r.attrs["line"] != "helper ready":
					lines = append(lines, r.attrs["line"])
				}
			}
			if !slices.Equal(warns, tc.wantWarns) {
				t.Errorf("stop stages logged = %q, want %q", warns, tc.wantWarns)
			}
			slices.Sort(lines)
			if want := slices.Sorted(slices.Values(tc.wantLines)); !slices.Equal(lines, want) {
				t.Errorf("child's stderr during stop = %q, want %q", lines, want)
			}
			if st := h.u.Status(); st.State != StateClosed || st.PID != 0 {
				t.Errorf("Status() after Close = %+v, want closed without PID", st)
			}
		})
	}
}

func TestCloseKillsProcessGroup(t *testing.T) {
	h := startUpstream(t, helperConfig("parent", "grandchild"), testOptions())
	pid := h.waitUp(t).status.PID
	rec := h.logs.wait(t, "the grandchild's pid", 1, func(r logRecord) bool {
		return r.msg == "upstream stderr" && strings.HasPrefix(r.attrs["line"], "grandchild ")
	})
	gpid, err := strconv.Atoi(strings.TrimPrefix(rec.attrs["line"], "grandchild "))
	if err != nil {
		t.Fatal(err)
	}
	if pgid, err := syscall.Getpgid(gpid); err != nil || pgid != pid {
		t.Fatalf("Getpgid(grandchild %d) = %d, %v; want the child's pid %d", gpid, pgid, err, pid)
	}
	t.Cleanup(func() {
		if t.Failed() { // it may be alive; if not, its pid may be another's
			syscall.Kill(gpid, syscall.SIGKILL)
		}
	})

	h.u.Close()
	// The grandchild is not ours to reap; wait until it is dead.
	waitUntil(t, "the grandchild is dead", func() bool { return processGone(gpid) })
}

func TestCloseIdempotent(t *testing.T) {
	t.Run("before Start", func(t *testing.T) {
		h := newHarness(helperConfig("never", "server"), testOptions())
		for i := range 2 {
			if err := h.u.Close(); err != nil {
				t.Errorf("Close() #%d = %v, want nil", i+1, err)
			}
		}
		h.u.Start() // must not start anything after Close
		if st := h.u.Status(); st.State != StateClosed {
			t.Errorf("Status().State = %q, want %q", st.State, StateClosed)
		}
		if _, err := h.u.Session(); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Session() = %v, want ErrUnavailable", err)
		}
	})
	t.Run("after Start", func(t *testing.T) {
		h := startUpstream(t, helperConfig("twice", "server"), testOptions())
		h.waitUp(t)
		var wg sync.WaitGroup
		for i := range 3 {
			wg.Go(func() {
				if err := h.u.Close(); err != nil {
					t.Errorf("concurrent Close() #%d = %v, want nil", i+1, err)
				}
			})
		}
		wg.Wait()
		if err := h.u.Close(); err != nil {
			t.Errorf("Close() after Close = %v, want nil", err)
		}
		h.u.Start() // must not restart it
		if st := h.u.Status(); st.State != StateClosed {
			t.Errorf("Status().State = %q, want %q", st.State, StateClosed)
		}
		_, err := h.u.Session()
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), `"twice"`) {
			t.Errorf("Session() after Close = %v, want ErrUnavailable naming the upstream", err)
		}
	})
}

func TestSupervisionRestartsKilledChild(t *testing.T) {
	h := startUpstream(t, helperConfig("phoenix", "server"), testOptions())
	first := h.waitUp(t)
	pid := first.status.PID

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	down := h.nextChange(t, "the child's death")
	if down.status.State != StateDown || down.status.LastError == nil {
		t.Errorf("Status() after kill = %+v, want down with LastError", down.status)
	}
	if !errors.Is(down.sessErr, ErrUnavailable) || !strings.Contains(down.sessErr.Error(), `"phoenix"`) {
		t.Errorf("Session() after kill = %v, want an error wrapping ErrUnavailable naming %q", down.sessErr, "phoenix")
	}
	if !emptyCatalog(down.catalog) {
		t.Errorf("Catalog() after kill = %v, want empty", catalogNames(down.catalog))
	}
	if down.status.PID != 0 {
		t.Errorf("Status().PID after kill = %d, want 0", down.status.PID)
	}

	again := h.nextChange(t, "reconnect")
	if again.status.State != StateUp || again.status.Restarts != 1 {
		t.Errorf("Status() after reconnect = %+v, want up with 1 restart", again.status)
	}
	if again.status.PID == 0 || again.status.PID == pid {
		t.Errorf("Status().PID after reconnect = %d, want a new pid (old %d)", again.status.PID, pid)
	}
	if !sameCatalog(again.catalog, wantCatalog()) {
		t.Errorf("Catalog() after reconnect = %v, want %v", catalogNames(again.catalog), wantCatalog())
	}
	if got := callText(t, h.u, "pid", nil); got != strconv.Itoa(again.status.PID) {
		t.Errorf("pid tool after reconnect = %s, want %d", got, again.status.PID)
	}
}

func TestBackoff(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		attempt  int
		min, max time.Duration
		want     time.Duration
	}{
		{0, 250 * ms, 30 * time.Second, 250 * ms},
		{1, 250 * ms, 30 * time.Second, 500 * ms},
		{2, 250 * ms, 30 * time.Second, time.Second},
		{6, 250 * ms, 30 * time.Second, 16 * time.Second},
		{7, 250 * ms, 30 * time.Second, 30 * time.Second},
		{1000, 250 * ms, 30 * time.Second, 30 * time.Second},
		{-1, 250 * ms, 30 * time.Second, 250 * ms},
		{0, time.Second, 500 * ms, 500 * ms},
		{3, 10 * ms, 10 * ms, 10 * ms},
	} {
		if got := backoff(tc.attempt, tc.min, tc.max); got != tc.want {
			t.Errorf("backoff(%d, %v, %v) = %v, want %v", tc.attempt, tc.min, tc.max, got, tc.want)
		}
	}
}

func TestCrashLoopBacksOff(t *testing.T) {
	opts := testOptions()
	opts.MinBackoff = 20 * time.Millisecond
	opts.MaxBackoff = 80 * time.Millisecond
	h := startUpstream(t, helperConfig("crasher", "crash"), opts)

	// The child's last words reach the log.
	h.logs.wait(t, "the crasher's stderr", 1, isStderr("crasher", "helper: fatal: boom"))

	const attempts = 5
	var times []time.Time
	var downSince time.Time
	for n := 1; n <= attempts; n++ {
		rec := h.logs.wait(t, "a failed connect", n, isMsg("upstream connect failed"))
		// Failure n-1 has been recorded: the state is down, and has been
		// since the first failure.
		if st := h.u.Status(); n == 2 {
			downSince = st.Since
		} else if n > 2 && (st.State != StateDown || !st.Since.Equal(downSince)) {
			t.Errorf("after %d failures Status() = %+v, want down since %v (the first failure)", n-1, st, downSince)
		}
		if got := rec.attrs["attempt"]; got != strconv.Itoa(n) {
			t.Errorf("connect failure %d logged attempt=%s, want %d", n, got, n)
		}
		if !strings.Contains(rec.attrs["err"], "exit status 3") {
			t.Errorf("connect failure %d err = %q, want it to mention exit status 3", n, rec.attrs["err"])
		}
		times = append(times, rec.time)
	}
	// Each retry waited at least its backoff: the delays grow, then cap.
	for i := 1; i < len(times); i++ {
		want := backoff(i-1, opts.MinBackoff, opts.MaxBackoff)
		if got := times[i].Sub(times[i-1]); got < want {
			t.Errorf("retry %d came %v after the failure, want at least %v", i, got, want)
		}
	}
	// The first failure was recorded before the second attempt was logged.
	st := h.u.Status()
	if st.State != StateDown || st.LastError == nil || !strings.Contains(st.LastError.Error(), "exit status 3") {
		t.Errorf("Status() = %+v, want down with a LastError mentioning exit status 3", st)
	}
	if st.Restarts != 0 || st.PID != 0 {
		t.Errorf("Status() = %+v, want no restarts and no PID (never up)", st)
	}
	_, err := h.u.Session()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), `"crasher"`) || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Session() = %v, want ErrUnavailable naming the upstream and the failure", err)
	}
	// A command that never connects does not flap OnChange.
	select {
	case s := <-h.changes:
		t.Errorf("OnChange fired for an upstream that never came up: %+v", s.status)
	default:
	}
}

// TestConnectFailures: an upstream that cannot connect is down, with a
// LastError that says why, and keeps retrying.
func TestConnectFailures(t *testing.T) {
	mute := helperConfig("mute", "sleep") // never answers, ignores SIGTERM
	// Long enough for the child (a race-built binary) to be ignoring
	// SIGTERM before the handshake times out, on a loaded machine too.
	mute.Timeout = time.Second
	for _, tc := range []struct {
		name     string
		cfg      Config
		wantIs   error
		wantText string
	}{
		{"missing command", Config{Transport: TransportStdio, Command: filepath.Join(t.TempDir(), "no-such-command")},
			os.ErrNotExist, "no-such-command"},
		{"unknown transport", Config{Transport: "carrier-pigeon"}, nil, `unknown transport "carrier-pigeon"`},
		// The handshake times out, and the child is stopped in stages.
		{"mute child", mute, context.DeadlineExceeded, "signal: killed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.StopGrace = 50 * time.Millisecond
			tc.cfg.Name = "failing"
			h := startUpstream(t, tc.cfg, opts)
			h.logs.wait(t, "a failed connect", 2, isMsg("upstream connect failed"))
			st := h.u.Status()
			if st.State != StateDown || st.LastError == nil {
				t.Fatalf("Status() = %+v, want down with LastError", st)
			}
			if tc.wantIs != nil && !errors.Is(st.LastError, tc.wantIs) {
				t.Errorf("Status().LastError = %v, want it to wrap %v", st.LastError, tc.wantIs)
			}
			if !strings.Contains(st.LastError.Error(), tc.wantText) {
				t.Errorf("Status().LastError = %v, want it to mention %q", st.LastError, tc.wantText)
			}
		})
	}
}

func TestStdioListChanged(t *testing.T) {
	h := startUpstream(t, helperConfig("growing", "server"), testOptions())
	h.waitUp(t)
	if got := callText(t, h.u, "add_tool", map[string]any{"name": "tool_new"}); got != "added tool_new" {
		t.Fatalf("add_tool = %q", got)
	}
	s := h.nextChange(t, "the refreshed catalog")
	if s.status.State != StateUp || !sameCatalog(s.catalog, wantCatalog("tool_new")) {
		t.Errorf("after list_changed: state %q, catalog %v; want up with %v", s.status.State, catalogNames(s.catalog), wantCatalog("tool_new"))
	}
	if !sameCatalog(h.u.Catalog(), wantCatalog("tool_new")) {
		t.Errorf("Catalog() = %v, want %v", catalogNames(h.u.Catalog()), wantCatalog("tool_new"))
	}
	if got := callText(t, h.u, "tool_new", nil); got != "tool_new" {
		t.Errorf("tool_new() = %q, want %q", got, "tool_new")
	}
}
