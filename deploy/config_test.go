package deploy

// The gateway configs the image and the overlays carry, loaded with the
// gateway's own loader, in the environment their container gives them.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mcpgw/gateway/gateway"
)

// fakeEnv is a container's environment, as the config loader sees it; it
// records every lookup.
type fakeEnv struct {
	vars   map[string]string
	lookup []string
}

func (e *fakeEnv) LookupEnv(k string) (string, bool) {
	e.lookup = append(e.lookup, k)
	v, ok := e.vars[k]
	return v, ok
}

// secretSample makes a value of the kind a Secret key holds, as
// secrets.env.example says to generate it: the request state key is 32
// bytes of base64, everything else a hex password (which is URL-safe).
func secretSample(key string) string {
	b := make([]byte, 32)
	rand.Read(b)
	if strings.HasSuffix(key, "REQUEST_STATE_KEY") {
		return base64.StdEncoding.EncodeToString(b)
	}
	return hex.EncodeToString(b)
}

// containerEnv is the environment the kubelet would give c: literal values,
// the pod's name, and Secret keys (optional ones only if withOptional; they
// may be missing from the Secret). Other sources fail the test, since it
// could not know their values.
func containerEnv(t *testing.T, c *container, withOptional bool) *fakeEnv {
	t.Helper()
	if len(c.EnvFrom) > 0 {
		t.Errorf("container %q uses envFrom; list each variable, so that every one the config needs is visibly provided", c.Name)
	}
	env := &fakeEnv{vars: map[string]string{}}
	for _, e := range c.Env {
		switch vf := e.ValueFrom; {
		case vf == nil:
			env.vars[e.Name] = e.Value
		case vf.FieldRef != nil && vf.FieldRef.FieldPath == "metadata.name":
			env.vars[e.Name] = gatewayName + "-7d9f8b6c4-x2x7q"
		case vf.SecretKeyRef != nil:
			if !vf.SecretKeyRef.Optional || withOptional {
				env.vars[e.Name] = secretSample(vf.SecretKeyRef.Key)
			}
		default:
			t.Errorf("container %q env %s: a source this test cannot stand in for; extend containerEnv", c.Name, e.Name)
		}
	}
	return env
}

var varRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// referencedVars returns the variables text references in ${VAR} form
// (comments included), and which of those have a :-default.
func referencedVars(text string) (all, defaulted map[string]bool) {
	all, defaulted = map[string]bool{}, map[string]bool{}
	for _, m := range varRef.FindAllStringSubmatch(text, -1) {
		if m[1] == "" {
			continue
		}
		all[m[1]] = true
		if m[2] != "" {
			defaulted[m[1]] = true
		}
	}
	return all, defaulted
}

// expandedConfigValue returns the scalar at keys in the config text, with
// ${VAR}s expanded from env as the gateway would, or "" if there is none.
// It reads keys that the gateway's Config may not know (yet).
func expandedConfigValue(t *testing.T, text string, env *fakeEnv, keys ...string) string {
	t.Helper()
	docs, err := yamlDocs([]byte(text))
	if err != nil || len(docs) != 1 {
		t.Fatalf("config: %v", err)
	}
	n := lookup(docs[0], keys...)
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return varRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
		if ref == "$$" {
			return "$"
		}
		m := varRef.FindStringSubmatch(ref)
		if v, ok := env.vars[m[1]]; ok {
			return v
		}
		return strings.TrimPrefix(m[2], ":-")
	})
}

