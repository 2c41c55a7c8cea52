package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedisClientConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  RedisClientConfig
		want []string // substrings of the error; none means valid
	}{
		{"url", RedisClientConfig{URL: "redis://localhost:6379/2"}, nil},
		{"tls url with options", RedisClientConfig{URL: "rediss://u:p@redis.example:6380?dial_timeout=3s&max_retries=2"}, nil},
		{"cluster", RedisClientConfig{Addrs: []string{"a:7000", "b:7000"}, TLS: true, Password: "p"}, nil},
		{"sentinel", RedisClientConfig{Addrs: []string{"s1:26379"}, MasterName: "mymaster", DB: 3}, nil},
		{"nothing", RedisClientConfig{}, []string{"url or addrs is required"}},
		{"both", RedisClientConfig{URL: "redis://a", Addrs: []string{"b:1"}}, []string{"exclusive"}},
		{"scheme", RedisClientConfig{URL: "http://a:1"}, []string{"url:", "http"}},
		{"unix", RedisClientConfig{URL: "unix:///tmp/redis.sock"}, []string{`scheme "unix" is not supported`}},
		{"bad db", RedisClientConfig{URL: "redis://a:1/x"}, []string{"url:", "database"}},
		{"unknown option", RedisClientConfig{URL: "redis://a:1?color=blue"}, []string{"url:", "color"}},
		{"url and fields", RedisClientConfig{URL: "redis://a:1", Password: "p", TLS: true}, []string{"must be set in the URL"}},
		{"url and master", RedisClientConfig{URL: "redis://a:1", MasterName: "m"}, []string{"master_name"}},
		{"addr without port", RedisClientConfig{Addrs: []string{"a:1", "b"}}, []string{`addrs[1]: "b" is not host:port`}},
		{"sentinel password without sentinel", RedisClientConfig{Addrs: []string{"a:1"}, SentinelPassword: "p"}, []string{"need master_name"}},
		{"sentinel password with url", RedisClientConfig{URL: "redis://a:1", SentinelPassword: "p"}, []string{"not url"}},
		{"cluster db", RedisClientConfig{Addrs: []string{"a:1"}, DB: 1}, []string{"database 0"}},
		{"negatives", RedisClientConfig{Addrs: []string{"s:1"}, MasterName: "m", DB: -1, Timeout: -time.Second}, []string{"db: -1", "timeout: -1s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error mentioning %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to mention %q", err, w)
				}
			}
			if _, nerr := NewRedisClient(&tc.cfg); nerr == nil {
				t.Errorf("NewRedisClient accepted a config Validate rejects")
			}
		})
	}
}

// TestRedisClientConfigHidesPassword checks that an invalid URL is reported
// without the password it carries: config errors end up in logs.
func TestRedisClientConfigHidesPassword(t *testing.T) {
	for _, u := range []string{
		"redis://user:s3cret@host:6379/notadb",
		"redis://user:s3cret@host:6379?bogus=1",
		"redis://user:s3cret@[::1:6379",
		"redis ://user:s3cret@host",
	} {
		err := (&RedisClientConfig{URL: u}).Validate()
		if err == nil {
			t.Errorf("Validate(%q) = nil, want an error", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Validate(%q) = %q: it shows the password", u, err)
		}
	}
}

func TestNewRedisClient(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      RedisClientConfig
		wantType string
		check    func(t *testing.T, c redis.UniversalClient)
	}{
		{"url", RedisClientConfig{URL: "redis://u:p@h:1/2"}, "*redis.Client", func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.Client).Options()
			if o.Addr != "h:1" || o.Username != "u" || o.Password != "p" || o.DB != 2 {
				t.Errorf("options = addr %q user %q db %d, want h:1, u, 2", o.Addr, o.Username, o.DB)
			}
			if o.DialTimeout != DefaultRedisTimeout || o.ReadTimeout != DefaultRedisTimeout || o.WriteTimeout != DefaultRedisTimeout {
				t.Errorf("timeouts = %v, %v, %v; want %v", o.DialTimeout, o.ReadTimeout, o.WriteTimeout, DefaultRedisTimeout)
			}
			if !o.ContextTimeoutEnabled {
				t.Error("ContextTimeoutEnabled = false, want true: a caller's deadline must bound the call")
			}
		}},
		{"url options win", RedisClientConfig{URL: "redis://h:1?read_timeout=7s", Timeout: time.Second}, "*redis.Client", func(t *testing.T, c redis.UniversalClient) {
			o := c.(*redis.Client).Options()
			if o.ReadTimeout != 7*time.Second || o.DialTimeout != time.Second {
				t.Errorf("read, dial timeout = %v, %v; want 7s from the URL, 1s from Timeout", o.ReadTimeout, o.DialTimeout)
			}
		}},
		{"tls url", RedisClientConfig{URL: "rediss://h:1"}, "*redis.Client", func(t *testing.T, c redis.UniversalClient) {
			if c.(*redis.Client).Options().TLSConfig == nil {
				t.Error("TLSConfig = nil for rediss://, want TLS")
			}
		}},
		{"sentinel", RedisClientConfig{Addrs: []string{"s:26379"}, MasterName: "m"}, "*redis.Client", nil},
		{"cluster of one seed", RedisClientConfig{Addrs: []string{"a:7000"}}, "*redis.ClusterClient", nil},
		{"cluster", RedisClientConfig{Addrs: []string{"a:7000", "b:7000"}, TLS: true}, "*redis.ClusterClient", func(t *testing.T, c redis.UniversalClient) {
			if c.(*redis.ClusterClient).Options().TLSConfig == nil {
				t.Error("TLSConfig = nil with TLS set, want TLS")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewRedisClient(&tc.cfg)
			if err != nil {
				t.Fatalf("NewRedisClient = %v, want nil", err)
			}
			defer c.Close()
			if got := fmt.Sprintf("%T", c); got != tc.wantType {
				t.Errorf("client type = %s, want %s", got, tc.wantType)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestRedisError(t *testing.T) {
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name            string
		ctx             context.Context
		err             error
		wantUnavailable bool
		wantCorrupt     bool
	}{
		{"refused", ctx, errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), true, false},
		{"client closed", ctx, redis.ErrClosed, true, false},
		{"pool timeout", ctx, redis.ErrPoolTimeout, true, false},
		{"loading", ctx, redisReply("LOADING Redis is loading the dataset in memory"), true, false},
		{"readonly", ctx, redisReply("READONLY You can't write against a read only replica."), true, false},
		{"clusterdown", ctx, redisReply("CLUSTERDOWN The cluster is down"), true, false},
		{"wrongtype", ctx, redisReply("WRONGTYPE Operation against a key holding the wrong kind of value"), false, true},
		{"syntax", ctx, redisReply("ERR syntax error"), false, false},
		{"caller cancelled", cancelled, context.Canceled, false, false},
		// A deadline of the client's own, not the caller's: Redis is slow.
		{"client timeout", ctx, context.DeadlineExceeded, true, false},
	} {
		err := redisError(tc.ctx, "get session", tc.err)
		if got := errors.Is(err, ErrUnavailable); got != tc.wantUnavailable {
			t.Errorf("%s: redisError(%v) = %v; wraps ErrUnavailable: %v, want %v", tc.name, tc.err, err, got, tc.wantUnavailable)
		}
		if got := errors.Is(err, errCorrupt); got != tc.wantCorrupt {
			t.Errorf("%s: redisError(%v) = %v; wraps errCorrupt: %v, want %v", tc.name, tc.err, err, got, tc.wantCorrupt)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: redisError(%v) = %v, want it to wrap the cause", tc.name, tc.err, err)
		}
		if !strings.HasPrefix(err.Error(), "sessionstore: get session: ") {
			t.Errorf("%s: redisError(%v) = %q, want it to start with the package and operation", tc.name, tc.err, err)
		}
	}
}

// redisReply is an error reply from the server, as go-redis reports one.
type redisReply string

func (e redisReply) Error() string { return string(e) }
func (redisReply) RedisError()     {}
