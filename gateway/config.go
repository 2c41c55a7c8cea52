// Configuration: the YAML file that says where the gateway listens and which
// MCP servers it fronts.
//
// Loading runs in fixed stages, each of which reports every problem it finds
// rather than the first:
//
//  1. Parse the bytes into a yaml.Node tree (syntax errors stop here).
//  2. Expand ${VAR} and ${VAR:-default} in scalar values of that tree. Values
//     are expanded, never raw text, so an environment variable can only ever
//     become (part of) one scalar: it cannot add keys or change structure.
//  3. Check every mapping key against the yaml tags of the Go types, with the
//     original line numbers and a did-you-mean. yaml.v3's Node.Decode has no
//     KnownFields, so this walk is what makes decoding strict.
//  4. Decode the tree with Node.Decode (type errors keep the original line
//     numbers). As a backstop for step 3, the tree is also re-encoded and
//     decoded with KnownFields(true); FuzzParseConfig checks that the two
//     agree.
//  5. ApplyDefaults, then Validate, which is pure: no network, filesystem or
//     globals.
//
// Steps 2-4 report together; a syntax error stops at step 1 and a decoding
// problem stops before step 5, since validating a half-decoded config would
// only add noise.

package gateway

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"gopkg.in/yaml.v3"

	"github.com/mcpgw/gateway/auth"
	"github.com/mcpgw/gateway/sessionstore"
)

// Config is the gateway configuration, as read from YAML.
type Config struct {
	// Listen is the host:port to listen on. If empty, 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// PublicURL, if set, is the absolute http(s) base for URLs the gateway
	// advertises.
	PublicURL string `yaml:"public_url"`
	// AllowedOrigins are the browser origins (scheme://host[:port]) accepted
	// in the Origin header. On a loopback listener, loopback origins are
	// always accepted.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// MaxBodyBytes caps request bodies. If zero, 4 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ShutdownGrace is how long, on SIGTERM, calls in flight may take to
	// finish before the gateway ends them and exits. If zero, 20s.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// FastPath, if not false, serves tools/call to shared upstreams
	// without the SDK's server transport (gateway/fastpath.go). Default
	// true; false trades speed for resumable answers to such calls.
	FastPath     *bool              `yaml:"fast_path"`
	Log          LogConfig          `yaml:"log"`
	Namespace    NamespaceConfig    `yaml:"namespace"`
	Upstreams    []UpstreamConfig   `yaml:"upstreams"`
	SessionStore SessionStoreConfig `yaml:"session_store"`
	Auth         AuthConfig         `yaml:"auth"`
	RequestState RequestStateConfig `yaml:"request_state"`
	Replica      ReplicaConfig      `yaml:"replica"`
	Metrics      MetricsConfig      `yaml:"metrics"`

	// Dir is the directory of the config file; relative cwd values resolve
	// against it. Not from YAML.
	Dir string `yaml:"-"`
}

// LogConfig selects the log level and format.
type LogConfig struct {
	// Level is debug, info, warn or error. If empty, info.
	Level string `yaml:"level"`
	// Format is text or json. If empty, text.
	Format string `yaml:"format"`
}

// NamespaceConfig controls how upstream names are prefixed onto tool and
// prompt names.
type NamespaceConfig struct {
	// Separator goes between prefix and name. If empty, "__".
	Separator string `yaml:"separator"`
	// MaxNameLength caps a namespaced name. If zero, 64.
	MaxNameLength int `yaml:"max_name_length"`
}

