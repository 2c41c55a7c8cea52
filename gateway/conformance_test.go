package gateway

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// The official MCP conformance suites (0.1.16 for the 2025 revisions,
// 0.2.0-alpha.12 for 2026-07-28) against the go-sdk's reference server,
// directly and through the gateway (reference server as an HTTP and as a
// stdio upstream): every scenario that passes directly must pass through
// the gateway. The script installs the suites from the lock file (npm) and
// takes about a minute; -short skips it.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("conformance suites skipped in -short mode")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Fatalf("the conformance suites need npm (apt-get install npm): %v", err)
	}
	script := filepath.Join("testdata", "conformance", "run.sh")
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	summary, err := os.ReadFile(filepath.Join("testdata", "conformance", "results", "summary.txt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("conformance summary:\n%s", summary)

	rows := regexp.MustCompile(`(?m)^(\S+).*?\s(a-direct|b-gateway-http|c-gateway-stdio)\s+(\d+)/(\d+)`).FindAllSubmatch(summary, -1)
	if len(rows) != 6 {
		t.Fatalf("summary has %d result rows, want 6 (2 suites x 3 cases)", len(rows))
	}
	for _, r := range rows {
		if passed, _ := strconv.Atoi(string(r[3])); passed == 0 {
			t.Errorf("%s %s: no scenario passed; the suite did not run", r[1], r[2])
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^(\S+ \S+): (\d+) scenario\(s\) pass directly but fail through the gateway`).FindAllSubmatch(summary, -1) {
		if string(m[2]) != "0" {
			t.Errorf("%s: %s scenario(s) pass directly but fail through the gateway (see the summary above)", m[1], m[2])
		}
	}
}
