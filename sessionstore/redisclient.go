package sessionstore

// This file says how to reach Redis (RedisClientConfig, NewRedisClient) and
// what its failures mean (redisError): which errors are "Redis is not there
// right now", wrapped in ErrUnavailable so that a server can answer 503, and
// which are bugs or bad data, which a retry does not fix.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisTimeout bounds each dial, read and write of a client built by
// NewRedisClient whose config sets no Timeout. go-redis's own defaults (5s
// dials retried five times, 3s reads, each command retried three times) can
// keep a caller waiting for a minute when Redis is unreachable; a gateway
// would rather answer 503 within seconds.
const DefaultRedisTimeout = 2 * time.Second

// RedisClientConfig says how to reach Redis. It is plain data, so that a
// config file maps onto it field by field, and [RedisClientConfig.Validate]
// checks it without touching the network.
//
// Set URL to reach one server, or Addrs to reach a Redis Cluster, or Addrs
// and MasterName to reach the master that Redis Sentinels point to.
type RedisClientConfig struct {
	// URL is one server:
	// redis://[user[:password]@]host[:port][/db][?option=value&...], or
	// rediss:// for TLS. The options are go-redis's (redis.ParseURL):
	// dial_timeout, read_timeout, write_timeout, max_retries, pool_size,
	// skip_verify and more. Username, Password, DB and TLS must be left
	// unset: the URL carries them.
	URL string

	// Addrs are host:port seeds of a Redis Cluster, or the addresses of
	// the Sentinels when MasterName is set.
	Addrs []string

	// MasterName is the name of the master the Sentinels at Addrs watch.
	// Empty with Addrs set means Redis Cluster.
	MasterName string

	// Username and Password authenticate to Redis (an ACL user, or the
	// requirepass password with an empty Username). With Sentinels they
	// are for the master and replicas.
	Username string
	Password string

	// SentinelUsername and SentinelPassword authenticate to the
	// Sentinels, if they require it.
	SentinelUsername string
	SentinelPassword string

	// DB is the database number with Sentinels; a Cluster has only 0.
	DB int

	// TLS makes the connections to Addrs use TLS, verified against the
	// system roots.
	TLS bool

	// Timeout bounds each dial, read and write. If zero,
	// DefaultRedisTimeout; options in URL take precedence.
	Timeout time.Duration
}

// Validate reports every problem of c, or nil. Each problem names its field
// as a YAML config spells it (url, addrs, master_name, ...), so a config
// loader can put its own path in front. It touches no network.
func (c *RedisClientConfig) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	switch {
	case c.URL == "" && len(c.Addrs) == 0:
		add("url or addrs is required")
	case c.URL != "" && len(c.Addrs) > 0:
		add("url and addrs are exclusive; set url for one server, addrs for Sentinel or Cluster")
	case c.URL != "":
		if _, err := redis.ParseURL(c.URL); err != nil {
			// Only the scheme is shown: the URL may hold a password.
			add("url: %s", redactURLError(c.URL, err))
		} else if u, _ := url.Parse(c.URL); u.Scheme != "redis" && u.Scheme != "rediss" {
			add("url: scheme %q is not supported; use redis:// or rediss://", u.Scheme)
		}
		if c.Username != "" || c.Password != "" || c.DB != 0 || c.TLS {
			add("url: username, password, db and tls must be set in the URL itself")
		}
		if c.SentinelUsername != "" || c.SentinelPassword != "" {
			add("sentinel_username, sentinel_password: need addrs and master_name, not url")
		}
		if c.MasterName != "" {
			add("master_name: needs addrs (the Sentinels), not url")
		}
	default:
		for i, a := range c.Addrs {
			if a == "" || !strings.Contains(a, ":") {
				add("addrs[%d]: %q is not host:port", i, a)
			}
		}
		if c.MasterName == "" && c.DB != 0 {
			add("db: a Redis Cluster has only database 0")
		}
		if c.MasterName == "" && (c.SentinelUsername != "" || c.SentinelPassword != "") {
			add("sentinel_username, sentinel_password: need master_name (Sentinel); with addrs alone, Redis Cluster is used")
		}
	}
	if c.DB < 0 {
		add("db: %d is negative", c.DB)
	}
	if c.Timeout < 0 {
		add("timeout: %v is negative", c.Timeout)
	}
	return errors.Join(errs...)
}

