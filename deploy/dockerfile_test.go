package deploy

// ../Dockerfile and ../.dockerignore, read as Docker would read them, as far
// as this test needs.

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type stage struct {
	base, name      string
	copies          []copyInstr
	cmd, entrypoint []string
	expose          []string
	user            string
	runs            []string
	env             []string
	healthcheck     bool
}

type copyInstr struct {
	from string   // --from stage, or "" for the build context
	srcs []string // sources
	dest string
}

type dockerfileInfo struct {
	args   map[string]string // global ARG defaults
	stages []*stage
	final  *stage
}

// finalFiles lists the absolute paths the final stage copies files to.
func (d *dockerfileInfo) finalFiles() []string {
	var out []string
	for _, c := range d.final.copies {
		out = append(out, c.targets()...)
	}
	return out
}

// targets lists where c puts each of its sources.
func (c copyInstr) targets() []string {
	var out []string
	for _, s := range c.srcs {
		if strings.HasSuffix(c.dest, "/") {
			out = append(out, path.Join(c.dest, path.Base(s)))
		} else {
			out = append(out, path.Clean(c.dest))
		}
	}
	return out
}

var argRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

// parseDockerfile reads the instructions this test cares about. It joins
// continuation lines and drops comments, as Docker does; it is not a full
// Dockerfile parser.
func parseDockerfile(t *testing.T) *dockerfileInfo {
	t.Helper()
	var instrs []string
	var cur strings.Builder
	for _, line := range strings.Split(string(readFile(t, dockerfilePath)), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || trimmed == "" {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		instrs = append(instrs, cur.String())
		cur.Reset()
	}

	d := &dockerfileInfo{args: map[string]string{}}
	var st *stage
	for _, in := range instrs {
		kw, rest, _ := strings.Cut(in, " ")
		rest = strings.TrimSpace(rest)
		kw = strings.ToUpper(kw)
		if st == nil && kw != "ARG" && kw != "FROM" {
			t.Fatalf("Dockerfile: %s before the first FROM", kw)
		}
		switch kw {
		case "ARG":
			if st == nil {
				name, def, _ := strings.Cut(rest, "=")
				d.args[name] = strings.Trim(def, `"`)
			}
		case "FROM":
			st = &stage{}
			fields := strings.Fields(rest)
			for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
				fields = fields[1:]
			}
			if len(fields) == 0 {
				t.Fatalf("Dockerfile: FROM without an image: %q", in)
			}
			st.base = argRef.ReplaceAllStringFunc(fields[0], func(ref string) string {
				return d.args[argRef.FindStringSubmatch(ref)[1]]
			})
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				st.name = fields[2]
			}
			d.stages = append(d.stages, st)
		case "COPY", "ADD":
			var c copyInstr
			var args []string
			if strings.HasPrefix(rest, "[") {
				args = jsonArray(t, in, rest)
			} else {
				fields := strings.Fields(rest)
				for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
					if v, ok := strings.CutPrefix(fields[0], "--from="); ok {
						c.from = v
					}
					fields = fields[1:]
				}
				args = fields
			}
			if len(args) < 2 {
				t.Fatalf("Dockerfile: %q needs a source and a destination", in)
			}
			c.srcs, c.dest = args[:len(args)-1], args[len(args)-1]
			st.copies = append(st.copies, c)
		case "CMD":
			st.cmd = jsonArray(t, in, rest)
		case "ENTRYPOINT":
			st.entrypoint = jsonArray(t, in, rest)
		case "EXPOSE":
			for _, f := range strings.Fields(rest) {
				st.expose = append(st.expose, strings.TrimSuffix(f, "/tcp"))
			}
		case "USER":
			st.user = rest
		case "RUN":
			st.runs = append(st.runs, rest)
		case "ENV":
			st.env = append(st.env, rest)
		case "HEALTHCHECK":
			st.healthcheck = true
		}
	}
	if len(d.stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a builder and a runtime stage", len(d.stages))
	}
	d.final = d.stages[len(d.stages)-1]
	return d
}

// jsonArray parses the exec form ["a", "b"], which CMD and ENTRYPOINT must
// use: the shell form needs /bin/sh, which distroless lacks.
func jsonArray(t *testing.T, in, s string) []string {
	t.Helper()
	var out []string
	if err := yaml.Unmarshal([]byte(s), &out); err != nil || !strings.HasPrefix(s, "[") {
		t.Fatalf("Dockerfile: %q must use the exec form [\"...\"] (there is no shell in the image)", in)
	}
	return out
}

// goBuild is the `go build` command of the builder stage.
type goBuild struct {
	env      []string // NAME=value assignments before it, and the stage's ENV
	args     []string // after "go"
	outDir   string   // its -o directory
	packages []string // ./cmd/... arguments
}

// shellWords splits s into words as sh would for the simple commands a
// Dockerfile RUN holds: whitespace separates, double and single quotes
// group. Expansions are left as they are.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

var envAssign = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// builderGoBuild finds the one RUN of the builder stages that runs
// `go build`, and returns that command with its ${ARG}s expanded by expand.
func builderGoBuild(t *testing.T, df *dockerfileInfo, expand func(string) string) *goBuild {
	t.Helper()
	var found []*goBuild
	for _, st := range df.stages[:len(df.stages)-1] {
		for _, run := range st.runs {
			for _, cmd := range regexp.MustCompile(`&&|;`).Split(run, -1) {
				words := shellWords(cmd)
				for len(words) > 0 && strings.HasPrefix(words[0], "--") {
					words = words[1:] // RUN --mount=...
				}
				gb := &goBuild{}
				for _, e := range st.env {
					for _, w := range shellWords(e) {
						gb.env = append(gb.env, expand(w))
					}
				}
				for len(words) > 0 && envAssign.MatchString(words[0]) {
					gb.env = append(gb.env, expand(words[0]))
					words = words[1:]
				}
				if len(words) < 2 || words[0] != "go" || words[1] != "build" {
					continue
				}
				for i := 1; i < len(words); i++ {
					w := expand(words[i])
					gb.args = append(gb.args, w)
					switch {
					case w == "-o" && i+1 < len(words):
						gb.outDir = expand(words[i+1])
					case strings.HasPrefix(w, "./"):
						gb.packages = append(gb.packages, w)
					}
				}
				found = append(found, gb)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("Dockerfile: want one `go build` in the builder, found %d", len(found))
	}
	gb := found[0]
	if !strings.HasSuffix(gb.outDir, "/") {
		t.Fatalf("Dockerfile: go build -o %q; want a directory (ending in /) for the binaries", gb.outDir)
	}
	return gb
}

// readmeBuildPackages returns the packages README.md's `go build` commands
// build.
func readmeBuildPackages(t *testing.T) []string {
	t.Helper()
	var pkgs []string
	for _, line := range strings.Split(string(readFile(t, readmePath)), "\n") {
		for _, cmd := range strings.Split(line, "&&") {
			words := shellWords(cmd)
			if len(words) < 2 || words[0] != "go" || words[1] != "build" {
				continue
			}
			for _, w := range words[2:] {
				if strings.HasPrefix(w, "./") && !slices.Contains(pkgs, w) {
					pkgs = append(pkgs, w)
				}
			}
		}
	}
	slices.Sort(pkgs)
	return pkgs
}

func TestDockerfile(t *testing.T) {
	df := parseDockerfile(t)
	final := df.final

	// The final stage: distroless static (or scratch), as a numeric
	// non-root user, no HEALTHCHECK (Kubernetes probes the endpoints).
	if !(strings.HasPrefix(final.base, "gcr.io/distroless/static") && strings.HasSuffix(final.base, ":nonroot") || final.base == "scratch") {
		t.Errorf("final stage FROM %s; want gcr.io/distroless/static-*:nonroot (or scratch)", final.base)
	}
	uid, _, _ := strings.Cut(final.user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("final stage USER %q; want a numeric non-root user (65532), so that runAsNonRoot can verify it", final.user)
	}
	for i, st := range df.stages {
		if st.healthcheck {
			t.Errorf("stage %d has a HEALTHCHECK; the image has no shell or client for it, and Kubernetes probes /healthz and /readyz", i)
		}
	}
	names := map[string]bool{}
	for i, st := range df.stages {
		for _, c := range st.copies {
			if c.from != "" && !names[c.from] {
				t.Errorf("stage %d copies --from=%s, which is not an earlier stage", i, c.from)
			}
		}
		names[st.name] = true
	}

	// ENTRYPOINT is a binary the final stage copies; CMD's --config is the
	// image's config, copied from the file TestDockerConfig loads.
	if len(final.entrypoint) != 1 || !slices.Contains(df.finalFiles(), final.entrypoint[0]) {
		t.Errorf("ENTRYPOINT %q; want the gateway binary the final stage copies (%v)", final.entrypoint, df.finalFiles())
	}
	cfgPath := configFlag(final.cmd)
	if cfgPath == "" {
		t.Fatalf("CMD %q has no --config", final.cmd)
	}
	copied := false
	for _, c := range final.copies {
		if slices.Contains(c.targets(), cfgPath) {
			copied = true
			if c.from != "" || !slices.Equal(c.srcs, []string{dockerConfigCtx}) {
				t.Errorf("%s is copied from %v (stage %q), want %s from the build context", cfgPath, c.srcs, c.from, dockerConfigCtx)
			}
		}
	}
	if !copied {
		t.Errorf("CMD's --config %s is not a COPY destination of the final stage (%v)", cfgPath, df.finalFiles())
	}

	// The builder: Go at least go.mod's (golang images set
	// GOTOOLCHAIN=local), modules downloaded before the sources are copied.
	build := df.stages[0]
	goVer, ok := strings.CutPrefix(build.base, "golang:")
	if !ok {
		t.Fatalf("builder FROM %s, want golang:<version>", build.base)
	}
	goVer, _, _ = strings.Cut(goVer, "-")
	if want := goDirective(t); !versionAtLeast(goVer, want) {
		t.Errorf("builder Go %s is older than go.mod's go %s", goVer, want)
	}
	var order []string
	for _, c := range build.copies {
		order = append(order, strings.Join(c.srcs, " "))
	}
	if len(order) < 2 || order[0] != "go.mod go.sum" || !strings.Contains(strings.Join(build.runs, "\n"), "go mod download") {
		t.Errorf("builder copies %q; want go.mod go.sum first, then `go mod download`, then the sources", order)
	}

	// The build command: static, trimmed, versioned; the README's
	// packages, which exist; and the binaries the final stage copies.
	gb := builderGoBuild(t, df, func(s string) string { return s })
	all := strings.Join(append(gb.env, gb.args...), " ")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "-X main.version=${VERSION}"} {
		if !strings.Contains(all, want) {
			t.Errorf("the builder's go build (with its ENV) lacks %q: %s", want, all)
		}
	}
	for _, p := range gb.packages {
		if !isMainPackage(t, filepath.Join(repoRoot, p)) {
			t.Errorf("go build %s: not a main package in this repository", p)
		}
	}
	pkgs := slices.Sorted(slices.Values(gb.packages))
	if readme := readmeBuildPackages(t); !slices.Equal(pkgs, readme) {
		t.Errorf("the Dockerfile builds %v, README.md's `go build` commands %v; keep them the same", pkgs, readme)
	}
	for _, c := range final.copies {
		if c.from != build.name {
			continue
		}
		for _, s := range c.srcs {
			rel, ok := strings.CutPrefix(s, gb.outDir)
			if !ok || !slices.ContainsFunc(gb.packages, func(p string) bool { return path.Base(p) == rel }) {
				t.Errorf("the final stage copies %s, which go build -o %s does not make", s, gb.outDir)
			}
		}
	}
}

// isMainPackage reports whether dir holds a non-test Go file of package main.
func isMainPackage(t *testing.T, dir string) bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		if regexp.MustCompile(`(?m)^package main\s*$`).Match(readFile(t, filepath.Join(dir, e.Name()))) {
			return true
		}
	}
	return false
}

