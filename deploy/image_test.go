package deploy

// The image without Docker: the Dockerfile's own `go build` command makes
// the binaries, which then run as the image runs them, on the image's
// config, with the stdio command paths mapped from the image's filesystem to
// the build directory.

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mcpgw/gateway/gateway"
)

const testVersion = "v0.0.0-deploy-test"

// buildImageBinaries runs the Dockerfile's go build for this machine's
// platform into a temporary directory, and returns a map from each file the
// final stage copies out of the builder to where it is here.
func buildImageBinaries(t *testing.T, df *dockerfileInfo) map[string]string {
	t.Helper()
	out := t.TempDir()
	gb := builderGoBuild(t, df, func(s string) string {
		return argRef.ReplaceAllStringFunc(s, func(ref string) string {
			switch name := argRef.FindStringSubmatch(ref)[1]; name {
			case "VERSION":
				return testVersion
			case "TARGETOS":
				return runtime.GOOS
			case "TARGETARCH":
				return runtime.GOARCH
			default:
				return df.args[name]
			}
		})
	})
	args := append([]string(nil), gb.args...)
	for i := range args {
		if args[i] == "-o" && i+1 < len(args) {
			args[i+1] = out + "/"
		}
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), gb.env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's go %s: %v\n%s", strings.Join(args, " "), err, b)
	}

	files := map[string]string{}
	for _, c := range df.final.copies {
		if c.from != df.stages[0].name {
			continue
		}
		for i, s := range c.srcs {
			rel, _ := strings.CutPrefix(s, gb.outDir)
			files[c.targets()[i]] = filepath.Join(out, rel)
		}
	}
	return files
}

func TestImage(t *testing.T) {
	df := parseDockerfile(t)
	files := buildImageBinaries(t, df)
	entry := files[df.final.entrypoint[0]]
	if entry == "" {
		t.Fatalf("ENTRYPOINT %s is not built by the Dockerfile's go build", df.final.entrypoint[0])
	}

	// Static binaries: distroless/static has no libc and no loader.
	for image, local := range files {
		f, err := elf.Open(local)
		if err != nil {
			t.Fatalf("%s: %v", image, err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked; the image has no libc (CGO_ENABLED=0)", image)
			}
		}
		f.Close()
	}

	// -X main.version reached a variable that `gateway version` prints.
	if b, err := exec.Command(entry, "version").Output(); err != nil || strings.TrimSpace(string(b)) != "gateway "+testVersion {
		t.Errorf("%s version = %q (%v); want %q: -X main.version in the Dockerfile does not reach cmd/gateway", df.final.entrypoint[0], b, err, "gateway "+testVersion)
	}

	// The image's config, with the image's paths mapped to the build
	// directory, validates and serves.
	cfgFile := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(cfgFile, mapCommands(t, readFile(t, dockerConfigFile), files), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(entry, "validate", "--config", cfgFile).CombinedOutput(); err != nil || strings.TrimSpace(string(b)) != "ok" {
		t.Fatalf("gateway validate on the image's config: %v\n%s", err, b)
	}

	// CMD, with --listen moved to a free loopback port.
	args := append(append([]string(nil), df.final.cmd...), "--listen", "127.0.0.1:0")
	args[slices.Index(args, "--config")+1] = cfgFile
	g := startGateway(t, entry, args)
	addr := g.waitFor(t, "gateway listening", "")["addr"]
	g.waitFor(t, "upstream connected", "demo")

	base := "http://" + addr
	body := httpGet(t, base+gateway.PathHealth)
	if body != "ok\n" {
		t.Errorf("GET %s = %q, want \"ok\\n\"", gateway.PathHealth, body)
	}
	var ready struct {
		Status    string `json:"status"`
		Upstreams map[string]struct {
			State string `json:"state"`
		} `json:"upstreams"`
		Catalog struct {
			Tools int `json:"tools"`
		} `json:"catalog"`
	}
	body = httpGet(t, base+gateway.PathReady)
	if err := json.Unmarshal([]byte(body), &ready); err != nil {
		t.Fatalf("GET %s = %s: %v", gateway.PathReady, body, err)
	}
	if ready.Status != "ready" || ready.Upstreams["demo"].State != "up" || ready.Catalog.Tools == 0 {
		t.Errorf("GET %s = %s; want ready, demo up, tools in the catalog", gateway.PathReady, body)
	}

	// SIGTERM, as `docker stop` and the kubelet send it: a clean exit, in
	// time, after stopping the demo child.
	children := childPIDs(t, g.cmd.Process.Pid)
	if runtime.GOOS == "linux" && len(children) == 0 {
		t.Error("the gateway has no child process, though the demo upstream is up")
	}
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.exited:
		if g.waitErr != nil {
			t.Errorf("after SIGTERM the gateway exited with %v, want 0", g.waitErr)
		}
	case <-time.After((gatewayDrainSeconds + stdioStopSeconds) * time.Second):
		t.Fatalf("the gateway did not exit within %ds of SIGTERM", gatewayDrainSeconds+stdioStopSeconds)
	}
	g.waitFor(t, "stopped", "")
	for _, pid := range children {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Errorf("child %d outlived the gateway", pid)
		}
	}
}