// UpstreamConfig is one MCP server behind the gateway.
type UpstreamConfig struct {
	// Name identifies the upstream; it matches ^[a-z0-9][a-z0-9-]{0,31}$.
	Name string `yaml:"name"`
	// Transport is TransportStdio, TransportSSE or TransportStreamableHTTP.
	Transport string `yaml:"transport"`

	// Command, Args, Env and Cwd start a stdio upstream. Env is the child's
	// explicit environment; Cwd is relative to the config file (see WorkDir).
	Command string            `yaml:"command"`
	Args    []string          `yaml:"args"`
	Env     map[string]string `yaml:"env"`
	Cwd     string            `yaml:"cwd"`

	// URL and Headers reach an sse or streamable-http upstream. Headers are
	// sent on every request.
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`

	// Prefix namespaces this upstream's tools and prompts. If nil, Name;
	// if "", they are mounted without a namespace.
	Prefix *string `yaml:"prefix"`

	// Tools, Prompts and Resources choose what is exposed. Resource globs
	// match resource URIs and URI templates.
	Tools     Filter `yaml:"tools"`
	Prompts   Filter `yaml:"prompts"`
	Resources Filter `yaml:"resources"`

	// Timeout bounds each call. If zero, 30s.
	Timeout Duration `yaml:"timeout"`

	// PingInterval is how often a connected upstream is pinged for health;
	// two missed pings in a row reconnect it (restart a stdio child). If
	// zero, 30s.
	PingInterval Duration `yaml:"ping_interval"`

	// Credentials authenticate the gateway itself to a remote upstream.
	Credentials *CredentialsConfig `yaml:"credentials"`

	// Sharing is how client sessions use the upstream: SharingShared (one
	// connection per replica, multiplexed) or SharingPerSession (one
	// connection per client session, carrying that client's capabilities:
	// sampling, elicitation, roots, logging). If empty, SharingShared.
	Sharing string `yaml:"sharing"`

	// Required makes the gateway unready (/readyz 503) while this upstream
	// is not up; others being down leaves it ready, serving the rest.
	Required bool `yaml:"required"`

	// ProtocolVersion is the MCP revision the gateway offers the upstream;
	// a server that does not speak 2026-07-28 is reached at 2025-11-25.
	// If empty, it depends on transport and sharing: see upstreamVersion.
	ProtocolVersion string `yaml:"protocol_version"`
}

// upstreamVersion is the revision offered to the upstream on a connection
// shared by all clients, or on one client session's own connection. Unless
// the config names one:
//   - sse: 2025-11-25, the newest it can carry;
//   - streamable-http: 2026-07-28. A server that keeps sessions declines it
//     and is reached at 2025-11-25; one that accepts it is stateless and
//     could not send a request to its client in any revision;
//   - stdio, shared: 2026-07-28. There a server's need for input comes back
//     in the result of the call that caused it, so the gateway knows whose
//     it is; a request sent on a shared connection could not be routed;
//   - stdio, per-session: 2025-11-25. The connection has one client, so
//     the server's requests (sampling, elicitation, roots, logging) reach
//     it whether the server sends them on the session or asks with
//     input_required (which the server's SDK then turns into requests).
func (u *UpstreamConfig) upstreamVersion(perSession bool) string {
	switch {
	case u.ProtocolVersion != "":
		return u.ProtocolVersion
	case u.Transport == TransportSSE, u.Transport == TransportStdio && perSession:
		return "2025-11-25"
	default:
		return version20260728
	}
}

// Sharing modes.
const (
	SharingShared     = "shared"
	SharingPerSession = "per-session"
)

// Filter selects names by glob: path.Match syntax, except that "*" also
// matches "/", so that globs over resource URIs cover whole subtrees.
type Filter struct {
	// Include lists the globs a name must match one of. If empty, every name
	// is included.
	Include []string `yaml:"include"`
	// Exclude lists globs that remove a name even if included.
	Exclude []string `yaml:"exclude"`
}

// RequestStateConfig controls the requestState the gateway seals into the
// input_required results it gives 2026-07-28 clients.
type RequestStateConfig struct {
	// Key is the 32-byte AES-256-GCM key, base64-encoded (standard or URL
	// alphabet, padding optional). Every replica of a deployment needs the
	// same key, so that a retry may land on any of them; generate one with
	// `openssl rand -base64 32`. If empty, a random key per process, which
	// serves one replica.
	Key string `yaml:"key"`
	// TTL is how long a client has to retry. If zero, 10m.
	TTL Duration `yaml:"ttl"`
}

// StateKey returns the decoded request state key, or nil if none is set.
func (c RequestStateConfig) StateKey() ([]byte, error) {
	if c.Key == "" {
		return nil, nil
	}
	k := strings.TrimRight(c.Key, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(k); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("decodes to %d bytes, not 32", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("is not base64")
}

// SessionStoreConfig selects where client sessions are kept.
type SessionStoreConfig struct {
	// Type is "memory" (one replica) or "redis" (any number of replicas
	// share the sessions). If empty, memory.
	Type string `yaml:"type"`
	// TTL is how long an idle session lives. If zero, 30m.
	TTL Duration `yaml:"ttl"`
	// Redis reaches the Redis server(s) when Type is redis.
	Redis *RedisConfig `yaml:"redis"`
}

// RedisConfig is how the gateway reaches Redis: one server by URL, or
// Sentinels (addrs + master_name), or a Cluster (addrs alone).
type RedisConfig struct {
	// URL is redis://[user[:password]@]host[:port][/db], or rediss:// for
	// TLS; put the password in with ${VAR}.
	URL              string   `yaml:"url"`
	Addrs            []string `yaml:"addrs"`
	MasterName       string   `yaml:"master_name"`
	Username         string   `yaml:"username"`
	Password         string   `yaml:"password"`
	SentinelUsername string   `yaml:"sentinel_username"`
	SentinelPassword string   `yaml:"sentinel_password"`
	DB               int      `yaml:"db"`
	TLS              bool     `yaml:"tls"`
	// Timeout bounds each dial, read and write. If zero, 2s.
	Timeout Duration `yaml:"timeout"`
	// Prefix starts every key and channel, so that deployments can share
	// a database. If empty, "mcpgw:".
	Prefix string `yaml:"prefix"`
}

// ClientConfig is the sessionstore package's view of c.
func (c *RedisConfig) ClientConfig() *sessionstore.RedisClientConfig {
	return &sessionstore.RedisClientConfig{
		URL: c.URL, Addrs: c.Addrs, MasterName: c.MasterName, Username: c.Username, Password: c.Password,
		SentinelUsername: c.SentinelUsername, SentinelPassword: c.SentinelPassword, DB: c.DB, TLS: c.TLS, Timeout: c.Timeout.Duration,
	}
}

// ReplicaConfig names this process among the gateway's replicas.
type ReplicaConfig struct {
	// ID names the replica in logs and sealed request states. If empty,
	// the host name (a pod's name) and a random suffix.
	ID string `yaml:"id"`
	// AdvertiseURL is how other replicas reach this one (scheme, host and
	// port of the listener; e.g. http://${POD_IP}:8080): a request that
	// lands on a replica not holding its session is forwarded here. If
	// empty, http://<host name>:<listen port>.
	AdvertiseURL string `yaml:"advertise_url"`
}

// MetricsConfig says where Prometheus metrics are served. They are
// never behind authentication, so by default no listener a client
// reaches serves them.
type MetricsConfig struct {
	// Listen, if set, is a host:port of its own that serves /metrics
	// (e.g. 127.0.0.1:9090, or 0.0.0.0:9090 for Prometheus in a cluster).
	// If empty, there is none.
	Listen string `yaml:"listen"`
	// Public serves /metrics on the main listener too. If false, the main
	// listener answers /metrics with 404.
	Public bool `yaml:"public"`
}

// Transports an upstream can use.
const (
	TransportStdio          = "stdio"
	TransportSSE            = "sse"
	TransportStreamableHTTP = "streamable-http"
)

// Defaults applied by ApplyDefaults.
const (
	defaultListen        = "127.0.0.1:8080"
	defaultMaxBodyBytes  = 4 << 20
	defaultLogLevel      = "info"
	defaultLogFormat     = "text"
	defaultSeparator     = "__"
	defaultMaxNameLength = 64
	defaultTimeout       = 30 * time.Second
	defaultSessionStore  = "memory"
	defaultSessionTTL    = 30 * time.Minute
)

// Duration is a time.Duration written in YAML as a Go duration string such
// as "30s" or "1m30s".
type Duration struct{ time.Duration }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(value *yaml.Node) error {
	if value.Kind != yaml.ScalarNode {
		// A *yaml.TypeError lets the decoder carry on and report other problems.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: a duration must be a string like 30s or 1m30s", value.Line)}}
	}
	v, err := time.ParseDuration(value.Value)
	if err != nil {
		hint := "use a duration like 30s or 1m30s"
		if _, nerr := strconv.ParseFloat(value.Value, 64); nerr == nil {
			hint = "add a unit, e.g. " + value.Value + "s"
		}
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid duration %q; %s", value.Line, value.Value, hint)}}
	}
	d.Duration = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) {
	return d.Duration.String(), nil
}

// Allows reports whether name passes the filter: it matches an Include glob
// (or Include is empty) and matches no Exclude glob. Globs use path.Match
// syntax, except that "/" is an ordinary character, so "*" also spans the
// slashes of a URI ("file:///etc/*" covers every file below /etc). Invalid
// globs match nothing; Validate rejects them.
func (f Filter) Allows(name string) bool {
	if len(f.Include) > 0 && !auth.MatchAny(f.Include, name) {
		return false
	}
	return !auth.MatchAny(f.Exclude, name)
}

// PublicPrefix is the namespace prefix for this upstream: *Prefix if set,
// else Name. "" means no namespace.
func (u *UpstreamConfig) PublicPrefix() string {
	if u.Prefix != nil {
		return *u.Prefix
	}
	return u.Name
}

// WorkDir is the directory a stdio upstream runs in: Cwd resolved against
// cfgDir, or cfgDir itself if Cwd is empty. An absolute Cwd is kept.
func (u *UpstreamConfig) WorkDir(cfgDir string) string {
	switch {
	case u.Cwd == "":
		return cfgDir
	case filepath.IsAbs(u.Cwd):
		return filepath.Clean(u.Cwd)
	default:
		return filepath.Join(cfgDir, u.Cwd)
	}
}

// ConfigError reports every problem found in a configuration.
type ConfigError struct {
	Problems []string
}

func (e *ConfigError) Error() string {
	return strings.Join(e.Problems, "\n")
}

// LoadConfig reads the config file at path; see ParseConfig. Config.Dir is
// the absolute directory of path. lookupEnv nil means os.LookupEnv.
func LoadConfig(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolving config path: %w", err)
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return ParseConfig(data, filepath.Dir(abs), lookupEnv)
}

// ParseConfig parses YAML config data: it expands ${VAR} and
// ${VAR:-default} in values using lookupEnv (nil means os.LookupEnv),
// decodes strictly, applies defaults and validates. dir becomes Config.Dir.
// Problems are returned as a *ConfigError listing all of them.
//
// An unquoted value that is entirely replaced by a number after expansion is
// read as that number (so max_body_bytes: ${MAX} works); anything else that
// contained a ${...} is a string.
func ParseConfig(data []byte, dir string, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	root, problem := parseDocument(data)
	if problem != "" {
		return nil, &ConfigError{Problems: []string{problem}}
	}

	var problems []string
	expandTree(root, "", lookupEnv, &problems)
	checkKeys(root, reflect.TypeFor[Config](), "config", map[visit]bool{}, &problems)
	// Node.Decode works on the original tree, so type errors carry the
	// original line numbers.
	cfg := new(Config)
	decodeErr := root.Decode(cfg)
	if decodeErr != nil {
		problems = append(problems, decodeProblems(decodeErr)...)
	}
	if len(problems) == 0 {
		if err := checkStrict(root); err != nil {
			problems = decodeProblems(err)
		}
	}
	// A config that decoded (even with unset variables or unknown keys) is
	// validated too, so that one run reports every problem. A half-decoded
	// one is not: its gaps would only add noise.
	if decodeErr == nil {
		cfg.Dir = dir
		cfg.ApplyDefaults()
		var verr *ConfigError
		if err := cfg.Validate(); errors.As(err, &verr) {
			problems = append(problems, verr.Problems...)
		}
	}
	if len(problems) > 0 {
		return nil, &ConfigError{Problems: problems}
	}
	return cfg, nil
}

// parseDocument parses data as exactly one YAML document whose root is a
// mapping. On failure it returns a problem.
func parseDocument(data []byte) (*yaml.Node, string) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, "config is empty; it needs at least an upstreams: list"
		}
		return nil, syntaxProblem(data, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxProblem(data, err)
	default:
		return nil, fmt.Sprintf("line %d: config has more than one YAML document; keep one (remove the extra ---)", next.Line)
	}
	if len(doc.Content) != 1 {
		return nil, "config is empty; it needs at least an upstreams: list"
	}
	root := doc.Content[0]
	switch {
	case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
		return nil, "config is empty; it needs at least an upstreams: list"
	case root.Kind != yaml.MappingNode:
		return nil, fmt.Sprintf("line %d: config must be a mapping of keys (listen:, upstreams:, ...), not %s", root.Line, kindName(root))
	}
	return root, ""
}

// syntaxProblem turns a yaml.v3 syntax error into a problem that names a line.
func syntaxProblem(data []byte, err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if hasLinePrefix(msg) {
		return "invalid YAML: " + msg + tabHint(data, msg)
	}
	// yaml.v3 omits the line for errors on the first line and for reader
	// errors; find the line ourselves.
	line := 1
	switch {
	case !utf8.Valid(data):
		line = lineOf(data, firstInvalidUTF8(data))
		msg = "config is not valid UTF-8"
	case msg == "control characters are not allowed":
		line = lineOf(data, bytes.IndexFunc(data, func(r rune) bool {
			return r < 0x20 && r != '\t' && r != '\n' && r != '\r'
		}))
	}
	return fmt.Sprintf("invalid YAML: line %d: %s%s", line, msg, tabHint(data, msg))
}

// tabHint explains the usual cause of yaml.v3's terse message about tabs.
func tabHint(data []byte, msg string) string {
	if strings.Contains(msg, "cannot start any token") && lineWithTabIndent(data) > 0 {
		return " (tabs are not allowed for indentation; use spaces)"
	}
	return ""
}

// hasLinePrefix reports whether msg starts with "line N: ".
func hasLinePrefix(msg string) bool {
	rest, ok := strings.CutPrefix(msg, "line ")
	if !ok {
		return false
	}
	digits, _, ok := strings.Cut(rest, ": ")
	_, err := strconv.Atoi(digits)
	return ok && err == nil
}

func firstInvalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

func lineOf(data []byte, offset int) int {
	if offset < 0 {
		return 1
	}
	return 1 + bytes.Count(data[:offset], []byte("\n"))
}

func lineWithTabIndent(data []byte) int {
	for i, l := range bytes.Split(data, []byte("\n")) {
		trimmed := bytes.TrimLeft(l, " \t")
		if bytes.IndexByte(l[:len(l)-len(trimmed)], '\t') >= 0 && len(trimmed) > 0 {
			return i + 1
		}
	}
	return 0
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	default:
		return "a single value"
	}
}

// decodeProblems splits a yaml.v3 decode error into problems, naming the
// Go types in them the way the config file would.
func decodeProblems(err error) []string {
	r := strings.NewReplacer(
		"into []gateway.UpstreamConfig", "into a list of upstreams",
		"into gateway.UpstreamConfig", "into an upstream (a mapping of name:, transport:, ...)",
		"into gateway.LogConfig", "into log settings (level:, format:)",
		"into gateway.NamespaceConfig", "into namespace settings (separator:, max_name_length:)",
		"into gateway.SessionStoreConfig", "into session_store settings (type:, ttl:)",
		"into gateway.Filter", "into a filter (include:, exclude:)",
		"into gateway.Config", "into the config",
		"into []string", "into a list of strings",
		"into map[string]string", "into a mapping of names to strings",
		"into *string", "into a string",
		"into int64", "into an integer",
		"into int", "into an integer",
	)
	var te *yaml.TypeError
	if errors.As(err, &te) {
		out := make([]string, len(te.Errors))
		for i, e := range te.Errors {
			out[i] = r.Replace(e)
		}
		return out
	}
	return []string{r.Replace(strings.TrimPrefix(err.Error(), "yaml: "))}
}

// checkStrict re-encodes the (expanded) tree and decodes that with
// KnownFields(true), returning the decoder's error. checkKeys has already
// reported unknown keys, with original line numbers and suggestions; this
// keeps loading strict even if that walk ever missed a case. The Config
// itself comes from Node.Decode on the original tree, so no quirk of
// re-encoding can change a value.
func checkStrict(root *yaml.Node) error {
	text, err := yaml.Marshal(encodable(root))
	if err != nil {
		return fmt.Errorf("re-encoding config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	var cfg Config
	return dec.Decode(&cfg)
}

// encodable returns a copy of the tree under n that re-encodes to the same
// values: without comments (which play no part in decoding), and with empty
// nulls spelled "null": inside flow collections the encoder would otherwise
// quote them, turning null into "".
func encodable(n *yaml.Node) *yaml.Node {
	copies := map[*yaml.Node]*yaml.Node{}
	var cp func(*yaml.Node) *yaml.Node
	cp = func(n *yaml.Node) *yaml.Node {
		if n == nil {
			return nil
		}
		if c, ok := copies[n]; ok {
			return c
		}
		c := *n
		copies[n] = &c
		c.HeadComment, c.LineComment, c.FootComment = "", "", ""
		if c.Kind == yaml.ScalarNode && c.Value == "" && c.ShortTag() == "!!null" {
			c.Value = "null"
		}
		c.Alias = cp(n.Alias)
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, child := range n.Content {
			c.Content[i] = cp(child)
		}
		return &c
	}
	return cp(n)
}

// # Environment expansion

// expandTree expands ${...} in every scalar value under n, in place. Keys are
// left alone. Aliases are not followed: the node they point to is expanded
// where it is defined, exactly once.
func expandTree(n *yaml.Node, at string, lookupEnv func(string) (string, bool), problems *[]string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		v, errs := expandEnv(n.Value, lookupEnv)
		for _, e := range errs {
			*problems = append(*problems, fmt.Sprintf("%s: %s", orTop(at), e))
		}
		if len(errs) > 0 {
			// Null decodes to the zero value, so a failed reference causes
			// no second, confusing type error.
			n.Tag, n.Value, n.Style = "!!null", "", 0
			return
		}
		if v == n.Value {
			return
		}
		n.Value = v
		// A plain scalar was resolved (to !!str) before expansion; resolve
		// the result instead, but let it become only a number or a string.
		if n.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			n.Tag = ""
			if t := n.ShortTag(); t != "!!int" && t != "!!float" {
				n.Tag = "!!str"
			} else {
				n.Tag = t
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandTree(c, fmt.Sprintf("%s[%d]", at, i), lookupEnv, problems)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			child := at
			if !(k.Kind == yaml.ScalarNode && k.Value == "<<") {
				child = joinPath(at, k.Value)
			}
			expandTree(v, child, lookupEnv, problems)
		}
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandTree(c, at, lookupEnv, problems)
		}
	}
}

func joinPath(at, key string) string {
	simple := key != "" && strings.IndexFunc(key, func(r rune) bool { return !isToolNameRune(r) || r == '.' }) < 0
	switch {
	case !simple:
		return fmt.Sprintf("%s[%q]", at, key)
	case at == "":
		return key
	default:
		return at + "." + key
	}
}

func orTop(at string) string {
	if at == "" {
		return "config"
	}
	return at
}

// expandEnv expands ${NAME} and ${NAME:-default} in s; "$$" is a literal "$"
// and a "$" before anything else is kept. The default is used when NAME is
// unset or empty; it runs to the first "}" and may use "$$" but not "${".
// The result is not expanded again. It returns one message per bad
// reference; values of variables never appear in messages.
func expandEnv(s string, lookupEnv func(string) (string, bool)) (string, []string) {
	var b strings.Builder
	var errs []string
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 == len(s) || (s[i+1] != '$' && s[i+1] != '{') {
			b.WriteByte(c)
			i++
			continue
		}
		if s[i+1] == '$' {
			b.WriteByte('$')
			i += 2
			continue
		}
		v, n, err := expandRef(s[i:], lookupEnv)
		if err != "" {
			errs = append(errs, err)
		}
		b.WriteString(v)
		i += n
	}
	return b.String(), errs
}

// expandRef expands the reference at the start of s, which begins with "${".
// It returns the value, how many bytes it used and a problem, if any.
func expandRef(s string, lookupEnv func(string) (string, bool)) (string, int, string) {
	end := strings.IndexByte(s, '}')
	if end < 0 {
		return "", len(s), fmt.Sprintf("unterminated %s; close it with } or write $$ for a literal $", excerpt(s))
	}
	ref, used := s[:end+1], end+1
	name, def, hasDefault := strings.Cut(s[2:end], ":-")
	switch {
	case name == "":
		return "", used, fmt.Sprintf("empty variable name in %s; write ${NAME} or $$ for a literal $", excerpt(ref))
	case !isEnvName(name):
		return "", used, fmt.Sprintf("invalid variable reference %s; write ${NAME} or ${NAME:-default}, where NAME matches [A-Za-z_][A-Za-z0-9_]*", excerpt(ref))
	}
	v, ok := lookupEnv(name)
	if !hasDefault {
		if !ok {
			return "", used, fmt.Sprintf("environment variable %s is not set; export it or write ${%s:-default}", name, name)
		}
		return v, used, ""
	}
	// The default is checked even when unused, so that a config's validity
	// does not depend on the environment.
	var b strings.Builder
	for i := 0; i < len(def); i++ {
		if def[i] == '$' && i+1 < len(def) {
			switch def[i+1] {
			case '$':
				i++
			case '{':
				return "", used, fmt.Sprintf("nested ${...} in the default of ${%s} is not supported; write a literal default", name)
			}
		}
		b.WriteByte(def[i])
	}
	if ok && v != "" {
		return v, used, ""
	}
	return b.String(), used, ""
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || !first && '0' <= c && c <= '9'
}

// excerpt quotes at most the first 24 bytes of s, for messages.
func excerpt(s string) string {
	const max = 24
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut] + "...")
	}
	return strconv.Quote(s)
}

// # Strict keys

type visit struct {
	n *yaml.Node
	t reflect.Type
}

// checkKeys reports mapping keys under n that no field of t (by yaml tag)
// accepts. It mirrors how yaml.v3 walks a value: through aliases, merge
// keys, pointers, slices and maps. Each (node, type) pair is walked once, so
// alias bombs cost nothing. Shape mismatches are left to the decoder.
func checkKeys(n *yaml.Node, t reflect.Type, where string, seen map[visit]bool, problems *[]string) {
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]()) || seen[visit{n, t}] {
		return
	}
	seen[visit{n, t}] = true

	switch t.Kind() {
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for _, c := range n.Content {
				checkKeys(c, t.Elem(), where, seen, problems)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				checkKeys(n.Content[i+1], t.Elem(), where, seen, problems)
			}
		}
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge") {
				checkMerge(v, t, where, seen, problems)
				continue
			}
			f, ok := fields[k.Value]
			if !ok || k.Kind != yaml.ScalarNode {
				*problems = append(*problems, unknownKey(k, where, fields))
				continue
			}
			child := k.Value
			if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
				child = strings.TrimSuffix(child, "s") // upstreams -> upstream
			}
			checkKeys(v, f.Type, child, seen, problems)
		}
	}
}

func checkMerge(v *yaml.Node, t reflect.Type, where string, seen map[visit]bool, problems *[]string) {
	if v.Kind == yaml.SequenceNode {
		for _, c := range v.Content {
			checkKeys(c, t, where, seen, problems)
		}
		return
	}
	checkKeys(v, t, where, seen, problems)
}

// yamlFields maps the YAML keys of struct type t to their fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	fields := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = strings.ToLower(f.Name)
		}
		fields[name] = f
	}
	return fields
}

func unknownKey(k *yaml.Node, where string, fields map[string]reflect.StructField) string {
	if k.Kind != yaml.ScalarNode {
		return fmt.Sprintf("line %d: keys must be plain names, not %s, in %s", k.Line, kindName(k), where)
	}
	valid := make([]string, 0, len(fields))
	for name := range fields {
		valid = append(valid, name)
	}
	sort.Strings(valid)
	if s := suggest(k.Value, valid); s != "" {
		return fmt.Sprintf("line %d: unknown key %q in %s (did you mean %q?)", k.Line, k.Value, where, s)
	}
	return fmt.Sprintf("line %d: unknown key %q in %s (valid keys: %s)", k.Line, k.Value, where, strings.Join(valid, ", "))
}

// suggest returns the valid key closest to key, or "" if none is close:
// equal ignoring case and "_"/"-", or within a small edit distance.
func suggest(key string, valid []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	best, bestDist := "", 0
	for _, v := range valid {
		if norm(v) == norm(key) {
			return v
		}
		d := editDistance(strings.ToLower(key), v)
		if d <= max(1, min(2, len(v)/3)) && (best == "" || d < bestDist) {
			best, bestDist = v, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// # Defaults and validation

// ApplyDefaults fills in every unset (zero) field that has a default.
func (c *Config) ApplyDefaults() {
	if c.Listen == "" {
		c.Listen = defaultListen
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = defaultMaxBodyBytes
	}
	if c.Log.Level == "" {
		c.Log.Level = defaultLogLevel
	}
	if c.Log.Format == "" {
		c.Log.Format = defaultLogFormat
	}
	if c.Namespace.Separator == "" {
		c.Namespace.Separator = defaultSeparator
	}
	if c.Namespace.MaxNameLength == 0 {
		c.Namespace.MaxNameLength = defaultMaxNameLength
	}
	for i := range c.Upstreams {
		if c.Upstreams[i].Sharing == "" {
			c.Upstreams[i].Sharing = SharingShared
		}
		if c.Upstreams[i].Timeout.Duration == 0 {
			c.Upstreams[i].Timeout.Duration = defaultTimeout
		}
		if c.Upstreams[i].PingInterval.Duration == 0 {
			c.Upstreams[i].PingInterval.Duration = 30 * time.Second
		}
	}
	if c.SessionStore.Type == "" {
		c.SessionStore.Type = defaultSessionStore
	}
	if c.SessionStore.TTL.Duration == 0 {
		c.SessionStore.TTL.Duration = defaultSessionTTL
	}
	if c.ShutdownGrace.Duration == 0 {
		c.ShutdownGrace.Duration = 20 * time.Second
	}
	if c.RequestState.TTL.Duration == 0 {
		c.RequestState.TTL.Duration = 10 * time.Minute
	}
}

// isUpstreamName reports whether s matches ^[a-z0-9][a-z0-9-]{0,31}$.
func isUpstreamName(s string) bool {
	return len(s) >= 1 && len(s) <= 32 && s[0] != '-' &&
		strings.IndexFunc(s, func(r rune) bool { return !isUpstreamNameRune(r) }) < 0
}

// isEnvName reports whether s matches [A-Za-z_][A-Za-z0-9_]*.
func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if !isNameByte(s[i], i == 0) {
			return false
		}
	}
	return true
}

// isScheme reports whether s is a URL scheme: [a-z][a-z0-9+.-]*.
func isScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '+' || r == '.' || r == '-')
	}) < 0
}

// isForbiddenHeader reports whether the canonical header name c is managed
// by the HTTP stack (hop-by-hop, framing) or by the MCP client session, so
// that a static value would break requests.
func isForbiddenHeader(c string) bool {
	switch c {
	case "Connection", "Content-Length", "Host", "Keep-Alive", "Proxy-Authorization",
		"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Mcp-Session-Id", "Mcp-Protocol-Version":
		return true
	}
	return false
}

// Validate checks the configuration, after ApplyDefaults, and returns a
// *ConfigError listing every problem, each as "path: problem; fix". It is
// pure: it touches no network, filesystem or global state.
func (c *Config) Validate() error {
	var p problemList

	validateHostPort(&p, "listen", c.Listen, "127.0.0.1:8080")
	if c.PublicURL != "" {
		if msg := checkHTTPURL(c.PublicURL, true); msg != "" {
			p.add("public_url: %s", msg)
		}
	}
	for i, o := range c.AllowedOrigins {
		if msg := checkOrigin(o); msg != "" {
			p.add("allowed_origins[%d]: %s", i, msg)
		}
	}
	if c.MaxBodyBytes < 1024 {
		p.add("max_body_bytes: %d is too small; use at least 1024 (default %d)", c.MaxBodyBytes, defaultMaxBodyBytes)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		p.add("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		p.add("log.format: %q is not one of text, json", c.Log.Format)
	}
	validateNamespace(&p, c.Namespace)

	if len(c.Upstreams) == 0 {
		p.add("upstreams: at least one upstream is required; add one under upstreams:")
	}
	names := map[string]int{}    // name -> first upstream index
	prefixes := map[string]int{} // non-empty public prefix -> first upstream index
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		validateUpstream(&p, u, upstreamPath(i, u))
		if u.Name != "" {
			if j, dup := names[u.Name]; dup {
				p.add("%s: name is already used by upstreams[%d]; names must be unique", upstreamPath(i, u), j)
			} else {
				names[u.Name] = i
			}
		}
		pre := u.PublicPrefix()
		if pre == "" {
			continue
		}
		if j, dup := prefixes[pre]; dup {
			// Two default prefixes collide only when the names do, which
			// is reported above.
			if u.Prefix != nil || c.Upstreams[j].Prefix != nil {
				p.add("%s: prefix %q is already used by %s; prefixes must be unique (set prefix: to another value)", upstreamPath(i, u), pre, upstreamPath(j, &c.Upstreams[j]))
			}
		} else {
			prefixes[pre] = i
		}
	}

	switch c.SessionStore.Type {
	case "memory":
		if c.SessionStore.Redis != nil {
			p.add("session_store.redis: only for type \"redis\"; remove it or set type: redis")
		}
	case "redis":
		if c.SessionStore.Redis == nil {
			p.add("session_store.redis: required for type \"redis\"; set url (redis://host:6379/0) or addrs")
		} else if err := c.SessionStore.Redis.ClientConfig().Validate(); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				p.add("session_store.redis.%s", line)
			}
		}
	default:
		p.add("session_store.type: %q is not a session store type; use \"memory\" or \"redis\"", c.SessionStore.Type)
	}
	if u := c.Replica.AdvertiseURL; u != "" {
		if msg := checkHTTPURL(u, false); msg != "" {
			p.add("replica.advertise_url: %s", msg)
		}
	}
	if c.SessionStore.TTL.Duration < time.Minute {
		p.add("session_store.ttl: %s is too short; use at least 1m", c.SessionStore.TTL.Duration)
	}
	if d := c.ShutdownGrace.Duration; d < 0 || d > time.Hour {
		p.add("shutdown_grace: %s is out of range; use 0s to 1h (default 20s)", d)
	}
	if _, err := c.RequestState.StateKey(); err != nil {
		p.add("request_state.key: %v; generate one with `openssl rand -base64 32`", err)
	}
	if d := c.RequestState.TTL.Duration; d < time.Second || d > 24*time.Hour {
		p.add("request_state.ttl: %s is out of range; use 1s to 24h (default 10m)", d)
	}
	if l := c.Metrics.Listen; l != "" {
		validateHostPort(&p, "metrics.listen", l, "127.0.0.1:9090")
		if sharePort(l, c.Listen) {
			p.add("metrics.listen: %q would take the port of listen %q; use another port (e.g. 127.0.0.1:9090), or set metrics.public: true to serve /metrics on the main listener", l, c.Listen)
		}
	}
	c.validateAuth(&p)
	return p.err()
}

// problemList collects validation problems.
type problemList []string

func (p *problemList) add(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

func (p problemList) err() error {
	if len(p) == 0 {
		return nil
	}
	return &ConfigError{Problems: p}
}

func upstreamPath(i int, u *UpstreamConfig) string {
	if u.Name == "" {
		return fmt.Sprintf("upstreams[%d]", i)
	}
	return fmt.Sprintf("upstreams[%d] %q", i, u.Name)
}

// validateHostPort checks the listen address addr of the key at path key;
// example is a valid one for the message.
func validateHostPort(p *problemList, key, addr, example string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add("%s: %q is not host:port; write e.g. %s", key, addr, example)
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		p.add("%s: port %q is not a number in 0-65535", key, port)
	}
	if _, err := netip.ParseAddr(host); host != "" && err != nil && !isHostname(host) {
		p.add("%s: host %q is not an IP address or host name", key, host)
	}
}

// sharePort reports whether two listen addresses would bind the same port:
// the same port number (not 0, which picks a free one) on the same host,
// or on a wildcard host.
func sharePort(a, b string) bool {
	hostA, portA, errA := net.SplitHostPort(a)
	hostB, portB, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || portA != portB || portA == "0" {
		return false
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return hostA == hostB || wildcard(hostA) || wildcard(hostB)
}

func isHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// checkHTTPURL checks that s is an absolute http(s) URL; base also forbids a
// query and fragment. It returns a problem or "". Messages show the URL with
// any password redacted.
func checkHTTPURL(s string, base bool) string {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Sprintf("is not a valid URL (%v); write an absolute http or https URL", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https", u.Hostname() == "", u.Opaque != "":
		return fmt.Sprintf("%q must be an absolute http or https URL like https://gw.example.com", u.Redacted())
	case base && (u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#")):
		return fmt.Sprintf("%q must not have a query or fragment; remove the part from ? or #", u.Redacted())
	}
	if _, port, err := net.SplitHostPort(u.Host); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return fmt.Sprintf("%q has an invalid port", u.Redacted())
		}
	}
	return ""
}

func checkOrigin(o string) string {
	switch o {
	case "*":
		return `"*" is not accepted; list each origin (loopback origins are always allowed when listen is a loopback address)`
	case "null":
		return `"null" is not accepted: opaque origins (sandboxed frames, file: pages) cannot be told apart; list real origins`
	}
	scheme, rest, ok := strings.Cut(o, "://")
	host := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		host = rest[:i]
	}
	if _, err := url.Parse(o); err != nil || !ok || !isScheme(strings.ToLower(scheme)) || host == "" || strings.Contains(host, "@") {
		return fmt.Sprintf("%q is not an origin; write scheme://host[:port], e.g. http://localhost:6274", o)
	}
	if host != rest {
		return fmt.Sprintf("%q has a path, query or fragment; write %q", o, scheme+"://"+host)
	}
	if h, port, err := net.SplitHostPort(host); err == nil {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 || h == "" {
			return fmt.Sprintf("%q has an invalid port; write scheme://host[:port]", o)
		}
	} else if strings.Contains(strings.Trim(host, "[]"), ":") && !strings.HasPrefix(host, "[") {
		return fmt.Sprintf("%q is not an origin; write scheme://host[:port], e.g. http://localhost:6274", o)
	}
	return ""
}

func validateNamespace(p *problemList, ns NamespaceConfig) {
	sep := ns.Separator
	switch {
	case len(sep) < 1 || len(sep) > 4 || strings.IndexFunc(sep, func(r rune) bool { return !isToolNameRune(r) }) >= 0:
		p.add("namespace.separator: %q must be 1-4 characters from [A-Za-z0-9_.-]; the default is \"__\"", sep)
	case strings.IndexFunc(sep, func(r rune) bool { return !isUpstreamNameRune(r) }) < 0:
		p.add("namespace.separator: %q could appear inside an upstream name; include a character names cannot contain (\"_\", \".\" or an uppercase letter)", sep)
	}
	if ns.MaxNameLength < 16 || ns.MaxNameLength > 128 {
		p.add("namespace.max_name_length: %d is out of range; use 16-128 (default %d)", ns.MaxNameLength, defaultMaxNameLength)
	}
}

func isToolNameRune(r rune) bool {
	return r == '_' || r == '.' || r == '-' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
}

func isUpstreamNameRune(r rune) bool {
	return r == '-' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9'
}

const transportList = TransportStdio + ", " + TransportSSE + ", " + TransportStreamableHTTP

func validateUpstream(p *problemList, u *UpstreamConfig, at string) {
	switch {
	case u.Name == "":
		p.add("%s: name is required; use lowercase letters, digits and \"-\"", at)
	case !isUpstreamName(u.Name):
		p.add("%s: name must match ^[a-z0-9][a-z0-9-]{0,31}$ (lowercase letters, digits and \"-\", at most 32)", at)
	}

	switch u.Transport {
	case "":
		p.add("%s: transport is required; use one of %s", at, transportList)
	case TransportStdio:
		if u.Command == "" {
			p.add("%s: command is required when transport is %q", at, u.Transport)
		}
		if u.URL != "" {
			p.add("%s: url is not used when transport is %q; remove it or change transport", at, u.Transport)
		}
		if len(u.Headers) > 0 {
			p.add("%s: headers are not used when transport is %q; remove them or change transport", at, u.Transport)
		}
		for _, k := range sortedKeys(u.Env) {
			if !isEnvName(k) {
				p.add("%s: env key %q is not a valid environment variable name; use [A-Za-z_][A-Za-z0-9_]*", at, k)
			}
		}
	case TransportSSE, TransportStreamableHTTP:
		if u.URL == "" {
			p.add("%s: url is required when transport is %q", at, u.Transport)
		} else if msg := checkHTTPURL(u.URL, false); msg != "" {
			p.add("%s: url %s", at, msg)
		}
		for _, f := range []struct {
			key string
			set bool
		}{
			{"command", u.Command != ""},
			{"args", len(u.Args) > 0},
			{"env", len(u.Env) > 0},
			{"cwd", u.Cwd != ""},
		} {
			if f.set {
				p.add("%s: %s is only for transport %q; remove it or change transport", at, f.key, TransportStdio)
			}
		}
		validateHeaders(p, u.Headers, at)
	default:
		p.add("%s: transport %q is not one of %s", at, u.Transport, transportList)
	}

	if u.Prefix != nil && *u.Prefix != "" && !isUpstreamName(*u.Prefix) {
		p.add("%s: prefix %q must match ^[a-z0-9][a-z0-9-]{0,31}$, or be \"\" to mount without a namespace", at, *u.Prefix)
	}
	for _, f := range []struct {
		key string
		f   Filter
	}{{"tools", u.Tools}, {"prompts", u.Prompts}, {"resources", u.Resources}} {
		checkGlobs(p, at, f.key+".include", f.f.Include)
		checkGlobs(p, at, f.key+".exclude", f.f.Exclude)
	}
	if u.Timeout.Duration <= 0 || u.Timeout.Duration > time.Hour {
		p.add("%s: timeout %s is out of range; use more than 0 and at most 1h (default 30s)", at, u.Timeout.Duration)
	}
	if d := u.PingInterval.Duration; d < 100*time.Millisecond || d > time.Hour {
		p.add("%s: ping_interval %s is out of range; use 100ms to 1h (default 30s)", at, d)
	}
	if u.Sharing != SharingShared && u.Sharing != SharingPerSession {
		p.add("%s: sharing %q is not one of %s, %s", at, u.Sharing, SharingShared, SharingPerSession)
	}
	if v := u.ProtocolVersion; v != "" {
		switch {
		case !slices.Contains(mcp.SupportedProtocolVersions(), v):
			p.add("%s: protocol_version %q is not one of %s (or leave it out)", at, v, strings.Join(mcp.SupportedProtocolVersions(), ", "))
		case v >= version20260728 && u.Transport == TransportSSE:
			p.add("%s: protocol_version %q cannot be spoken over transport %q; use streamable-http or an older revision", at, v, TransportSSE)
		}
	}
}

func validateHeaders(p *problemList, headers map[string]string, at string) {
	canon := map[string]string{}
	for _, k := range sortedKeys(headers) {
		if !isToken(k) {
			p.add("%s: header name %q is not a valid HTTP header name (letters, digits and !#$%%&'*+-.^_`|~)", at, k)
			continue
		}
		c := textproto.CanonicalMIMEHeaderKey(k)
		if isForbiddenHeader(c) {
			p.add("%s: header %q is managed by the gateway and cannot be set; remove it", at, k)
		}
		if prev, dup := canon[c]; dup {
			p.add("%s: headers %q and %q are the same header; keep one", at, prev, k)
		}
		canon[c] = k
		if strings.ContainsFunc(headers[k], func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
			p.add("%s: header %q value contains a control character (newline?); remove it", at, k)
		}
	}
}

func checkGlobs(p *problemList, at, key string, globs []string) {
	for i, g := range globs {
		if g == "" {
			p.add("%s: %s[%d] is empty and matches nothing; remove it", at, key, i)
			continue
		}
		if _, err := path.Match(g, ""); err != nil {
			p.add("%s: %s[%d] %q is not a valid glob (%v); see path.Match syntax", at, key, i, g, err)
		}
	}
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