// overlayConfig loads the config the gateway's Deployment in r mounts, in
// the environment the Deployment gives it, with the gateway's own loader
// (gateway.ParseConfig: strict decoding, ${VAR} expansion, defaults,
// Validate; what `gateway validate` runs). It fails the test with every
// problem the loader reports.
func overlayConfig(t *testing.T, r *rendered) *gateway.Config {
	t.Helper()
	d, c := gatewayDeployment(t, r)
	cfgPath, text := mountedConfig(t, r, d, c)
	env := containerEnv(t, c, false)
	cfg, err := gateway.ParseConfig([]byte(text), path.Dir(cfgPath), env.LookupEnv)

	// Whatever the loader thinks: every variable it looked up without a
	// default is one the container must provide.
	_, defaulted := referencedVars(text)
	var missing []string
	for _, v := range env.lookup {
		if _, ok := env.vars[v]; !ok && !defaulted[v] && !slices.Contains(missing, v) {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s: the config uses ${%s}, which Deployment %s does not provide (add each to the container's env; secrets from Secret %s, as required keys)",
			r.dir, strings.Join(missing, "}, ${"), gatewayName, secretName)
	}
	if err != nil {
		t.Fatalf("%s: the config mounted at %s does not load with gateway.ParseConfig (what `gateway validate` runs); every problem:\n  %s",
			r.dir, cfgPath, strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return cfg
}

// checkListen checks that cfg listens beyond loopback (or the Service and
// published ports could not reach it) and returns the port.
func checkListen(t *testing.T, what string, cfg *gateway.Config) int {
	t.Helper()
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		t.Fatalf("%s: listen %q: %v", what, cfg.Listen, err)
	}
	if ip, err := netip.ParseAddr(host); strings.EqualFold(host, "localhost") || err == nil && ip.IsLoopback() {
		t.Errorf("%s: listen %q is loopback; unreachable from outside the container", what, cfg.Listen)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port == 0 {
		t.Fatalf("%s: listen %q needs a fixed port", what, cfg.Listen)
	}
	return port
}

// checkStdioCommandsInImage checks that each stdio upstream runs a program
// the image's final stage contains: distroless has nothing else.
func checkStdioCommandsInImage(t *testing.T, what string, cfg *gateway.Config, df *dockerfileInfo) {
	t.Helper()
	for _, u := range cfg.Upstreams {
		if u.Transport != gateway.TransportStdio {
			continue
		}
		if !path.IsAbs(u.Command) || !slices.Contains(df.finalFiles(), u.Command) {
			t.Errorf("%s: upstream %q runs %q, which the image's final stage does not COPY (it has %v)", what, u.Name, u.Command, df.finalFiles())
		}
	}
}

func TestOverlayConfig(t *testing.T) {
	df := parseDockerfile(t)
	tree := loadKustomizeTree(t)
	for _, dir := range tree.overlays() {
		t.Run(path.Base(dir), func(t *testing.T) {
			r := render(t, dir)
			d, c := gatewayDeployment(t, r)
			_, text := mountedConfig(t, r, d, c)

			// Every variable from a Secret is one the config references
			// (in use, or in a commented-out example): no dead keys.
			all, _ := referencedVars(text)
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && !all[e.Name] {
					t.Errorf("env %s comes from Secret %s but the config never references ${%s}", e.Name, e.ValueFrom.SecretKeyRef.Name, e.Name)
				}
			}

			cfg := overlayConfig(t, r)
			if port := checkListen(t, "config", cfg); port != c.Ports[0].ContainerPort {
				t.Errorf("the config listens on %d, the container port is %d", port, c.Ports[0].ContainerPort)
			}
			if !strings.HasPrefix(cfg.PublicURL, "https://") {
				t.Errorf("public_url %q; clients reach a production gateway over https", cfg.PublicURL)
			}
			if cfg.Auth.Mode != "oauth2" || cfg.Auth.AllowUnauthenticated {
				t.Errorf("auth.mode %q, allow_unauthenticated %v; a cluster gateway authenticates its callers", cfg.Auth.Mode, cfg.Auth.AllowUnauthenticated)
			}
			// Several replicas need one session store and one sealing key.
			if cfg.SessionStore.Type != "redis" {
				t.Errorf("session_store.type %q; %d replicas need the shared redis store", cfg.SessionStore.Type, wantReplicas)
			}
			if k, err := cfg.RequestState.StateKey(); err != nil || k == nil {
				t.Errorf("request_state.key is unset (%v); every replica must share one, or retries that land elsewhere fail", err)
			}
			if cfg.Log.Format != "json" {
				t.Errorf("log.format %q; json for the cluster's log collector", cfg.Log.Format)
			}
			checkStdioCommandsInImage(t, "config", cfg, df)
			if id := expandedConfigValue(t, text, containerEnv(t, c, false), "replica", "id"); id == "" || strings.Contains(id, "$") {
				t.Errorf("replica.id %q; want the pod's name, from the environment", id)
			}

			// The commented-out upstream is a working example: uncommented,
			// with the optional secrets present, it loads and takes its
			// secret from the environment.
			example, n := uncommentUpstreams(text)
			if n == 0 {
				return
			}
			env := containerEnv(t, c, true)
			ecfg, err := gateway.ParseConfig([]byte(example), "/etc/gateway", env.LookupEnv)
			if err != nil {
				t.Fatalf("the commented upstream example, uncommented, does not load:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
			}
			for _, u := range ecfg.Upstreams[len(cfg.Upstreams):] {
				cc := u.Credentials
				if cc == nil || cc.OAuth2ClientCredentials == nil {
					continue
				}
				secret := cc.OAuth2ClientCredentials.ClientSecret
				if !slices.ContainsFunc(c.Env, func(e envVar) bool {
					return env.vars[e.Name] == secret && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
				}) {
					t.Errorf("upstream %q: client_secret does not come from a Secret through the environment", u.Name)
				}
			}
		})
	}
}

// uncommentUpstreams turns commented-out upstream entries ("# - name: x",
// then "#   key: v" lines at the same comment indentation) back into YAML,
// and reports how many it found.
func uncommentUpstreams(text string) (string, int) {
	lines := strings.Split(text, "\n")
	n := 0
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimLeft(lines[i], " ")
		if !strings.HasPrefix(trimmed, "# - name:") {
			continue
		}
		indent := lines[i][:len(lines[i])-len(trimmed)]
		n++
		lines[i] = indent + strings.TrimPrefix(trimmed, "# ")
		for i+1 < len(lines) && strings.HasPrefix(lines[i+1], indent+"#   ") {
			i++
			lines[i] = indent + strings.TrimPrefix(lines[i], indent+"# ")
		}
	}
	return strings.Join(lines, "\n"), n
}

// TestSecretsExample checks that secrets.env.example documents exactly the
// keys of Secret mcp-gateway-secrets that the overlays' pods read, and holds
// no values.
func TestSecretsExample(t *testing.T) {
	documented := map[string]bool{}
	for i, line := range strings.Split(string(readFile(t, secretsExample)), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || v != "" {
			t.Errorf("%s:%d: want KEY= with no value (values never go into the repository)", secretsExample, i+1)
		}
		documented[k] = true
	}

	used := map[string]bool{}
	tree := loadKustomizeTree(t)
	for _, dir := range tree.overlays() {
		r := render(t, dir)
		for _, o := range r.all("Deployment") {
			var d deployment
			o.decode(t, &d)
			for _, c := range d.Spec.Template.Spec.Containers {
				for _, e := range c.Env {
					if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
						continue
					}
					if ref := e.ValueFrom.SecretKeyRef; ref.Name != secretName {
						t.Errorf("%s %s container %q env %s: Secret %q; keep every secret in %s", dir, o, c.Name, e.Name, ref.Name, secretName)
					} else {
						used[ref.Key] = true
					}
				}
			}
		}
	}
	keys := func(m map[string]bool) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	if got, want := keys(documented), keys(used); !slices.Equal(got, want) {
		t.Errorf("%s lists %v; the pods read %v", secretsExample, got, want)
	}
}

func TestDockerConfig(t *testing.T) {
	env := &fakeEnv{}
	cfg, err := gateway.ParseConfig(readFile(t, dockerConfigFile), "/etc/gateway", env.LookupEnv)
	if err != nil {
		t.Fatalf("%s does not load:\n  %s", dockerConfigFile, strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	if len(env.lookup) > 0 {
		t.Errorf("%s references %v; `docker run image` must work without any environment", dockerConfigFile, env.lookup)
	}
	port := checkListen(t, dockerConfigFile, cfg)
	df := parseDockerfile(t)
	if !slices.Contains(df.final.expose, strconv.Itoa(port)) {
		t.Errorf("Dockerfile EXPOSE %v does not include the config's port %d", df.final.expose, port)
	}
	checkStdioCommandsInImage(t, dockerConfigFile, cfg, df)
	// The demo image runs without authentication, and says so: mode none
	// beyond loopback only loads with allow_unauthenticated.
	if cfg.Auth.Mode == "none" && !strings.Contains(string(readFile(t, dockerConfigFile)), "DEMO ONLY") {
		t.Errorf("%s runs without authentication; say it is for the demo only, next to auth:", dockerConfigFile)
	}
}

// TestClusterProbes serves each overlay's config in-process, as the kubelet
// and a client without a token would meet it: the probe paths answer 200
// without a token, while /mcp asks for one and points at the protected
// resource metadata, which names public_url and the issuer. The session store
// is swapped for memory (there is no Redis here); nothing else changes.
func TestClusterProbes(t *testing.T) {
	tree := loadKustomizeTree(t)
	for _, dir := range tree.overlays() {
		t.Run(path.Base(dir), func(t *testing.T) {
			r := render(t, dir)
			cfg := overlayConfig(t, r)
			cfg.SessionStore = gateway.SessionStoreConfig{Type: "memory", TTL: cfg.SessionStore.TTL}
			g, err := gateway.New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { g.Close() })
			srv := httptest.NewServer(g.Handler())
			t.Cleanup(srv.Close)

			get := func(method, p string) (*http.Response, string) {
				t.Helper()
				req, _ := http.NewRequest(method, srv.URL+p, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return resp, string(body)
			}
			for _, p := range []string{gateway.PathHealth, gateway.PathReady} {
				if resp, body := get("GET", p); resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s without a token = %d %s, want 200: the kubelet sends none", p, resp.StatusCode, body)
				}
			}
			resp, _ := get("POST", gateway.PathMCP)
			challenge := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer ") {
				t.Fatalf("POST %s without a token = %d (WWW-Authenticate %q), want 401 with a Bearer challenge", gateway.PathMCP, resp.StatusCode, challenge)
			}
			metaPath := gateway.PathResourceMetadata + gateway.PathMCP
			if !strings.Contains(challenge, strings.TrimSuffix(cfg.PublicURL, "/")+metaPath) {
				t.Errorf("challenge %q does not point at %s%s", challenge, cfg.PublicURL, metaPath)
			}
			resp, body := get("GET", metaPath)
			var prm struct {
				Resource             string   `json:"resource"`
				AuthorizationServers []string `json:"authorization_servers"`
			}
			if err := json.Unmarshal([]byte(body), &prm); resp.StatusCode != http.StatusOK || err != nil {
				t.Fatalf("GET %s = %d %s (%v)", metaPath, resp.StatusCode, body, err)
			}
			if want := strings.TrimSuffix(cfg.PublicURL, "/") + gateway.PathMCP; prm.Resource != want {
				t.Errorf("protected resource metadata names resource %q, want %q", prm.Resource, want)
			}
			for _, is := range cfg.Auth.Issuers {
				if !slices.Contains(prm.AuthorizationServers, is.URL) {
					t.Errorf("protected resource metadata lists %v, not the issuer %s", prm.AuthorizationServers, is.URL)
				}
			}
		})
	}
}
