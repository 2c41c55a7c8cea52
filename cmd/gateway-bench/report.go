// The report: what each scenario measured, printed as a table and written
// as JSON. Values keep their base units in JSON (microseconds, bytes,
// calls per second); the table formats them for reading.

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the whole run.
type Report struct {
	Machine        Machine           `json:"machine"`
	Settings       Settings          `json:"settings"`
	Started        time.Time         `json:"started"`
	ElapsedSeconds float64           `json:"elapsedSeconds"`
	Scenarios      []*ScenarioResult `json:"scenarios"`
}

// Machine describes where the numbers come from.
type Machine struct {
	NumCPU     int    `json:"numCPU"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"goVersion"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Kernel     string `json:"kernel,omitempty"`       // uname -r
	LoadStart  string `json:"loadAvgStart,omitempty"` // /proc/loadavg: the machine may be shared
	LoadEnd    string `json:"loadAvgEnd,omitempty"`
	GC         string `json:"gc"` // the collector settings of the process: GOGC, GOMEMLIMIT
}

// Settings are the knobs the run used.
type Settings struct {
	Quick           bool    `json:"quick"`
	SecondsPerSide  float64 `json:"secondsPerSide"`
	RoundSeconds    float64 `json:"roundSeconds"`
	Scenarios       []int   `json:"scenarios"`
	IdleSessions    int     `json:"idleSessions"`
	SSEStreamsTried int     `json:"sseStreamsTried"`
}

// Scenario statuses.
const (
	StatusOK          = "ok"
	StatusSkipped     = "skipped"
	StatusFailed      = "failed"
	StatusInterrupted = "interrupted"
)

// ScenarioResult is one scenario: a baseline, a subject, and rows that
// compare them.
type ScenarioResult struct {
	ID       int      `json:"id"`
	Name     string   `json:"name"`
	Baseline string   `json:"baseline,omitempty"` // what the baseline column measured
	Subject  string   `json:"subject,omitempty"`  // what the subject column measured
	Status   string   `json:"status"`
	Reason   string   `json:"reason,omitempty"` // why it was skipped or failed
	Notes    []string `json:"notes,omitempty"`
	Rows     []Row    `json:"rows"`
	Seconds  float64  `json:"seconds"`
}

// Units of Row values.
const (
	UnitMicros     = "us"
	UnitPerSecond  = "calls/s"
	UnitBytes      = "bytes"
	UnitCount      = "count"
	UnitAllocs     = "allocs"
	UnitGoroutines = "goroutines"
)

// Row is one metric. Ratio is Subject/Baseline; Added is Subject-Baseline.
// A row may lack a baseline (nothing to compare with) and then has neither.
type Row struct {
	Metric   string   `json:"metric"`
	Unit     string   `json:"unit"`
	Baseline *float64 `json:"baseline,omitempty"`
	Subject  *float64 `json:"subject,omitempty"`
	Ratio    *float64 `json:"ratio,omitempty"`
	Added    *float64 `json:"added,omitempty"`
	Target   string   `json:"target,omitempty"`
	Verdict  string   `json:"verdict,omitempty"` // PASS or MISS when there is a target
	Note     string   `json:"note,omitempty"`
}

// Verdicts.
const (
	Pass = "PASS"
	Miss = "MISS"
)

// compare returns a row comparing subject with baseline.
func compare(metric, unit string, baseline, subject float64) Row {
	r := Row{Metric: metric, Unit: unit, Baseline: ptr(baseline), Subject: ptr(subject)}
	if baseline != 0 {
		r.Ratio = ptr(subject / baseline)
	}
	r.Added = ptr(subject - baseline)
	return r
}

// single returns a row with only a subject value.
func single(metric, unit string, v float64) Row {
	return Row{Metric: metric, Unit: unit, Subject: ptr(v)}
}

// judge sets the row's target and verdict.
func (r Row) judge(target string, ok bool) Row {
	r.Target = target
	r.Verdict = Miss
	if ok {
		r.Verdict = Pass
	}
	return r
}

// withNote sets the row's note.
func (r Row) withNote(format string, args ...any) Row {
	r.Note = fmt.Sprintf(format, args...)
	return r
}

func ptr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func newReport(s settings) *Report {
	p := newPlan(s)
	return &Report{
		Machine: Machine{
			NumCPU:     runtime.NumCPU(),
			GOMAXPROCS: runtime.GOMAXPROCS(0),
			GoVersion:  runtime.Version(),
			OS:         runtime.GOOS,
			Arch:       runtime.GOARCH,
			Kernel:     readTrimmed("/proc/sys/kernel/osrelease"),
			LoadStart:  readTrimmed("/proc/loadavg"),
		},
		Settings: Settings{
			Quick:           s.quick,
			SecondsPerSide:  s.duration.Seconds(),
			RoundSeconds:    p.round.Seconds(),
			Scenarios:       s.scenarios,
			IdleSessions:    s.sessions,
			SSEStreamsTried: s.streams,
		},
		Started: time.Now(),
	}
}

func (r *Report) add(s *ScenarioResult) { r.Scenarios = append(r.Scenarios, s) }

func (r *Report) finish() {
	r.ElapsedSeconds = time.Since(r.Started).Seconds()
	r.Machine.LoadEnd = readTrimmed("/proc/loadavg")
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// printTable writes the human-readable report.
func (r *Report) printTable(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "gateway-bench: %d CPUs (GOMAXPROCS %d), %s %s/%s, %s, kernel %s, load %s\n",
		m.NumCPU, m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch, orDash(m.GC), orDash(m.Kernel), orDash(m.LoadStart))
	fmt.Fprintf(w, "%.1fs per side per measurement in %.2fs rounds, alternating sides; run took %.0fs\n",
		r.Settings.SecondsPerSide, r.Settings.RoundSeconds, r.ElapsedSeconds)
	for _, s := range r.Scenarios {
		fmt.Fprintf(w, "\n%d. %s  [%s]\n", s.ID, s.Name, s.Status)
		if s.Reason != "" {
			fmt.Fprintf(w, "   %s\n", s.Reason)
		}
		if s.Baseline != "" {
			fmt.Fprintf(w, "   baseline: %s\n   subject:  %s\n", s.Baseline, s.Subject)
		}
		for _, n := range s.Notes {
			fmt.Fprintf(w, "   note: %s\n", n)
		}
		if len(s.Rows) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "   metric\tbaseline\tsubject\tratio\tadded\ttarget\tverdict\tnote")
		for _, row := range s.Rows {
			fmt.Fprintf(tw, "   %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Metric,
				formatValue(row.Unit, row.Baseline, false), formatValue(row.Unit, row.Subject, false),
				formatRatio(row.Ratio), formatValue(row.Unit, row.Added, true),
				orDash(row.Target), orDash(row.Verdict), row.Note)
		}
		tw.Flush()
	}
}

// writeMarkdown writes the report to path as Markdown: the machine and
// settings, then each scenario's table, as BENCHMARKS.md publishes them.
func (r *Report) writeMarkdown(path string) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Run of %s: %d CPUs (GOMAXPROCS %d), %s %s/%s, kernel %s, %s; load average %s at the start, %s at the end; %.1f s per side per measurement in %.2f s rounds; %.0f s in all.\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), m.NumCPU, m.GOMAXPROCS, m.GoVersion, m.OS, m.Arch, orDash(m.Kernel), orDash(m.GC),
		orDash(loadAverage(m.LoadStart)), orDash(loadAverage(m.LoadEnd)), r.Settings.SecondsPerSide, r.Settings.RoundSeconds, r.ElapsedSeconds)
	for _, s := range r.Scenarios {
		fmt.Fprintf(&b, "\n### %d. %s\n\n", s.ID, s.Name)
		if s.Status != StatusOK {
			fmt.Fprintf(&b, "**%s**: %s\n", s.Status, s.Reason)
		}
		if s.Baseline != "" {
			fmt.Fprintf(&b, "Baseline: %s  \nSubject: %s.\n\n", s.Baseline, strings.TrimSuffix(s.Subject, "."))
		}
		if len(s.Rows) == 0 {
			continue
		}
		b.WriteString("| metric | baseline | subject | ratio | added | target | verdict | note |\n|---|--:|--:|--:|--:|---|---|---|\n")
		for _, row := range s.Rows {
			verdict := orDash(row.Verdict)
			if row.Verdict != "" {
				verdict = "**" + row.Verdict + "**"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", row.Metric,
				formatValue(row.Unit, row.Baseline, false), formatValue(row.Unit, row.Subject, false),
				formatRatio(row.Ratio), formatValue(row.Unit, row.Added, true),
				orDash(row.Target), verdict, strings.ReplaceAll(row.Note, "|", "/"))
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing the Markdown report: %w", err)
	}
	return nil
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage(loadavg string) string {
	f := strings.Fields(loadavg)
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// writeJSON writes the report to path.
func (r *Report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func formatRatio(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2fx", *v)
}

// formatValue formats v in unit; signed adds a leading + to positive values.
func formatValue(unit string, v *float64, signed bool) string {
	if v == nil {
		return "-"
	}
	x := *v
	sign := ""
	if signed && x >= 0 {
		sign = "+"
	}
	switch unit {
	case UnitMicros:
		return sign + formatMicros(x)
	case UnitPerSecond:
		return fmt.Sprintf("%s%.0f/s", sign, x)
	case UnitBytes:
		return sign + formatBytes(x)
	case UnitAllocs:
		return fmt.Sprintf("%s%.1f", sign, x)
	default:
		if x == math.Trunc(x) {
			return fmt.Sprintf("%s%.0f", sign, x)
		}
		return fmt.Sprintf("%s%.2f", sign, x)
	}
}

func formatMicros(us float64) string {
	a := math.Abs(us)
	switch {
	case a < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case a < 1e6:
		return fmt.Sprintf("%.2fms", us/1e3)
	default:
		return fmt.Sprintf("%.2fs", us/1e6)
	}
}

// formatBytes uses binary multiples: 1 KB = 1024 bytes.
func formatBytes(b float64) string {
	a := math.Abs(b)
	switch {
	case a < 1024:
		return fmt.Sprintf("%.0fB", b)
	case a < 1<<20:
		return fmt.Sprintf("%.1fKB", b/1024)
	case a < 1<<30:
		return fmt.Sprintf("%.1fMB", b/(1<<20))
	default:
		return fmt.Sprintf("%.2fGB", b/(1<<30))
	}
}

// micros converts d to microseconds.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
