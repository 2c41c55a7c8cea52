package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain lets scenario 5 re-execute the test binary as its stream
// holder, as it re-executes the bench binary.
func TestMain(m *testing.M) {
	if isHolder() {
		os.Exit(runHolder(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestQuickRun runs the program on a scenario with a real demo upstream
// and one that is skipped, and checks what it reports: the table, the
// JSON, and that no child process outlives it. It never checks a timing.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the demo server and runs the gateway under load")
	}
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	mdPath := filepath.Join(t.TempDir(), "bench.md")
	var stdout, stderr bytes.Buffer
	args := []string{"--quick", "--duration", "100ms", "--scenarios", "1,6", "--json", jsonPath, "--markdown", mdPath}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("run(%q) = %d, want 0\nstdout:\n%s\nstderr:\n%s", args, code, stdout.String(), stderr.String())
	}
	if kids := children(t); len(kids) > 0 {
		t.Errorf("child processes %v outlived the run", kids)
	}

	table := stdout.String()
	for _, want := range []string{
		"1. tools/call, small payload, Streamable HTTP upstream  [ok]",
		"6. session store: Redis vs memory  [skipped]",
		"metric", "baseline", "subject", "ratio", "verdict",
		"1 client latency p50", "1 client latency p99", "32 clients throughput", "allocations per call",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}

	md, err := os.ReadFile(mdPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"### 1. tools/call, small payload, Streamable HTTP upstream",
		"| metric | baseline | subject | ratio | added | target | verdict | note |",
		"| 1 client latency p50 | ", "**skipped**: ",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("the Markdown report lacks %q:\n%s", want, md)
		}
	}

	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("the JSON report does not decode: %v\n%s", err, data)
	}
	if r.Machine.NumCPU == 0 || r.Machine.GoVersion == "" {
		t.Errorf("machine = %+v, want CPUs and Go version", r.Machine)
	}
	if got, want := len(r.Scenarios), 2; got != want {
		t.Fatalf("%d scenarios in the JSON, want %d", got, want)
	}
	s1, s6 := r.Scenarios[0], r.Scenarios[1]
	if s1.ID != 1 || s1.Status != StatusOK {
		t.Errorf("scenario 1: id %d, status %q (%s); want 1, ok", s1.ID, s1.Status, s1.Reason)
	}
	if s6.ID != 6 || s6.Status != StatusSkipped || s6.Reason == "" {
		t.Errorf("scenario 6: id %d, status %q, reason %q; want 6, skipped, a reason", s6.ID, s6.Status, s6.Reason)
	}

	judged := map[string]bool{}
	for _, row := range s1.Rows {
		if row.Metric == "" || row.Unit == "" || row.Subject == nil {
			t.Errorf("row %+v: want a metric, a unit and a subject value", row)
		}
		if row.Baseline != nil && row.Ratio == nil && *row.Baseline != 0 {
			t.Errorf("row %q has a baseline but no ratio", row.Metric)
		}
		switch row.Verdict {
		case "":
			if row.Target != "" {
				t.Errorf("row %q has target %q but no verdict", row.Metric, row.Target)
			}
		case Pass, Miss:
			judged[row.Metric] = true
		default:
			t.Errorf("row %q: verdict %q, want PASS, MISS or none", row.Metric, row.Verdict)
		}
	}
	for _, m := range []string{"1 client latency p50", "1 client latency p99", "32 clients throughput"} {
		if !judged[m] {
			t.Errorf("scenario 1 has no verdict for %q", m)
		}
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		scenarios []int
		duration  time.Duration
		wantErr   bool
	}{
		{nil, allScenarios, 5 * time.Second, false},
		{[]string{"--quick"}, allScenarios, 300 * time.Millisecond, false},
		{[]string{"--scenarios", "3, 1,3", "--duration", "2s"}, []int{1, 3}, 2 * time.Second, false},
		{[]string{"--scenarios", "9"}, nil, 0, true},
		{[]string{"--scenarios", "one"}, nil, 0, true},
		{[]string{"--cpuprofile", "a", "--profiledir", "b"}, nil, 0, true},
		{[]string{"extra"}, nil, 0, true},
	} {
		s, err := parseFlags(tc.args, &bytes.Buffer{})
		if (err != nil) != tc.wantErr {
			t.Errorf("parseFlags(%q) error = %v, want error: %v", tc.args, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if !slices.Equal(s.scenarios, tc.scenarios) || s.duration != tc.duration {
			t.Errorf("parseFlags(%q) = scenarios %v, duration %s; want %v, %s", tc.args, s.scenarios, s.duration, tc.scenarios, tc.duration)
		}
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {1, 1}} {
		if got := percentile(ds, tc.p); got != tc.want {
			t.Errorf("percentile(1..10, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil, 50) = %v, want 0", got)
	}
}

// children lists this process's child processes (Linux; nil elsewhere).
func children(t *testing.T) []string {
	t.Helper()
	if runtime.GOOS != "linux" {
		return nil
	}
	tasks, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread has exited
		}
		pids = append(pids, strings.Fields(string(b))...)
	}
	return pids
}

// Scenario 8 needs the peer's executable; without --peer it is skipped,
// saying how to get one, and starts nothing.
func TestPeerScenarioSkippedWithoutPeer(t *testing.T) {
	b := &bench{}
	err := b.scenarioPeer(context.Background(), &ScenarioResult{})
	var skip *skipError
	if !errors.As(err, &skip) || !strings.Contains(skip.reason, "npm install supergateway") {
		t.Errorf("scenarioPeer without --peer = %v, want a skip that says how to install the peer", err)
	}
}