func TestDockerignore(t *testing.T) {
	var patterns []string
	for _, line := range strings.Split(string(readFile(t, dockerignorePath)), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	// What the build needs: the modules, the sources of the binaries (and
	// the packages they import), the demo's embedded data, the image's
	// config.
	for _, p := range []string{"go.mod", "go.sum", dockerConfigCtx, "cmd/gateway/main.go", "cmd/demo/main.go",
		"cmd/demo/data/alerts.json", "gateway/config.go", "auth/auth.go", "upstream/upstream.go", "sessionstore/store.go"} {
		if ignored(patterns, p) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", p)
		}
	}
	// Hundreds of MB of test fixtures (node_modules), the repository's
	// history and the manifests have no business in the build context.
	for _, p := range []string{".git/HEAD", "gateway/testdata/conformance/package.json",
		"gateway/testdata/tsclient/node_modules/x/package.json", "gateway/config_test.go",
		"deploy/kubernetes/base/deployment.yaml", "deploy/deploy_test.go"} {
		if !ignored(patterns, p) {
			t.Errorf(".dockerignore does not exclude %s", p)
		}
	}
}

// ignored approximates Docker's .dockerignore rules: the last matching
// pattern wins, "!" re-includes, a pattern matching a parent directory
// matches everything below it, "**" matches any number of directories.
func ignored(patterns []string, file string) bool {
	out := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = path.Clean(strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/"))
		re := regexp.MustCompile("^" + globToRegexp(p) + "(/.*)?$")
		if re.MatchString(file) {
			out = !neg
		}
	}
	return out
}

func globToRegexp(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}

func goDirective(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(string(readFile(t, goModPath)), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("go.mod has no go directive")
	return ""
}

// versionAtLeast compares dotted Go versions; a missing component in have
// (a floating tag such as 1.26) means its newest release, so it matches.
func versionAtLeast(have, want string) bool {
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i := range w {
		if i >= len(h) {
			return true
		}
		hn, err1 := strconv.Atoi(h[i])
		wn, err2 := strconv.Atoi(w[i])
		if err1 != nil || err2 != nil {
			return false
		}
		if hn != wn {
			return hn > wn
		}
	}
	return true
}