// NewRedisClient returns a go-redis client for cfg: a single-server client
// for a URL, a Sentinel-backed one for Addrs with MasterName, a Cluster one
// for Addrs alone. It does not contact Redis. The caller closes the client
// after the stores that use it.
func NewRedisClient(cfg *RedisClientConfig) (redis.UniversalClient, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sessionstore: redis config: %w", err)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultRedisTimeout
	}
	if cfg.URL != "" {
		opts, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("sessionstore: redis config: url: %s", redactURLError(cfg.URL, err))
		}
		// Zero means "not in the URL": fill in bounded defaults.
		if opts.DialTimeout == 0 {
			opts.DialTimeout = timeout
		}
		if opts.ReadTimeout == 0 {
			opts.ReadTimeout = timeout
		}
		if opts.WriteTimeout == 0 {
			opts.WriteTimeout = timeout
		}
		opts.DialerRetries = redisDialAttempts
		opts.ContextTimeoutEnabled = true
		return redis.NewClient(opts), nil
	}
	opts := &redis.UniversalOptions{
		Addrs:                 cfg.Addrs,
		MasterName:            cfg.MasterName,
		Username:              cfg.Username,
		Password:              cfg.Password,
		SentinelUsername:      cfg.SentinelUsername,
		SentinelPassword:      cfg.SentinelPassword,
		DB:                    cfg.DB,
		DialTimeout:           timeout,
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		DialerRetries:         redisDialAttempts,
		ContextTimeoutEnabled: true,
		// With Addrs and no MasterName, a single seed is still a
		// Cluster; NewUniversalClient would make it a plain client.
		IsClusterMode: cfg.MasterName == "",
	}
	if cfg.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return redis.NewUniversalClient(opts), nil
}

// redisDialAttempts is how often one dial is tried before the command fails
// or is retried. The command-level retries (go-redis's MaxRetries) already
// back off between attempts; go-redis's default of five dial attempts per
// command attempt multiplies the wait for an unreachable Redis.
const redisDialAttempts = 2

// redactURLError describes a URL parse error without the URL, which may
// hold a password.
func redactURLError(raw string, err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return fmt.Sprintf("not a valid URL: %v", uerr.Err)
	}
	msg := err.Error()
	if raw != "" {
		msg = strings.ReplaceAll(msg, raw, "<url>")
	}
	return msg
}

// transientReplies are the prefixes of Redis error replies that mean the
// server cannot serve now but will: it is loading its data, failing over,
// or busy running a script.
var transientReplies = []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS"}

// redisError turns an error from the Redis client, for the operation op,
// into this package's: connectivity problems wrap ErrUnavailable, a key of
// the wrong type wraps errCorrupt, the caller's own cancellation stays what
// it is.
func redisError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		// The caller gave up; whether Redis is healthy is unknown.
		return fmt.Errorf("sessionstore: %s: %w", op, err)
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		switch {
		case redis.HasErrorPrefix(err, "WRONGTYPE"):
			return fmt.Errorf("sessionstore: %s: %w: %w", op, errCorrupt, err)
		case isTransientReply(err):
			return &unavailableError{op: op, err: err}
		}
		return fmt.Errorf("sessionstore: %s: %w", op, err)
	}
	// Anything else the client reports is about the connection: refused,
	// reset, timed out, pool exhausted, client closed.
	return &unavailableError{op: op, err: err}
}

func isTransientReply(err error) bool {
	for _, p := range transientReplies {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// unavailableError is a Redis failure that wraps both ErrUnavailable and
// the client's error, and reads "sessionstore: <op>: store unavailable:
// <cause>".
type unavailableError struct {
	op  string
	err error
}

func (e *unavailableError) Error() string {
	return "sessionstore: " + e.op + ": store unavailable: " + e.err.Error()
}

func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }
