// Command gateway-bench measures what the gateway costs: every scenario
// runs the same load directly against upstream MCP servers and through the
// gateway, in one run, and reports both with their ratio and the project's
// performance targets (PASS/MISS). BENCHMARKS.md publishes a run.
//
//	go run ./cmd/gateway-bench                  every scenario, 5s per side per measurement (about 5 minutes)
//	go run ./cmd/gateway-bench --quick          a smoke test (under a minute)
//	go run ./cmd/gateway-bench --scenarios 1,3 --json out.json --cpuprofile cpu.pprof
//
// Everything runs on loopback and is started by the program itself: the
// demo server (built from ./cmd/demo) as the Streamable HTTP and stdio
// upstream; go-sdk servers in this process where many upstreams are
// needed; redis-server, with --redis, for scenario 6; and the gateway in
// this process (package gateway, configured as cmd/gateway configures it),
// so that its heap, allocations and CPU can be read from here. Load comes
// from go-sdk clients, or from plain HTTP requests where a client's own
// work would hide the server's.
//
// # Scenarios
//
//  1. tools/call to a Streamable HTTP upstream: latency at 1 client,
//     throughput and CPU per call at 8, 32 and 128, allocations per call.
//  2. The same with a stdio upstream.
//  3. A new client's connect + initialize + tools/list, 1, 10, 50 upstreams.
//  4. 50 upstreams x 100 tools: tools/list latency, catalog memory.
//  5. Memory per idle session; how many SSE streams one gateway holds.
//  6. The Redis session store against the memory store.
//  7. 2026-07-28 stateless calls against 2025-11-25 sessionful ones.
//
// # Method
//
// The two sides of a comparison never run at once. A measurement is split
// into short rounds that alternate between them (A B, then B A, ...), so
// that noise from the machine (other processes, frequency changes, GC of
// earlier rounds) falls on both sides alike.
//
// CPU profiles (--cpuprofile, --profiledir) cover the whole process; the
// gateway's goroutines carry the pprof label role=gateway, the load
// generator's role=client and in-process upstreams' role=upstream, so
// `go tool pprof -tagfocus=role=gateway` shows the gateway alone.
//
// Child processes run in their own process groups and are stopped on
// exit, on Ctrl-C too. Scenario 5 re-executes this program as a child that
// holds the client ends of the SSE streams (holder.go).
//
// Exit codes: 0 the run completed (whatever the verdicts), 1 a scenario
// failed or the run was interrupted, 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgw/gateway/cmd/internal/gctune"
)

func main() {
	if isHolder() {
		os.Exit(runHolder(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// settings is the parsed command line.
type settings struct {
	quick      bool
	duration   time.Duration // per side of each measurement
	scenarios  []int
	jsonPath   string
	mdPath     string
	peerBin    string // scenario 8: supergateway's executable
	cpuProfile string
	profileDir string
	memProfile string
	demoBin    string
	redis      bool
	sessions   int // idle sessions per memory measurement (scenario 5)
	streams    int // SSE streams to try to hold (scenario 5)
	verbose    bool
}

// allScenarios are the scenario numbers, in the order they run.
var allScenarios = []int{1, 2, 3, 4, 5, 6, 7, 8}

func parseFlags(args []string, stderr io.Writer) (settings, error) {
	var s settings
	fs := flag.NewFlagSet("gateway-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&s.quick, "quick", false, "short measurements, for a smoke test (the whole run takes under a minute)")
	fs.DurationVar(&s.duration, "duration", 0, "how long each side of each measurement runs, split into interleaved rounds (default 5s; 300ms with --quick)")
	list := fs.String("scenarios", "", "comma-separated `scenarios` to run, e.g. 1,2,3 (default all: 1-8; 8 runs only with --peer)")
	fs.StringVar(&s.jsonPath, "json", "", "also write the results as JSON to `file`")
	fs.StringVar(&s.mdPath, "markdown", "", "also write the results as Markdown tables (as in BENCHMARKS.md) to `file`")
	fs.StringVar(&s.peerBin, "peer", "", "scenario 8: supergateway's `executable` (npm install supergateway@4.0.0: node_modules/.bin/supergateway)")
	fs.StringVar(&s.cpuProfile, "cpuprofile", "", "write a CPU profile of scenario 1 at 32 clients to `file`; gateway samples carry the label role=gateway")
	fs.StringVar(&s.profileDir, "profiledir", "", "write a CPU profile of each whole scenario to `dir`/scenarioN.pprof (not with --cpuprofile)")
	fs.StringVar(&s.memProfile, "memprofile", "", "write the process's allocation profile (every allocation site since start; use one scenario) to `file` at the end")
	fs.StringVar(&s.demoBin, "demo", "", "the demo server `binary` (default: built from ./cmd/demo into a temporary directory)")
	fs.BoolVar(&s.redis, "redis", false, "scenario 6: start redis-server (from PATH) on a free port, if the gateway accepts a Redis session store")
	fs.IntVar(&s.sessions, "sessions", 0, "scenario 5: idle sessions opened per memory measurement (default 2000; 200 with --quick)")
	fs.IntVar(&s.streams, "sse-streams", 0, "scenario 5: concurrent SSE streams to try to hold (default 10000; 1000 with --quick)")
	fs.BoolVar(&s.verbose, "v", false, "log the gateway's warnings and the progress of each measurement to stderr")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: gateway-bench [--quick] [--duration D] [--scenarios 1,2,...] [--json FILE] [--cpuprofile FILE]\n\n"+
			"Measures the MCP gateway against direct connections to its upstreams.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if s.cpuProfile != "" && s.profileDir != "" {
		return s, errors.New("--cpuprofile and --profiledir: use one (a process has one CPU profile at a time)")
	}
	if s.duration < 0 {
		return s, fmt.Errorf("--duration %s: must be positive", s.duration)
	}
	if s.duration == 0 {
		s.duration = 5 * time.Second
		if s.quick {
			s.duration = 300 * time.Millisecond
		}
	}
	if s.sessions <= 0 {
		s.sessions = 2000
		if s.quick {
			s.sessions = 200
		}
	}
	if s.streams <= 0 {
		s.streams = 10000
		if s.quick {
			s.streams = 1000
		}
	}
	s.scenarios = allScenarios
	if *list != "" {
		s.scenarios = nil
		for _, f := range strings.Split(*list, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || !slices.Contains(allScenarios, n) {
				return s, fmt.Errorf("--scenarios: %q is not a scenario; use numbers 1-8, e.g. 1,3", f)
			}
			if !slices.Contains(s.scenarios, n) {
				s.scenarios = append(s.scenarios, n)
			}
		}
		slices.Sort(s.scenarios)
	}
	if s.cpuProfile != "" && !slices.Contains(s.scenarios, 1) {
		return s, errors.New("--cpuprofile profiles scenario 1: add 1 to --scenarios, or use --profiledir")
	}
	return s, nil
}

// run runs the selected scenarios and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	s, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "gateway-bench: %v\n", err)
		return 2
	}
	log := slog.New(slog.DiscardHandler)
	if s.verbose {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	b := &bench{s: s, log: log, stderr: stderr, plan: newPlan(s)}
	defer b.cleanup()

	// The gateway runs in this process, with the collector settings
	// cmd/gateway gives itself; the clients of both sides share them.
	gc, err := gctune.Apply()
	if err != nil {
		fmt.Fprintf(stderr, "gateway-bench: %v\n", err)
	}
	report := newReport(s)
	report.Machine.GC = gc.String()
	fmt.Fprintf(stderr, "gateway-bench: %d CPUs, %s, %s, scenarios %v, %s per side per measurement\n",
		report.Machine.NumCPU, report.Machine.GoVersion, report.Machine.GC, s.scenarios, s.duration)

	code := 0
	// Everything this goroutine starts is load-generating client code
	// unless relabelled (the gateway: role=gateway; in-process upstreams:
	// role=upstream), which is what lets a CPU profile be split by role.
	pprof.Do(ctx, pprof.Labels("role", "client"), func(ctx context.Context) {
		for _, id := range s.scenarios {
			if ctx.Err() != nil {
				report.add(&ScenarioResult{ID: id, Name: scenarioNames[id], Status: StatusInterrupted})
				continue
			}
			fmt.Fprintf(stderr, "gateway-bench: scenario %d: %s\n", id, scenarioNames[id])
			start := time.Now()
			res := b.runProfiled(ctx, id)
			res.Seconds = time.Since(start).Seconds()
			report.add(res)
			switch res.Status {
			case StatusFailed, StatusInterrupted:
				code = 1
				fmt.Fprintf(stderr, "gateway-bench: scenario %d %s: %s\n", id, res.Status, res.Reason)
			}
		}
	})
	report.finish()
	if s.memProfile != "" {
		if err := writeAllocProfile(s.memProfile); err != nil {
			fmt.Fprintf(stderr, "gateway-bench: %v\n", err)
			code = 1
		}
	}
	report.printTable(stdout)
	if s.jsonPath != "" {
		if err := report.writeJSON(s.jsonPath); err != nil {
			fmt.Fprintf(stderr, "gateway-bench: %v\n", err)
			code = 1
		}
	}
	if s.mdPath != "" {
		if err := report.writeMarkdown(s.mdPath); err != nil {
			fmt.Fprintf(stderr, "gateway-bench: %v\n", err)
			code = 1
		}
	}
	return code
}

// scenarioNames are the scenarios' one-line descriptions.
var scenarioNames = map[int]string{
	1: "tools/call, small payload, Streamable HTTP upstream",
	2: "tools/call, small payload, stdio upstream",
	3: "cold client: connect + initialize + tools/list (all pages)",
	4: "large catalog: 50 upstreams x 100 tools",
	5: "sessions: memory per idle session, concurrent SSE streams",
	6: "session store: Redis vs memory",
	7: "2026-07-28 stateless vs 2025-11-25 sessionful calls",
	8: "peer bridge (supergateway from npm) vs this gateway, per-session stdio",
}

// bench holds what the scenarios share: the settings, the demo binary and
// the cleanups of everything started for more than one scenario.
type bench struct {
	s      settings
	plan   plan
	log    *slog.Logger // the gateway's log
	stderr io.Writer

	demo     string   // the demo server binary, once built
	cleanups []func() // run in reverse by cleanup
}

// cleanup undoes what the bench set up, last first.
func (b *bench) cleanup() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	b.cleanups = nil
}

// logf reports progress with -v.
func (b *bench) logf(format string, args ...any) {
	if b.s.verbose {
		fmt.Fprintf(b.stderr, "gateway-bench:   "+format+"\n", args...)
	}
}

// runProfiled runs one scenario, CPU-profiled with --profiledir.
func (b *bench) runProfiled(ctx context.Context, id int) *ScenarioResult {
	if b.s.profileDir == "" {
		return b.runScenario(ctx, id)
	}
	path := filepath.Join(b.s.profileDir, fmt.Sprintf("scenario%d.pprof", id))
	if err := os.MkdirAll(b.s.profileDir, 0o755); err != nil {
		return &ScenarioResult{ID: id, Name: scenarioNames[id], Status: StatusFailed, Reason: err.Error()}
	}
	stop, err := startCPUProfile(path)
	if err != nil {
		return &ScenarioResult{ID: id, Name: scenarioNames[id], Status: StatusFailed, Reason: err.Error()}
	}
	res := b.runScenario(ctx, id)
	if err := stop(); err != nil && res.Status == StatusOK {
		res.Status, res.Reason = StatusFailed, err.Error()
	}
	res.Notes = append(res.Notes, "CPU profile of the whole scenario in "+path)
	return res
}

// runScenario runs one scenario and turns its error into a status.
func (b *bench) runScenario(ctx context.Context, id int) *ScenarioResult {
	res := &ScenarioResult{ID: id, Name: scenarioNames[id], Status: StatusOK}
	var err error
	switch id {
	case 1:
		err = b.scenarioHTTPCalls(ctx, res)
	case 2:
		err = b.scenarioStdioCalls(ctx, res)
	case 3:
		err = b.scenarioColdStart(ctx, res)
	case 4:
		err = b.scenarioLargeCatalog(ctx, res)
	case 5:
		err = b.scenarioSessions(ctx, res)
	case 6:
		err = b.scenarioStore(ctx, res)
	case 7:
		err = b.scenarioRevisions(ctx, res)
	case 8:
		err = b.scenarioPeer(ctx, res)
	}
	var skip *skipError
	switch {
	case err == nil:
	case errors.As(err, &skip):
		res.Status, res.Reason = StatusSkipped, skip.reason
	case ctx.Err() != nil:
		res.Status, res.Reason = StatusInterrupted, "interrupted"
	default:
		res.Status, res.Reason = StatusFailed, err.Error()
	}
	return res
}

// skipError says why a scenario did not run.
type skipError struct{ reason string }

func (e *skipError) Error() string { return "skipped: " + e.reason }

// demoBinary returns the demo server binary, building it on first use.
func (b *bench) demoBinary(ctx context.Context) (string, error) {
	if b.demo != "" {
		return b.demo, nil
	}
	if b.s.demoBin != "" {
		b.demo = b.s.demoBin
		return b.demo, nil
	}
	dir, err := os.MkdirTemp("", "gateway-bench-")
	if err != nil {
		return "", err
	}
	b.cleanups = append(b.cleanups, func() { os.RemoveAll(dir) })
	bin, err := buildDemo(ctx, dir)
	if err != nil {
		return "", err
	}
	b.demo = bin
	return bin, nil
}
