package gateway

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"gopkg.in/yaml.v3"
)

// envMap is a lookupEnv backed by m.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// noEnv is a lookupEnv in which nothing is set.
func noEnv(string) (string, bool) { return "", false }

func ptr[T any](v T) *T { return &v }

// oneStdio is the smallest valid upstream list; tests of top-level keys
// append it.
const oneStdio = `
upstreams:
  - name: demo
    transport: stdio
    command: ./demo
`

// problemsOf returns the problems in err, failing the test if err is not a
// *ConfigError.
func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *ConfigError", err, err)
	}
	return ce.Problems
}

func TestParseConfigFull(t *testing.T) {
	const in = `
listen: 0.0.0.0:9090
auth: {mode: none, allow_unauthenticated: true}
public_url: https://gw.example.com/base
allowed_origins: ["http://localhost:6274", "https://app.example.com"]
max_body_bytes: 1048576
log: {level: debug, format: json}
namespace:
  separator: "."
  max_name_length: 100
upstreams:
  - name: demo
    transport: stdio
    command: ./bin/demo
    args: ["--stdio", "${MODE:-fast}"]
    env: {API_KEY: "${DEMO_KEY}"}
    cwd: work
    timeout: 1m30s
  - name: remote
    transport: streamable-http
    url: http://127.0.0.1:13002/mcp
    headers: {X-Team: "${TEAM}", Authorization: "Bearer ${TOKEN}"}
    prefix: ""
    tools: {include: ["*"], exclude: ["dangerous_*"]}
    prompts: {include: [greet]}
    resources: {exclude: ["file:///secret/*"]}
  - name: legacy
    transport: sse
    url: https://legacy.example.com/sse
    prefix: old
session_store: {type: memory, ttl: 2h}
`
	got, err := ParseConfig([]byte(in), "/etc/gw", envMap(map[string]string{
		"DEMO_KEY": "k-123", "TEAM": "blue", "TOKEN": "t0k",
	}))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	want := &Config{
		Listen:         "0.0.0.0:9090",
		Auth:           AuthConfig{Mode: "none", AllowUnauthenticated: true},
		PublicURL:      "https://gw.example.com/base",
		AllowedOrigins: []string{"http://localhost:6274", "https://app.example.com"},
		MaxBodyBytes:   1048576,
		Log:            LogConfig{Level: "debug", Format: "json"},
		Namespace:      NamespaceConfig{Separator: ".", MaxNameLength: 100},
		Upstreams: []UpstreamConfig{
			{
				Name: "demo", Transport: TransportStdio, Command: "./bin/demo",
				Args: []string{"--stdio", "fast"}, Env: map[string]string{"API_KEY": "k-123"},
				Cwd: "work", Timeout: Duration{90 * time.Second}, PingInterval: Duration{30 * time.Second}, Sharing: SharingShared,
			},
			{
				Name: "remote", Transport: TransportStreamableHTTP, URL: "http://127.0.0.1:13002/mcp",
				Headers:   map[string]string{"X-Team": "blue", "Authorization": "Bearer t0k"},
				Prefix:    ptr(""),
				Tools:     Filter{Include: []string{"*"}, Exclude: []string{"dangerous_*"}},
				Prompts:   Filter{Include: []string{"greet"}},
				Resources: Filter{Exclude: []string{"file:///secret/*"}},
				Timeout:   Duration{30 * time.Second}, PingInterval: Duration{30 * time.Second}, Sharing: SharingShared,
			},
			{
				Name: "legacy", Transport: TransportSSE, URL: "https://legacy.example.com/sse",
				Prefix: ptr("old"), Timeout: Duration{30 * time.Second}, PingInterval: Duration{30 * time.Second}, Sharing: SharingShared,
			},
		},
		SessionStore:  SessionStoreConfig{Type: "memory", TTL: Duration{2 * time.Hour}},
		RequestState:  RequestStateConfig{TTL: Duration{10 * time.Minute}},
		ShutdownGrace: Duration{20 * time.Second},
		Dir:           "/etc/gw",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseConfig =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	got, err := ParseConfig([]byte(oneStdio), "dir", noEnv)
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	want := &Config{
		Listen:       "127.0.0.1:8080",
		MaxBodyBytes: 4 << 20,
		Log:          LogConfig{Level: "info", Format: "text"},
		Namespace:    NamespaceConfig{Separator: "__", MaxNameLength: 64},
		Upstreams: []UpstreamConfig{{
			Name: "demo", Transport: "stdio", Command: "./demo", Timeout: Duration{30 * time.Second}, PingInterval: Duration{30 * time.Second}, Sharing: SharingShared,
		}},
		SessionStore:  SessionStoreConfig{Type: "memory", TTL: Duration{30 * time.Minute}},
		RequestState:  RequestStateConfig{TTL: Duration{10 * time.Minute}},
		ShutdownGrace: Duration{20 * time.Second},
		Dir:           "dir",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseConfig(minimal) =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseConfigValidEdgeCases(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		env   map[string]string
		check func(*Config) bool
	}{
		{"port zero", "listen: 127.0.0.1:0" + oneStdio, nil,
			func(c *Config) bool { return c.Listen == "127.0.0.1:0" }},
		{"all interfaces", "listen: :8080\nauth: {allow_unauthenticated: true}" + oneStdio, nil,
			func(c *Config) bool { return c.Listen == ":8080" }},
		{"ipv6 listen", "listen: \"[::1]:8080\"" + oneStdio, nil,
			func(c *Config) bool { return c.Listen == "[::1]:8080" }},
		{"number from env", "max_body_bytes: ${MAX}" + oneStdio, map[string]string{"MAX": "2048"},
			func(c *Config) bool { return c.MaxBodyBytes == 2048 }},
		{"number from default", "max_body_bytes: ${MAX:-4096}" + oneStdio, nil,
			func(c *Config) bool { return c.MaxBodyBytes == 4096 }},
		{"env true stays a string", "log: {level: info}\npublic_url: ${U:-http://x}" + oneStdio, nil,
			func(c *Config) bool { return c.PublicURL == "http://x" }},
		{"listen from env", "listen: ${L}" + oneStdio, map[string]string{"L": "127.0.0.1:9"},
			func(c *Config) bool { return c.Listen == "127.0.0.1:9" }},
		{"duration from env", oneStdio + "    timeout: ${T:-5s}\n", nil,
			func(c *Config) bool { return c.Upstreams[0].Timeout.Duration == 5*time.Second }},
		{"null prefix is the name", oneStdio + "    prefix:\n", nil,
			func(c *Config) bool { return c.Upstreams[0].Prefix == nil }},
		{"empty prefix from env is empty, not null", oneStdio + "    prefix: ${P:-}\n", nil,
			func(c *Config) bool { return c.Upstreams[0].Prefix != nil && *c.Upstreams[0].Prefix == "" }},
		{"env value null stays a string", oneStdio + "    env:\n      A: ${V}\n", map[string]string{"V": "null"},
			func(c *Config) bool { return c.Upstreams[0].Env["A"] == "null" }},
		{"anchors and merge keys", `
upstreams:
  - &base
    name: one
    transport: stdio
    command: ./x
  - <<: *base
    name: two
`, nil, func(c *Config) bool { return len(c.Upstreams) == 2 && c.Upstreams[1].Command == "./x" }},
		{"null in a flow mapping", "upstreams: [{name: a, transport: stdio, command: x, prefix, timeout}]\nsession_store: {ttl}\n", nil,
			func(c *Config) bool {
				return c.Upstreams[0].Prefix == nil && c.Upstreams[0].Timeout.Duration == 30*time.Second && c.SessionStore.TTL.Duration == 30*time.Minute
			}},
		{"empty prefixes may repeat", `
upstreams:
  - {name: a, transport: stdio, command: x, prefix: ""}
  - {name: b, transport: stdio, command: x, prefix: ""}
`, nil, func(c *Config) bool { return len(c.Upstreams) == 2 }},
		{"Authorization header allowed", `
upstreams:
  - {name: a, transport: sse, url: "http://h/sse", headers: {Authorization: "Bearer x"}}
`, nil, func(c *Config) bool { return c.Upstreams[0].Headers["Authorization"] == "Bearer x" }},
		{"comments and document markers", "# gateway\n---\n" + oneStdio + "...\n", nil,
			func(c *Config) bool { return len(c.Upstreams) == 1 }},
		{"metrics off by default", oneStdio, nil,
			func(c *Config) bool { return c.Metrics == MetricsConfig{} }},
		{"metrics on their own listener and public", "metrics: {listen: \"0.0.0.0:9090\", public: true}" + oneStdio, nil,
			func(c *Config) bool { return c.Metrics == MetricsConfig{Listen: "0.0.0.0:9090", Public: true} }},
		{"metrics on the listen port of another host", "listen: 127.0.0.1:8080\nmetrics: {listen: \"10.0.0.1:8080\"}" + oneStdio, nil,
			func(c *Config) bool { return c.Metrics.Listen == "10.0.0.1:8080" }},
		{"metrics port zero", "listen: 127.0.0.1:0\nmetrics: {listen: \"127.0.0.1:0\"}" + oneStdio, nil,
			func(c *Config) bool { return c.Metrics.Listen == "127.0.0.1:0" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.in), "", envMap(tc.env))
			if err != nil {
				t.Fatalf("ParseConfig(%q) = %v", tc.in, err)
			}
			if !tc.check(c) {
				t.Errorf("ParseConfig(%q) = %+v, check failed", tc.in, c)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		env  map[string]string
		want []string
	}{
		// Structure.
		{"empty", "", nil, []string{"config is empty; it needs at least an upstreams: list"}},
		{"only comments", "# nothing\n\n", nil, []string{"config is empty; it needs at least an upstreams: list"}},
		{"null document", "---\n", nil, []string{"config is empty; it needs at least an upstreams: list"}},
		{"list root", "- a\n- b\n", nil, []string{"line 1: config must be a mapping of keys (listen:, upstreams:, ...), not a list"}},
		{"two documents", oneStdio + "---\nlisten: :1\n", nil,
			[]string{"line 6: config has more than one YAML document; keep one (remove the extra ---)"}},
		{"syntax error", "listen: [a\nupstreams: []\n", nil,
			[]string{"invalid YAML: line 1: did not find expected ',' or ']'"}},
		{"syntax error in second document", oneStdio + "--- [\n", nil,
			[]string{"invalid YAML: line 6: did not find expected node content"}},
		{"tab indentation", "upstreams:\n\t- name: x\n", nil,
			[]string{"invalid YAML: line 2: found character that cannot start any token (tabs are not allowed for indentation; use spaces)"}},
		{"invalid utf-8", "listen: \"a\xffb\"\n", nil,
			[]string{"invalid YAML: line 1: config is not valid UTF-8"}},
		{"duplicate key", "listen: :1\nlisten: :2\n" + oneStdio, nil,
			[]string{`line 2: mapping key "listen" already defined at line 1`}},

		// Unknown keys.
		{"typo in upstream", `
upstreams:
  - name: demo
    transport: stdio
    comand: ./demo
`, nil, []string{`line 5: unknown key "comand" in upstream (did you mean "command"?)`,
			`upstreams[0] "demo": command is required when transport is "stdio"`}},
		{"camel case", "maxBodyBytes: 1" + oneStdio, nil,
			[]string{`line 1: unknown key "maxBodyBytes" in config (did you mean "max_body_bytes"?)`}},
		{"unrelated key lists valid keys", "log: {colour: red}" + oneStdio, nil,
			[]string{`line 1: unknown key "colour" in log (valid keys: format, level)`}},
		{"bad sharing", oneStdio + "    sharing: sometimes\n", nil,
			[]string{`upstreams[0] "demo": sharing "sometimes" is not one of shared, per-session`}},
		{"bad protocol version", oneStdio + "    protocol_version: 2025-13-01\n", nil,
			[]string{`upstreams[0] "demo": protocol_version "2025-13-01" is not one of ` + strings.Join(mcp.SupportedProtocolVersions(), ", ") + ` (or leave it out)`}},
		{"2026 over sse", "upstreams:\n  - name: old\n    transport: sse\n    url: http://127.0.0.1:1/sse\n    protocol_version: 2026-07-28\n", nil,
			[]string{`upstreams[0] "old": protocol_version "2026-07-28" cannot be spoken over transport "sse"; use streamable-http or an older revision`}},
		{"short request state key", "request_state: {key: c2hvcnQ=}" + oneStdio, nil,
			[]string{"request_state.key: decodes to 5 bytes, not 32; generate one with `openssl rand -base64 32`"}},
		{"request state key not base64", "request_state: {key: \"not base64!\"}" + oneStdio, nil,
			[]string{"request_state.key: is not base64; generate one with `openssl rand -base64 32`"}},
		{"unknown key in filter", oneStdio + "    tools: {includes: [a]}\n", nil,
			[]string{`line 6: unknown key "includes" in tools (did you mean "include"?)`}},
		{"unknown key in merged map", `
upstreams:
  - <<: {name: a, transport: stdio, comand: x}
`, nil, []string{`line 3: unknown key "comand" in upstream (did you mean "command"?)`,
			`upstreams[0] "a": command is required when transport is "stdio"`}},
		{"unknown key reached through alias", `
namespace: &n {separator: "__", bogus: 1}
session_store: *n
` + oneStdio, nil, []string{
			`line 2: unknown key "bogus" in namespace (valid keys: max_name_length, separator)`,
			`line 2: unknown key "separator" in session_store (valid keys: redis, ttl, type)`,
			`line 2: unknown key "bogus" in session_store (valid keys: redis, ttl, type)`,
		}},
		{"non-scalar key", "? [a]\n: 1\n" + oneStdio, nil,
			[]string{`line 1: keys must be plain names, not a list, in config`, "line 1: cannot unmarshal !!seq into string"}},

		// Types.
		{"wrong type", "max_body_bytes: lots" + oneStdio, nil,
			[]string{"line 1: cannot unmarshal !!str `lots` into an integer"}},
		{"mapping instead of list", "upstreams: {name: a}\n", nil,
			[]string{"line 1: cannot unmarshal !!map into a list of upstreams"}},
		{"string instead of list", oneStdio + "    args: --stdio\n", nil,
			[]string{"line 6: cannot unmarshal !!str `--stdio` into a list of strings"}},
		{"list instead of upstream", "upstreams: [[a]]\n", nil,
			[]string{"line 1: cannot unmarshal !!seq into an upstream (a mapping of name:, transport:, ...)"}},
		{"several type errors", "log: [a]\nnamespace: {max_name_length: x}" + oneStdio + "    env: [a]\n", nil, []string{
			"line 1: cannot unmarshal !!seq into log settings (level:, format:)",
			"line 2: cannot unmarshal !!str `x` into an integer",
			"line 7: cannot unmarshal !!seq into a mapping of names to strings",
		}},
		{"bad duration", oneStdio + "    timeout: soon\n", nil,
			[]string{`line 6: invalid duration "soon"; use a duration like 30s or 1m30s`}},
		{"duration without unit", oneStdio + "    timeout: 30\n", nil,
			[]string{`line 6: invalid duration "30"; add a unit, e.g. 30s`}},
		{"duration as list", oneStdio + "    timeout: [1s]\n", nil,
			[]string{`line 6: a duration must be a string like 30s or 1m30s`}},
		{"unknown key and type error together", "listen: [1]\nlisten_addr: x" + oneStdio, nil, []string{
			`line 2: unknown key "listen_addr" in config (valid keys: allowed_origins, auth, fast_path, listen, log, max_body_bytes, metrics, namespace, public_url, replica, request_state, session_store, shutdown_grace, upstreams)`,
			"line 1: cannot unmarshal !!seq into string",
		}},
		{"origin that is not a URL", `allowed_origins: ["http://a b"]` + oneStdio, nil,
			[]string{`allowed_origins[0]: "http://a b" is not an origin; write scheme://host[:port], e.g. http://localhost:6274`}},

		// Environment expansion.
		{"unset variable", oneStdio + "    env: {API_KEY: \"${DEMO_KEY}\"}\n", nil,
			[]string{"upstreams[0].env.API_KEY: environment variable DEMO_KEY is not set; export it or write ${DEMO_KEY:-default}"}},
		{"unset number causes no type error", "max_body_bytes: ${MAX}" + oneStdio, nil,
			[]string{"max_body_bytes: environment variable MAX is not set; export it or write ${MAX:-default}"}},
		{"unterminated", oneStdio + "    args: [\"${HOME\"]\n", nil,
			[]string{`upstreams[0].args[0]: unterminated "${HOME"; close it with } or write $$ for a literal $`}},
		{"empty name", "listen: x${}y" + oneStdio, nil,
			[]string{`listen: empty variable name in "${}"; write ${NAME} or $$ for a literal $`}},
		{"invalid name", "listen: ${1X}" + oneStdio, nil,
			[]string{`listen: invalid variable reference "${1X}"; write ${NAME} or ${NAME:-default}, where NAME matches [A-Za-z_][A-Za-z0-9_]*`}},
		{"unsupported operator", "listen: ${X:?oops}" + oneStdio, nil,
			[]string{`listen: invalid variable reference "${X:?oops}"; write ${NAME} or ${NAME:-default}, where NAME matches [A-Za-z_][A-Za-z0-9_]*`}},
		{"header key with odd characters in path", `
upstreams:
  - name: r
    transport: sse
    url: http://h/
    headers: {"X Y": "${NOPE}"}
`, nil, []string{`upstreams[0].headers["X Y"]: environment variable NOPE is not set; export it or write ${NOPE:-default}`,
			"upstreams[0] \"r\": header name \"X Y\" is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"}},

		// Validation of top-level fields.
		{"listen not host:port", "listen: localhost" + oneStdio, nil,
			[]string{`listen: "localhost" is not host:port; write e.g. 127.0.0.1:8080`}},
		{"listen bad port", "listen: 127.0.0.1:65536" + oneStdio, nil,
			[]string{`listen: port "65536" is not a number in 0-65535`}},
		{"listen bad host", "listen: \"bad host:80\"" + oneStdio, nil,
			[]string{`listen: host "bad host" is not an IP address or host name`}},
		{"listen IPv6 zone is fine, bad port is not", "listen: \"[fe80::1%eth0]:x\"" + oneStdio, nil,
			[]string{`listen: port "x" is not a number in 0-65535`}},
		{"listen URL", "listen: http://127.0.0.1:8080" + oneStdio, nil,
			[]string{`listen: "http://127.0.0.1:8080" is not host:port; write e.g. 127.0.0.1:8080`}},
		{"public_url relative", "public_url: /mcp" + oneStdio, nil,
			[]string{`public_url: "/mcp" must be an absolute http or https URL like https://gw.example.com`}},
		{"public_url ftp", "public_url: ftp://h" + oneStdio, nil,
			[]string{`public_url: "ftp://h" must be an absolute http or https URL like https://gw.example.com`}},
		{"public_url without host", "public_url: http://:80/" + oneStdio, nil,
			[]string{`public_url: "http://:80/" must be an absolute http or https URL like https://gw.example.com`}},
		{"public_url query", "public_url: https://h/?a=1" + oneStdio, nil,
			[]string{`public_url: "https://h/?a=1" must not have a query or fragment; remove the part from ? or #`}},
		{"public_url fragment", "public_url: https://h/#x" + oneStdio, nil,
			[]string{`public_url: "https://h/#x" must not have a query or fragment; remove the part from ? or #`}},
		{"public_url password redacted", "public_url: https://u:secret@h/?q" + oneStdio, nil,
			[]string{`public_url: "https://u:xxxxx@h/?q" must not have a query or fragment; remove the part from ? or #`}},
		{"public_url unparseable", "public_url: \"http://h:x/\"" + oneStdio, nil,
			[]string{`public_url: is not a valid URL (invalid port ":x" after host); write an absolute http or https URL`}},
		{"origins", `allowed_origins: ["*", "null", "http://localhost:6274/", "localhost:6274", "http://h:0", "https://ok.example"]` + oneStdio, nil, []string{
			`allowed_origins[0]: "*" is not accepted; list each origin (loopback origins are always allowed when listen is a loopback address)`,
			`allowed_origins[1]: "null" is not accepted: opaque origins (sandboxed frames, file: pages) cannot be told apart; list real origins`,
			`allowed_origins[2]: "http://localhost:6274/" has a path, query or fragment; write "http://localhost:6274"`,
			`allowed_origins[3]: "localhost:6274" is not an origin; write scheme://host[:port], e.g. http://localhost:6274`,
			`allowed_origins[4]: "http://h:0" has an invalid port; write scheme://host[:port]`,
		}},
		{"max_body_bytes", "max_body_bytes: 1023" + oneStdio, nil,
			[]string{"max_body_bytes: 1023 is too small; use at least 1024 (default 4194304)"}},
		{"negative max_body_bytes", "max_body_bytes: -1" + oneStdio, nil,
			[]string{"max_body_bytes: -1 is too small; use at least 1024 (default 4194304)"}},
		{"log", "log: {level: verbose, format: xml}" + oneStdio, nil, []string{
			`log.level: "verbose" is not one of debug, info, warn, error`,
			`log.format: "xml" is not one of text, json`,
		}},
		{"separator chars", "namespace: {separator: \"::\"}" + oneStdio, nil,
			[]string{`namespace.separator: "::" must be 1-4 characters from [A-Za-z0-9_.-]; the default is "__"`}},
		{"separator too long", "namespace: {separator: \"_____\"}" + oneStdio, nil,
			[]string{`namespace.separator: "_____" must be 1-4 characters from [A-Za-z0-9_.-]; the default is "__"`}},
		{"separator could be in a name", "namespace: {separator: \"--\"}" + oneStdio, nil,
			[]string{`namespace.separator: "--" could appear inside an upstream name; include a character names cannot contain ("_", "." or an uppercase letter)`}},
		{"max_name_length", "namespace: {max_name_length: 15}" + oneStdio, nil,
			[]string{"namespace.max_name_length: 15 is out of range; use 16-128 (default 64)"}},
		{"session store redis without redis", "session_store: {type: redis}" + oneStdio, nil,
			[]string{`session_store.redis: required for type "redis"; set url (redis://host:6379/0) or addrs`}},
		{"session store redis bad url", "session_store: {type: redis, redis: {url: \"http://x\", password: p}}" + oneStdio, nil, []string{
			`session_store.redis.url: redis: invalid URL scheme: http`,
			`session_store.redis.url: username, password, db and tls must be set in the URL itself`}},
		{"redis settings on memory", "session_store: {redis: {url: \"redis://x:6379\"}}" + oneStdio, nil,
			[]string{`session_store.redis: only for type "redis"; remove it or set type: redis`}},
		{"advertise url", "replica: {advertise_url: \"ftp://x\"}" + oneStdio, nil,
			[]string{`replica.advertise_url: "ftp://x" must be an absolute http or https URL like https://gw.example.com`}},
		{"session store other", "session_store: {type: disk, ttl: 30s}" + oneStdio, nil, []string{
			`session_store.type: "disk" is not a session store type; use "memory" or "redis"`,
			"session_store.ttl: 30s is too short; use at least 1m",
		}},

		// Validation of upstreams.
		{"no upstreams", "listen: 127.0.0.1:1\n", nil,
			[]string{"upstreams: at least one upstream is required; add one under upstreams:"}},
		{"bad names and duplicates", `
upstreams:
  - {transport: stdio, command: x}
  - {name: Demo, transport: stdio, command: x}
  - {name: "-x", transport: stdio, command: x}
  - {name: a, transport: stdio, command: x}
  - {name: a, transport: stdio, command: x}
`, nil, []string{
			`upstreams[0]: name is required; use lowercase letters, digits and "-"`,
			`upstreams[1] "Demo": name must match ^[a-z0-9][a-z0-9-]{0,31}$ (lowercase letters, digits and "-", at most 32)`,
			`upstreams[2] "-x": name must match ^[a-z0-9][a-z0-9-]{0,31}$ (lowercase letters, digits and "-", at most 32)`,
			`upstreams[4] "a": name is already used by upstreams[3]; names must be unique`,
		}},
		{"name too long", "upstreams: [{name: " + strings.Repeat("a", 33) + ", transport: stdio, command: x}]\n", nil,
			[]string{`upstreams[0] "` + strings.Repeat("a", 33) + `": name must match ^[a-z0-9][a-z0-9-]{0,31}$ (lowercase letters, digits and "-", at most 32)`}},
		{"transport", `
upstreams:
  - {name: a, command: x}
  - {name: b, transport: http, url: "http://h"}
`, nil, []string{
			`upstreams[0] "a": transport is required; use one of stdio, sse, streamable-http`,
			`upstreams[1] "b": transport "http" is not one of stdio, sse, streamable-http`,
		}},
		{"stdio misuse", `
upstreams:
  - name: a
    transport: stdio
    url: http://h
    headers: {X: y}
    env: {"1BAD": x, GOOD_1: y, "A-B": z}
`, nil, []string{
			`upstreams[0] "a": command is required when transport is "stdio"`,
			`upstreams[0] "a": url is not used when transport is "stdio"; remove it or change transport`,
			`upstreams[0] "a": headers are not used when transport is "stdio"; remove them or change transport`,
			`upstreams[0] "a": env key "1BAD" is not a valid environment variable name; use [A-Za-z_][A-Za-z0-9_]*`,
			`upstreams[0] "a": env key "A-B" is not a valid environment variable name; use [A-Za-z_][A-Za-z0-9_]*`,
		}},
		{"http misuse", `
upstreams:
  - name: github
    transport: streamable-http
    command: x
    args: [y]
    env: {A: b}
    cwd: /tmp
  - {name: b, transport: sse, url: "ws://h/sse"}
  - {name: c, transport: sse, url: "h/sse"}
`, nil, []string{
			`upstreams[0] "github": url is required when transport is "streamable-http"`,
			`upstreams[0] "github": command is only for transport "stdio"; remove it or change transport`,
			`upstreams[0] "github": args is only for transport "stdio"; remove it or change transport`,
			`upstreams[0] "github": env is only for transport "stdio"; remove it or change transport`,
			`upstreams[0] "github": cwd is only for transport "stdio"; remove it or change transport`,
			`upstreams[1] "b": url "ws://h/sse" must be an absolute http or https URL like https://gw.example.com`,
			`upstreams[2] "c": url "h/sse" must be an absolute http or https URL like https://gw.example.com`,
		}},
		{"headers", `
upstreams:
  - name: r
    transport: streamable-http
    url: http://h/mcp
    headers:
      "X Team": a
      connection: close
      Host: h
      Content-Length: "1"
      Transfer-Encoding: chunked
      Mcp-Session-Id: s
      X-Dup: a
      x-dup: b
      X-Bad: "a\nb"
`, nil, []string{
			`upstreams[0] "r": header "Content-Length" is managed by the gateway and cannot be set; remove it`,
			`upstreams[0] "r": header "Host" is managed by the gateway and cannot be set; remove it`,
			`upstreams[0] "r": header "Mcp-Session-Id" is managed by the gateway and cannot be set; remove it`,
			`upstreams[0] "r": header "Transfer-Encoding" is managed by the gateway and cannot be set; remove it`,
			"upstreams[0] \"r\": header name \"X Team\" is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~)",
			`upstreams[0] "r": header "X-Bad" value contains a control character (newline?); remove it`,
			`upstreams[0] "r": header "connection" is managed by the gateway and cannot be set; remove it`,
			`upstreams[0] "r": headers "X-Dup" and "x-dup" are the same header; keep one`,
		}},
		{"prefixes", `
upstreams:
  - {name: a, transport: stdio, command: x, prefix: Bad_Prefix}
  - {name: b, transport: stdio, command: x, prefix: a} # a's prefix is not "a"
  - {name: c, transport: stdio, command: x, prefix: shared}
  - {name: d, transport: stdio, command: x, prefix: shared}
  - {name: shared, transport: stdio, command: x, prefix: ""}
`, nil, []string{
			`upstreams[0] "a": prefix "Bad_Prefix" must match ^[a-z0-9][a-z0-9-]{0,31}$, or be "" to mount without a namespace`,
			`upstreams[3] "d": prefix "shared" is already used by upstreams[2] "c"; prefixes must be unique (set prefix: to another value)`,
		}},
		{"default prefix collides with explicit one", `
upstreams:
  - {name: a, transport: stdio, command: x, prefix: b}
  - {name: b, transport: stdio, command: x}
`, nil, []string{
			`upstreams[1] "b": prefix "b" is already used by upstreams[0] "a"; prefixes must be unique (set prefix: to another value)`,
		}},
		{"globs", `
upstreams:
  - name: a
    transport: stdio
    command: x
    tools: {include: ["[a"], exclude: [""]}
    prompts: {exclude: ["ok*", "x\\"]}
    resources: {include: ["file:///[]"]}
`, nil, []string{
			`upstreams[0] "a": tools.include[0] "[a" is not a valid glob (syntax error in pattern); see path.Match syntax`,
			`upstreams[0] "a": tools.exclude[0] is empty and matches nothing; remove it`,
			`upstreams[0] "a": prompts.exclude[1] "x\\" is not a valid glob (syntax error in pattern); see path.Match syntax`,
			`upstreams[0] "a": resources.include[0] "file:///[]" is not a valid glob (syntax error in pattern); see path.Match syntax`,
		}},
		{"metrics listen without port", "metrics: {listen: \"9090\"}" + oneStdio, nil,
			[]string{`metrics.listen: "9090" is not host:port; write e.g. 127.0.0.1:9090`}},
		{"metrics listen bad port and host", "metrics: {listen: \"bad_host:99999\"}" + oneStdio, nil,
			[]string{`metrics.listen: port "99999" is not a number in 0-65535`, `metrics.listen: host "bad_host" is not an IP address or host name`}},
		{"metrics on the main port", "listen: 127.0.0.1:8080\nmetrics: {listen: \":8080\"}" + oneStdio, nil,
			[]string{`metrics.listen: ":8080" would take the port of listen "127.0.0.1:8080"; use another port (e.g. 127.0.0.1:9090), or set metrics.public: true to serve /metrics on the main listener`}},
		{"metrics key typo", "metrics: {publc: true}" + oneStdio, nil,
			[]string{`line 1: unknown key "publc" in metrics (did you mean "public"?)`}},
		{"timeouts", `
upstreams:
  - {name: a, transport: stdio, command: x, timeout: -1s}
  - {name: b, transport: stdio, command: x, timeout: 61m}
`, nil, []string{
			`upstreams[0] "a": timeout -1s is out of range; use more than 0 and at most 1h (default 30s)`,
			`upstreams[1] "b": timeout 1h1m0s is out of range; use more than 0 and at most 1h (default 30s)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.in), "", envMap(tc.env))
			if err == nil {
				t.Fatalf("ParseConfig(%q) = %+v, want errors %q", tc.in, c, tc.want)
			}
			if c != nil {
				t.Errorf("ParseConfig(%q) returned a config with error %v", tc.in, err)
			}
			if got := problemsOf(t, err); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseConfig(%q) problems:\n%s\nwant:\n%s", tc.in, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestParseConfigAllProblemsAtOnce checks that problems in different parts
// of the file are reported together, not one per run.
func TestParseConfigAllProblemsAtOnce(t *testing.T) {
	const in = `
listen: nowhere
max_body_bytes: 10
log: {level: loud}
upstreams:
  - {name: github, transport: streamable-http}
  - {name: fs, transport: stdio}
session_store: {type: redis}
`
	_, err := ParseConfig([]byte(in), "", noEnv)
	want := []string{
		`listen: "nowhere" is not host:port; write e.g. 127.0.0.1:8080`,
		"max_body_bytes: 10 is too small; use at least 1024 (default 4194304)",
		`log.level: "loud" is not one of debug, info, warn, error`,
		`upstreams[0] "github": url is required when transport is "streamable-http"`,
		`upstreams[1] "fs": command is required when transport is "stdio"`,
		`session_store.redis: required for type "redis"; set url (redis://host:6379/0) or addrs`,
	}
	if got := problemsOf(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := err.Error(), strings.Join(want, "\n"); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}

	// Earlier stages also report together: every unknown key and every
	// unset variable.
	const in2 = `
listn: ":1"
upstreams:
  - name: a
    transport: stdio
    comand: x
    env: {A: "${UNSET_A}", B: "${UNSET_B}"}
`
	_, err = ParseConfig([]byte(in2), "", noEnv)
	want = []string{
		"upstreams[0].env.A: environment variable UNSET_A is not set; export it or write ${UNSET_A:-default}",
		"upstreams[0].env.B: environment variable UNSET_B is not set; export it or write ${UNSET_B:-default}",
		`line 2: unknown key "listn" in config (did you mean "listen"?)`,
		`line 6: unknown key "comand" in upstream (did you mean "command"?)`,
		`upstreams[0] "a": command is required when transport is "stdio"`,
	}
	if got := problemsOf(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestExpandEnv(t *testing.T) {
	env := envMap(map[string]string{"SET": "value", "EMPTY": "", "NESTED": "${SET}", "DOLLAR": "$$"})
	for _, tc := range []struct {
		in, want string
		errs     []string
	}{
		{"plain", "plain", nil},
		{"${SET}", "value", nil},
		{"a-${SET}-b", "a-value-b", nil},
		{"${SET}${SET}", "valuevalue", nil},
		{"${UNSET:-dflt}", "dflt", nil},
		{"${EMPTY:-dflt}", "dflt", nil},
		{"${SET:-dflt}", "value", nil},
		{"${EMPTY}", "", nil},
		{"${UNSET:-}", "", nil},
		{"${UNSET:-a:b/c d}", "a:b/c d", nil},
		{"${UNSET:-$$x}", "$x", nil},
		{"$$", "$", nil},
		{"$${SET}", "${SET}", nil},
		{"$$$${SET}", "$${SET}", nil},
		{"$$$", "$$", nil},
		{"pa$word", "pa$word", nil},
		{"cost: 5$", "cost: 5$", nil},
		{"$SET", "$SET", nil},
		{"${NESTED}", "${SET}", nil}, // values are not expanded again
		{"${DOLLAR}", "$$", nil},
		{"${UNSET}", "", []string{"environment variable UNSET is not set; export it or write ${UNSET:-default}"}},
		{"${A}${B}", "", []string{
			"environment variable A is not set; export it or write ${A:-default}",
			"environment variable B is not set; export it or write ${B:-default}",
		}},
		{"${", "", []string{`unterminated "${"; close it with } or write $$ for a literal $`}},
		{"x ${SET", "x ", []string{`unterminated "${SET"; close it with } or write $$ for a literal $`}},
		{"${SET:-abc", "", []string{`unterminated "${SET:-abc"; close it with } or write $$ for a literal $`}},
		{"${}", "", []string{`empty variable name in "${}"; write ${NAME} or $$ for a literal $`}},
		{"${:-x}", "", []string{`empty variable name in "${:-x}"; write ${NAME} or $$ for a literal $`}},
		{"${9}", "", []string{`invalid variable reference "${9}"; write ${NAME} or ${NAME:-default}, where NAME matches [A-Za-z_][A-Za-z0-9_]*`}},
		{"${A B}", "", []string{`invalid variable reference "${A B}"; write ${NAME} or ${NAME:-default}, where NAME matches [A-Za-z_][A-Za-z0-9_]*`}},
		{"${A-b}", "", []string{`invalid variable reference "${A-b}"; write ${NAME} or ${NAME:-default}, where NAME matches [A-Za-z_][A-Za-z0-9_]*`}},
		{"${A:-${B}}", "}", []string{"nested ${...} in the default of ${A} is not supported; write a literal default"}},
		{"${AN_EXTREMELY_LONG_UNTERMINATED_NAME", "", []string{`unterminated "${AN_EXTREMELY_LONG_UNTE..."; close it with } or write $$ for a literal $`}},
	} {
		got, errs := expandEnv(tc.in, env)
		if got != tc.want || !reflect.DeepEqual(errs, tc.errs) {
			t.Errorf("expandEnv(%q) = %q, %q; want %q, %q", tc.in, got, errs, tc.want, tc.errs)
		}
	}
}

// TestExpandCannotInjectStructure checks that a variable's value lands in one
// scalar whatever it holds: newlines, YAML indicators, references.
func TestExpandCannotInjectStructure(t *testing.T) {
	const in = `
upstreams:
  - name: demo
    transport: stdio
    command: ./demo
    args:
      - ${EVIL}
    env:
      A: ${EVIL}
      B: "${EVIL}"
      C: ${FLOW}
      D: '${REF}'
    cwd: ${EVIL}
`
	evil := "x\n  command: rm -rf /\n  url: http://evil"
	env := map[string]string{"EVIL": evil, "FLOW": "{a: 1}, [b]", "REF": "${EVIL}"}
	c, err := ParseConfig([]byte(in), "", envMap(env))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	u := c.Upstreams[0]
	if u.Command != "./demo" || u.URL != "" || u.Cwd != evil {
		t.Errorf("upstream = %+v: the value of EVIL changed structure", u)
	}
	if !reflect.DeepEqual(u.Args, []string{evil}) {
		t.Errorf("args = %q, want [%q]", u.Args, evil)
	}
	wantEnv := map[string]string{"A": evil, "B": evil, "C": "{a: 1}, [b]", "D": "${EVIL}"}
	if !reflect.DeepEqual(u.Env, wantEnv) {
		t.Errorf("env = %q, want %q", u.Env, wantEnv)
	}
}

func TestFilterAllows(t *testing.T) {
	for _, tc := range []struct {
		f    Filter
		name string
		want bool
	}{
		{Filter{}, "anything", true},
		{Filter{Include: []string{}}, "anything", true},
		{Filter{Include: []string{"*"}}, "search", true},
		{Filter{Include: []string{"get_*", "list_*"}}, "list_repos", true},
		{Filter{Include: []string{"get_*", "list_*"}}, "delete_repo", false},
		{Filter{Exclude: []string{"dangerous_*"}}, "dangerous_rm", false},
		{Filter{Exclude: []string{"dangerous_*"}}, "safe", true},
		{Filter{Include: []string{"*"}, Exclude: []string{"dangerous_*"}}, "dangerous_rm", false},
		{Filter{Include: []string{"a?c"}}, "abc", true},
		{Filter{Include: []string{"[ab]x"}}, "cx", false},
		{Filter{Include: []string{"file:///docs/*"}}, "file:///docs/a.md", true},
		// Unlike path.Match, "*" spans "/", so URI globs cover subpaths.
		{Filter{Include: []string{"file:///docs/*"}}, "file:///docs/sub/a.md", true},
		{Filter{Include: []string{"*"}}, "file:///a", true},
		// An invalid glob matches nothing (Validate rejects it first).
		{Filter{Include: []string{"[a"}}, "a", false},
		{Filter{Exclude: []string{"[a"}}, "a", true},
	} {
		if got := tc.f.Allows(tc.name); got != tc.want {
			t.Errorf("%+v.Allows(%q) = %v, want %v", tc.f, tc.name, got, tc.want)
		}
	}
}

func TestPublicPrefix(t *testing.T) {
	for _, tc := range []struct {
		u    UpstreamConfig
		want string
	}{
		{UpstreamConfig{Name: "github"}, "github"},
		{UpstreamConfig{Name: "github", Prefix: ptr("gh")}, "gh"},
		{UpstreamConfig{Name: "github", Prefix: ptr("")}, ""},
	} {
		if got := tc.u.PublicPrefix(); got != tc.want {
			t.Errorf("PublicPrefix(name %q, prefix %v) = %q, want %q", tc.u.Name, tc.u.Prefix, got, tc.want)
		}
	}
}

func TestWorkDir(t *testing.T) {
	abs := filepath.Join(string(filepath.Separator), "srv", "mcp")
	for _, tc := range []struct {
		cwd, cfgDir, want string
	}{
		{"", "/etc/gw", "/etc/gw"},
		{".", "/etc/gw", "/etc/gw"},
		{"servers/demo", "/etc/gw", "/etc/gw/servers/demo"},
		{"../x", "/etc/gw", "/etc/x"},
		{abs, "/etc/gw", abs},
		{"/srv/mcp/../other", "/etc/gw", "/srv/other"},
		{"rel", "", "rel"},
	} {
		u := UpstreamConfig{Cwd: tc.cwd}
		if got := u.WorkDir(tc.cfgDir); got != filepath.FromSlash(tc.want) {
			t.Errorf("WorkDir(cwd %q, %q) = %q, want %q", tc.cwd, tc.cfgDir, got, filepath.FromSlash(tc.want))
		}
	}
}

func TestDurationYAML(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"30s", 30 * time.Second, "30s"},
		{"1m30s", 90 * time.Second, "1m30s"},
		{"1h", time.Hour, "1h0m0s"},
		{"250ms", 250 * time.Millisecond, "250ms"},
		{"0", 0, "0s"},
		{`"2m"`, 2 * time.Minute, "2m0s"},
	} {
		var d Duration
		if err := yaml.Unmarshal([]byte(tc.in), &d); err != nil || d.Duration != tc.want {
			t.Errorf("yaml.Unmarshal(%q) = %v, %v; want %v", tc.in, d.Duration, err, tc.want)
		}
		out, err := yaml.Marshal(d)
		if got := strings.TrimSpace(string(out)); err != nil || got != tc.out {
			t.Errorf("yaml.Marshal(%v) = %q, %v; want %q", tc.want, got, err, tc.out)
		}
	}
	for _, in := range []string{"30", "soon", "1x", "[1s]", "{a: 1}"} {
		var d Duration
		if err := yaml.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("yaml.Unmarshal(%q) = %v, want error", in, d.Duration)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	env := envMap(map[string]string{"DEMO_KEY": "k"})

	c, err := LoadConfig(filepath.Join("testdata", "config", "valid.yaml"), env)
	if err != nil {
		t.Fatalf("LoadConfig(valid.yaml): %v", err)
	}
	wantDir, err := filepath.Abs(filepath.Join("testdata", "config"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Dir != wantDir {
		t.Errorf("Dir = %q, want %q", c.Dir, wantDir)
	}
	if got, want := c.Upstreams[0].WorkDir(c.Dir), filepath.Join(wantDir, "servers"); got != want {
		t.Errorf("WorkDir = %q, want %q", got, want)
	}
	if got := c.Upstreams[0].Env["API_KEY"]; got != "k" {
		t.Errorf("env API_KEY = %q, want %q", got, "k")
	}

	_, err = LoadConfig(filepath.Join("testdata", "config", "invalid.yaml"), env)
	want := []string{
		`line 12: unknown key "comand" in upstream (did you mean "command"?)`,
		`line 19: unknown key "timeuot" in upstream (did you mean "timeout"?)`,
		`upstreams[1] "other": command is required when transport is "stdio"`,
	}
	if got := problemsOf(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("LoadConfig(invalid.yaml) problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	_, err = LoadConfig(filepath.Join("testdata", "config", "problems.yaml"), env)
	want = []string{
		`allowed_origins[0]: "*" is not accepted; list each origin (loopback origins are always allowed when listen is a loopback address)`,
		`namespace.separator: "-" could appear inside an upstream name; include a character names cannot contain ("_", "." or an uppercase letter)`,
		`upstreams[0] "github": url is required when transport is "streamable-http"`,
		`upstreams[1] "github": header "Connection" is managed by the gateway and cannot be set; remove it`,
		`upstreams[1] "github": name is already used by upstreams[0]; names must be unique`,
		`upstreams[2] "local": command is required when transport is "stdio"`,
		`session_store.ttl: 10s is too short; use at least 1m`,
	}
	if got := problemsOf(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("LoadConfig(problems.yaml) problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	_, err = LoadConfig(filepath.Join("testdata", "config", "missing.yaml"), env)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadConfig(missing.yaml) = %v, want fs.ErrNotExist", err)
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		t.Errorf("LoadConfig(missing.yaml) = %v, a *ConfigError; want an I/O error", err)
	}
}

func TestLoadConfigDefaultEnv(t *testing.T) {
	t.Setenv("GW_TEST_LISTEN", "127.0.0.1:9999")
	path := filepath.Join(t.TempDir(), "gw.yaml")
	if err := os.WriteFile(path, []byte("listen: ${GW_TEST_LISTEN}"+oneStdio), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path, nil)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if c.Listen != "127.0.0.1:9999" {
		t.Errorf("Listen = %q, want the value of GW_TEST_LISTEN", c.Listen)
	}
}

func TestValidate(t *testing.T) {
	// Validate works on a Config built in code, without YAML.
	c := &Config{Upstreams: []UpstreamConfig{{Name: "a", Transport: TransportSSE, URL: "http://h/sse"}}}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
	// Without defaults, the zero values are problems.
	err := (&Config{}).Validate()
	want := []string{
		`listen: "" is not host:port; write e.g. 127.0.0.1:8080`,
		"max_body_bytes: 0 is too small; use at least 1024 (default 4194304)",
		`log.level: "" is not one of debug, info, warn, error`,
		`log.format: "" is not one of text, json`,
		`namespace.separator: "" must be 1-4 characters from [A-Za-z0-9_.-]; the default is "__"`,
		"namespace.max_name_length: 0 is out of range; use 16-128 (default 64)",
		"upstreams: at least one upstream is required; add one under upstreams:",
		`session_store.type: "" is not a session store type; use "memory" or "redis"`,
		"session_store.ttl: 0s is too short; use at least 1m",
		"request_state.ttl: 0s is out of range; use 1s to 24h (default 10m)",
	}
	if got := problemsOf(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("Validate(zero) problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func FuzzParseConfig(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "config", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", oneStdio, "listen: ${SET}" + oneStdio, "max_body_bytes: ${NUM}" + oneStdio,
		"upstreams: [{name: a, transport: sse, url: 'http://h', prefix: '', headers: {A: '${NL}'}}]",
		"a: &a [*a]", "session_store: {ttl}", "upstreams:\n  - &u {name: a, transport: stdio, command: x}\n  - <<: *u\n    name: b\n",
	} {
		f.Add([]byte(s))
	}
	env := envMap(map[string]string{"SET": "value", "EMPTY": "", "NUM": "2048", "NL": "a\nb: c"})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkStrictDecodeAgrees(t, data, env)
		c, err := ParseConfig(data, "/d", env)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("ParseConfig(%q) = %v (%T), want a *ConfigError with problems", data, err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig(%q) succeeded but Validate() = %v", data, err)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("yaml.Marshal(%+v) = %v", c, err)
		}
		// Marshalled values are literal: escape "$" so that parsing the
		// output again does not expand anything.
		c2, err := ParseConfig(escapeValues(t, out), "/d", noEnv)
		if err != nil {
			t.Fatalf("re-parsing\n%s\nfrom %q: %v", out, data, err)
		}
		out2, err := yaml.Marshal(c2)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != string(out2) {
			t.Fatalf("round trip of %q changed the config:\n%s\nthen\n%s", data, out, out2)
		}
	})
}

// checkStrictDecodeAgrees checks that the key walk is as strict as
// yaml.v3's KnownFields: when the walk and Node.Decode find nothing wrong,
// the strict decode of the re-encoded tree must succeed too.
func checkStrictDecodeAgrees(t *testing.T, data []byte, env func(string) (string, bool)) {
	root, problem := parseDocument(data)
	if problem != "" {
		return
	}
	var problems []string
	expandTree(root, "", env, &problems)
	checkKeys(root, reflect.TypeFor[Config](), "config", map[visit]bool{}, &problems)
	var lax Config
	if len(problems) > 0 || root.Decode(&lax) != nil {
		return
	}
	if err := checkStrict(root); err != nil {
		t.Fatalf("config %q passed the key walk but not the strict decode: %v", data, err)
	}
	// And re-encoding changes no value.
	text, err := yaml.Marshal(encodable(root))
	if err != nil {
		t.Fatal(err)
	}
	var strict Config
	if err := yaml.Unmarshal(text, &strict); err != nil || !reflect.DeepEqual(lax, strict) {
		t.Fatalf("config %q decodes as\n%+v\nbut re-encoded as %q decodes as\n%+v (%v)", data, lax, text, strict, err)
	}
}

// escapeValues doubles every "$" in the scalar values of the YAML in data.
func escapeValues(t *testing.T, data []byte) []byte {
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		t.Fatalf("yaml.Unmarshal(%q): %v", data, err)
	}
	var walk func(*yaml.Node, bool)
	walk = func(n *yaml.Node, isKey bool) {
		if n.Kind == yaml.ScalarNode && !isKey {
			n.Value = strings.ReplaceAll(n.Value, "$", "$$")
		}
		for i, c := range n.Content {
			walk(c, n.Kind == yaml.MappingNode && i%2 == 0)
		}
	}
	walk(&n, false)
	out, err := yaml.Marshal(&n)
	if err != nil {
		t.Fatalf("yaml.Marshal: %v", err)
	}
	return out
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{
		"", "plain", "${SET}", "${UNSET:-d}", "$$", "$${SET}", "${", "${}", "${1}", "${A:-${B}}",
		"${SET:-x}y$", "${EMPTY:-$$}", "a$b$$c${SET}", "${SET:-}}",
	} {
		f.Add(s)
	}
	env := envMap(map[string]string{"SET": "v$${X}", "EMPTY": ""})
	f.Fuzz(func(t *testing.T, s string) {
		got, errs := expandEnv(s, env)
		if !strings.Contains(s, "$") && (got != s || errs != nil) {
			t.Fatalf("expandEnv(%q) = %q, %q; want the input unchanged", s, got, errs)
		}
		for _, e := range errs {
			if e == "" || strings.Contains(e, "v$${X}") {
				t.Fatalf("expandEnv(%q): bad problem %q", s, e)
			}
		}
		// Escaping every "$" makes any string come back literally.
		if got, errs := expandEnv(strings.ReplaceAll(s, "$", "$$"), env); got != s || errs != nil {
			t.Fatalf("expandEnv(escaped %q) = %q, %q; want the input", s, got, errs)
		}
		// Nothing is looked up twice or re-expanded: with no variables set
		// and no problems, the output has no more "$" than the input.
		if got, errs := expandEnv(s, noEnv); errs == nil && strings.Count(got, "$") > strings.Count(s, "$") {
			t.Fatalf("expandEnv(%q) with nothing set = %q: more $ than the input", s, got)
		}
	})
}