// childPIDs lists the processes whose parent is pid (Linux; elsewhere none).
func childPIDs(t *testing.T, pid int) []int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		_, rest, ok := strings.Cut(string(b[bytes.LastIndexByte(b, ')')+1:]), " ")
		fields := strings.Fields(rest)
		if !ok || len(fields) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(fields[1]); ppid == pid {
			child, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			out = append(out, child)
		}
	}
	return out
}

// mapCommands rewrites the absolute stdio commands of a config from image
// paths to the built files.
func mapCommands(t *testing.T, data []byte, files map[string]string) []byte {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	ups := lookup(root.Content[0], "upstreams")
	if ups == nil {
		t.Fatal("config has no upstreams")
	}
	for _, u := range ups.Content {
		if c := lookup(u, "command"); c != nil && path.IsAbs(c.Value) {
			local, ok := files[c.Value]
			if !ok {
				t.Fatalf("upstream command %s is not a file the image gets from the build", c.Value)
			}
			c.Value = local
		}
	}
	out, err := yaml.Marshal(&root)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runningGateway is a gateway process and what it has logged so far.
type runningGateway struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited and its log ended
	waitErr error         // cmd.Wait's result, once exited is closed

	mu      sync.Mutex // guards the fields below
	lines   []map[string]string
	ended   bool          // stderr reached EOF
	changed chan struct{} // closed, and replaced, whenever the fields change
}

// startGateway starts the binary; cleanup kills it if it still runs and
// waits for it and its log reader.
func startGateway(t *testing.T, bin string, args []string) *runningGateway {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &runningGateway{cmd: cmd, exited: make(chan struct{}), changed: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("gateway: %s", sc.Text())
			g.update(func() { g.lines = append(g.lines, parseLogLine(sc.Text())) })
		}
		g.update(func() { g.ended = true })
		// Wait closes the pipe, so only after the last read.
		g.waitErr = cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-g.exited
	})
	return g
}

func (g *runningGateway) update(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f()
	close(g.changed)
	g.changed = make(chan struct{})
}

var logAttr = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)

// parseLogLine reads a slog text or JSON line into its attributes.
func parseLogLine(line string) map[string]string {
	out := map[string]string{}
	if strings.HasPrefix(line, "{") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			for k, v := range m {
				out[k], _ = v.(string)
			}
		}
		return out
	}
	for _, m := range logAttr.FindAllStringSubmatch(line, -1) {
		v := m[2]
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		out[m[1]] = v
	}
	return out
}

// waitFor waits until the gateway has logged a line with msg (and, if not
// empty, upstream), and returns its attributes. It looks at the whole log,
// since events of different goroutines may be logged in either order.
func (g *runningGateway) waitFor(t *testing.T, msg, upstream string) map[string]string {
	t.Helper()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for {
		g.mu.Lock()
		lines, ended, changed := g.lines, g.ended, g.changed
		g.mu.Unlock()
		for _, l := range lines {
			if l["msg"] == msg && (upstream == "" || l["upstream"] == upstream) {
				return l
			}
		}
		if ended {
			t.Fatalf("the gateway's log ended without %q", msg)
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("no %q log line within a minute", msg)
		}
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s = %d %s, want 200", url, resp.StatusCode, b)
	}
	return string(b)
}
