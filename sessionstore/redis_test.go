package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpgw/gateway/sessionstore/redistest"
)

// TestRedis runs the Store contract against Redis. Each subtest gets a store
// with a prefix of its own on one shared redis-server.
func TestRedis(t *testing.T) {
	client := newTestClient(t, redistest.Start(t))
	var n atomic.Int64
	runContract(t, func(t *testing.T) harness {
		prefix := fmt.Sprintf("contract%d:", n.Add(1))
		clock := newFakeClock()
		return harness{
			store: NewRedis(client, &RedisOptions{Prefix: prefix, Now: clock.Now}),
			advance: func(d time.Duration) {
				clock.Advance(d)
				ageKeys(t, client, prefix, d)
			},
		}
	})
}

// newTestClient returns a client for srv, built as the gateway builds one,
// and closes it when the test ends.
func newTestClient(t testing.TB, srv *redistest.Server) redis.UniversalClient {
	t.Helper()
	client, err := NewRedisClient(&RedisClientConfig{URL: srv.URL()})
	if err != nil {
		t.Fatalf("NewRedisClient(%q) = %v, want nil", srv.URL(), err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// ageScript shortens a key's TTL by ARGV[1] ms, deleting the key if that
// leaves nothing; keys without a TTL are left alone. It runs atomically, so
// a Touch racing with it is never undone.
var ageScript = redis.NewScript(`
local t = redis.call('PTTL', KEYS[1])
if t < 0 then return 0 end
if t <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], t - tonumber(ARGV[1]))
end
return 1
`)

// ageKeys makes d pass, as far as expiry goes, for every key under prefix:
// Redis's clock cannot be faked, but the TTLs it counts down can be
// shortened. It is safe to call concurrently with the store's methods.
func ageKeys(t testing.TB, client redis.UniversalClient, prefix string, d time.Duration) {
	ctx := context.Background()
	iter := client.Scan(ctx, 0, globEscaper.Replace(prefix)+"*", 100).Iterator()
	for iter.Next(ctx) {
		if err := ageScript.Run(ctx, client, []string{iter.Val()}, d.Milliseconds()).Err(); err != nil {
			t.Errorf("aging key %q: %v", iter.Val(), err)
		}
	}
	if err := iter.Err(); err != nil {
		t.Errorf("scanning keys %q*: %v", prefix, err)
	}
}

// globEscaper escapes the characters SCAN MATCH treats as patterns.
var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)

// TestRedisRoundTrips checks that each call makes exactly one round trip,
// as the hot path of a request relies on.
func TestRedisRoundTrips(t *testing.T) {
	client := newTestClient(t, redistest.Start(t)).(*redis.Client)
	counter := &roundTrips{}
	client.AddHook(counter)
	s := NewRedis(client, nil)
	defer s.Close()
	events := NewRedisEventLog(client, nil)
	defer events.Close()
	ctx := t.Context()
	// Open the pool's connection first: its handshake (HELLO, CLIENT
	// SETINFO) is paid once per connection, not per call.
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING = %v", err)
	}

	for _, tc := range []struct {
		name string
		op   func() error
	}{
		{"Create", func() error { return s.Create(ctx, fullRecord("a"), time.Minute) }},
		{"Create existing", func() error {
			if err := s.Create(ctx, fullRecord("a"), time.Minute); !errors.Is(err, ErrExists) {
				return fmt.Errorf("Create = %v, want ErrExists", err)
			}
			return nil
		}},
		{"Get", func() error { _, err := s.Get(ctx, "a"); return err }},
		{"Get missing", func() error {
			if _, err := s.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("Get = %v, want ErrNotFound", err)
			}
			return nil
		}},
		{"Update", func() error { return s.Update(ctx, fullRecord("a"), time.Minute) }},
		{"Touch", func() error { return s.Touch(ctx, "a", time.Minute) }},
		{"Delete", func() error { return s.Delete(ctx, "a") }},
		{"Ping", func() error { return s.Ping(ctx) }},
		{"Publish", func() error { return s.Publish(ctx, "ch", []byte("x")) }},
		{"Append", func() error { _, err := events.Append(ctx, "s", "1", []byte("x")); return err }},
		{"After", func() error { _, err := events.After(ctx, "s", "1", ""); return err }},
		{"DeleteSession", func() error { return events.DeleteSession(ctx, "s") }},
	} {
		counter.reset()
		if err := tc.op(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := counter.get(); got != 1 {
			t.Errorf("%s made %d round trips, want 1", tc.name, got)
		}
	}
}

// roundTrips is a go-redis hook that counts commands and pipelines sent, one
// round trip each.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) reset()     { r.n.Store(0) }
func (r *roundTrips) get() int64 { return r.n.Load() }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestRedisPrefixIsolation checks that stores with different prefixes on
// one Redis never see each other's records, and that the default prefix is
// used when none is set.
func TestRedisPrefixIsolation(t *testing.T) {
	client := newTestClient(t, redistest.Start(t))
	ctx := t.Context()
	a := NewRedis(client, &RedisOptions{Prefix: "a:"})
	b := NewRedis(client, &RedisOptions{Prefix: "b:"})
	def := NewRedis(client, nil)
	for _, s := range []*Redis{a, b, def} {
		defer s.Close()
	}

	recA, recB := fullRecord("x"), fullRecord("x")
	recA.Owner, recB.Owner = "replica-a", "replica-b"
	if err := a.Create(ctx, recA, time.Minute); err != nil {
		t.Fatalf("a.Create = %v, want nil", err)
	}
	if _, err := b.Get(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("b.Get of a's record = %v, want ErrNotFound", err)
	}
	if err := b.Touch(ctx, "x", time.Minute); !errors.Is(err, ErrNotFound) {
		t.Errorf("b.Touch of a's record = %v, want ErrNotFound", err)
	}
	if err := b.Create(ctx, recB, time.Minute); err != nil {
		t.Errorf("b.Create of an id a holds = %v, want nil", err)
	}
	if err := b.Delete(ctx, "x"); err != nil {
		t.Fatalf("b.Delete = %v, want nil", err)
	}
	if got := mustGet(t, a, "x"); !sameRecord(got, recA) {
		t.Errorf("a.Get after b wrote and deleted its own = %s, want %s", show(got), show(recA))
	}

	if err := def.Create(ctx, fullRecord("y"), time.Minute); err != nil {
		t.Fatalf("Create with the default prefix = %v, want nil", err)
	}
	keys, err := client.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatalf("KEYS * = %v", err)
	}
	want := map[string]bool{"a:session:x": true, DefaultRedisPrefix + "session:y": true}
	if len(keys) != len(want) {
		t.Errorf("keys = %q, want those of %v", keys, want)
	}
	for _, k := range keys {
		if !want[k] {
			t.Errorf("unexpected key %q; want only %v", k, want)
		}
	}
}

// TestRedisGarbage checks that a key holding something this package did not
// write gives a clear error, never a panic and never ErrNotFound or
// ErrUnavailable, which would send the caller down the wrong path.
func TestRedisGarbage(t *testing.T) {
	client := newTestClient(t, redistest.Start(t))
	const key = DefaultRedisPrefix + "session:g"
	good := map[string]any{fieldRecord: `{"id":"g","transport":"sse"}`, fieldState: "", fieldUpdated: "2025-06-18T12:00:00Z"}
	with := func(k string, v any) map[string]any {
		m := make(map[string]any)
		for f, x := range good {
			m[f] = x
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		write func(ctx context.Context) error
	}{
		{"string", func(ctx context.Context) error { return client.Set(ctx, key, "garbage", 0).Err() }},
		{"list", func(ctx context.Context) error { return client.RPush(ctx, key, "a", "b").Err() }},
		{"hash of other fields", func(ctx context.Context) error { return client.HSet(ctx, key, "x", "y").Err() }},
		{"no record", func(ctx context.Context) error { return client.HSet(ctx, key, with(fieldRecord, nil)).Err() }},
		{"no updated", func(ctx context.Context) error { return client.HSet(ctx, key, with(fieldUpdated, nil)).Err() }},
		{"record not JSON", func(ctx context.Context) error { return client.HSet(ctx, key, with(fieldRecord, "{not json")).Err() }},
		{"record of wrong shape", func(ctx context.Context) error {
			return client.HSet(ctx, key, with(fieldRecord, `{"id":"g","subscriptions":"not a list"}`)).Err()
		}},
		{"record of another id", func(ctx context.Context) error { return client.HSet(ctx, key, with(fieldRecord, `{"id":"h"}`)).Err() }},
		{"updated not a time", func(ctx context.Context) error { return client.HSet(ctx, key, with(fieldUpdated, "yesterday")).Err() }},
		{"binary", func(ctx context.Context) error {
			return client.HSet(ctx, key, with(fieldRecord, "\x00\xff\xfe")).Err()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if err := client.Del(ctx, key).Err(); err != nil {
				t.Fatalf("DEL = %v", err)
			}
			if err := tc.write(ctx); err != nil {
				t.Fatalf("writing garbage: %v", err)
			}
			s := NewRedis(client, nil)
			defer s.Close()
			_, err := s.Get(ctx, "g")
			if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) || !errors.Is(err, errCorrupt) {
				t.Errorf("Get = %v, want an error wrapping errCorrupt", err)
			}
			// Writes either fail clearly or replace the garbage; none may
			// panic or claim the store is down.
			for _, op := range []struct {
				name string
				call func() error
			}{
				{"Touch", func() error { return s.Touch(ctx, "g", time.Minute) }},
				{"Update", func() error { return s.Update(ctx, fullRecord("g"), time.Minute) }},
				{"Create", func() error { return s.Create(ctx, fullRecord("g"), time.Minute) }},
			} {
				if err := op.call(); errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
					t.Errorf("%s = %v, want nil, ErrExists or a corruption error", op.name, err)
				}
			}
			if err := s.Delete(ctx, "g"); err != nil {
				t.Errorf("Delete = %v, want nil", err)
			}
			if err := s.Create(ctx, fullRecord("g"), time.Minute); err != nil {
				t.Errorf("Create after Delete = %v, want nil", err)
			}
		})
	}
}

// TestRedisDown stops Redis under a store: every call must fail within a
// bound with an error wrapping ErrUnavailable, and the store must work
// again, by itself, once Redis is back.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	client := newTestClient(t, srv)
	s := NewRedis(client, nil)
	defer s.Close()
	events := NewRedisEventLog(client, nil)
	defer events.Close()
	ctx := t.Context()
	if err := s.Create(ctx, fullRecord("a"), time.Minute); err != nil {
		t.Fatalf("Create = %v, want nil", err)
	}

	srv.Stop()
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "a"); return err }},
		{"Create", func() error { return s.Create(ctx, fullRecord("b"), time.Minute) }},
		{"Update", func() error { return s.Update(ctx, fullRecord("a"), time.Minute) }},
		{"Touch", func() error { return s.Touch(ctx, "a", time.Minute) }},
		{"Delete", func() error { return s.Delete(ctx, "a") }},
		{"Ping", func() error { return s.Ping(ctx) }},
		{"Publish", func() error { return s.Publish(ctx, "ch", []byte("x")) }},
		{"Subscribe", func() error {
			sub, err := s.Subscribe(ctx, "ch")
			if err == nil {
				sub.Close()
			}
			return err
		}},
		{"Append", func() error { _, err := events.Append(ctx, "s", "1", []byte("x")); return err }},
		{"After", func() error { _, err := events.After(ctx, "s", "1", ""); return err }},
		{"DeleteSession", func() error { return events.DeleteSession(ctx, "s") }},
	}
	for _, c := range calls {
		err, took := timed(t, c.call)
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("with Redis down, %s = %v, want an error wrapping ErrUnavailable", c.name, err)
		}
		if !strings.Contains(fmt.Sprint(err), "store unavailable") {
			t.Errorf("with Redis down, %s = %q, want it to say the store is unavailable", c.name, err)
		}
		t.Logf("with Redis down, %s failed in %v: %v", c.name, took, err)
	}

	srv.Restart()
	waitForRedis(t, s)
	// The restarted server is empty: the record is gone, and can be made
	// again.
	if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after the restart = %v, want ErrNotFound", err)
	}
	if err := s.Create(ctx, fullRecord("a"), time.Minute); err != nil {
		t.Fatalf("Create after the restart = %v, want nil", err)
	}
	for _, c := range calls {
		if err := c.call(); err != nil {
			t.Errorf("after the restart, %s = %v, want nil", c.name, err)
		}
	}
}

// downBound is how long a call may take to fail while Redis is down or
// unresponsive; the client's timeouts (DefaultRedisTimeout, go-redis's
// retries) must keep every call well inside it.
const downBound = 15 * time.Second

// timed runs call and returns its error and duration, failing the test if
// it does not return within downBound: a caller must never hang on Redis.
func timed(t *testing.T, call func() error) (error, time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- call() }()
	timer := time.NewTimer(downBound)
	defer timer.Stop()
	select {
	case err := <-done:
		return err, time.Since(start)
	case <-timer.C:
		t.Fatalf("call still running after %v", downBound)
		return nil, 0
	}
}

// waitForRedis waits until s can reach Redis again. go-redis reconnects on
// the next call that needs a connection and tells nobody, so there is no
// event to wait for: the condition itself is polled, within a bound.
func waitForRedis(t *testing.T, s *Redis) {
	t.Helper()
	deadline := time.Now().Add(downBound)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := s.Ping(t.Context())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis still unreachable %v after it restarted: %v", downBound, err)
		}
		<-tick.C
	}
}

// TestRedisUnresponsive points a store at a server that accepts connections
// and never answers, as a hung or partitioned Redis does: calls must fail
// with ErrUnavailable once the configured timeout passes, not hang.
func TestRedisUnresponsive(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never read or answered
			mu.Unlock()
		}
	})
	defer func() {
		l.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	}()

	const timeout = 200 * time.Millisecond
	client, err := NewRedisClient(&RedisClientConfig{URL: "redis://" + l.Addr().String() + "?max_retries=1", Timeout: timeout})
	if err != nil {
		t.Fatalf("NewRedisClient = %v, want nil", err)
	}
	defer client.Close()
	s := NewRedis(client, nil)
	defer s.Close()
	ctx := t.Context()
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "a"); return err }},
		{"Create", func() error { return s.Create(ctx, fullRecord("a"), time.Minute) }},
		{"Ping", func() error { return s.Ping(ctx) }},
		{"Subscribe", func() error {
			sub, err := s.Subscribe(ctx, "ch")
			if err == nil {
				sub.Close()
			}
			return err
		}},
	} {
		err, took := timed(t, c.call)
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("with Redis unresponsive, %s = %v, want an error wrapping ErrUnavailable", c.name, err)
		}
		t.Logf("with Redis unresponsive, %s failed in %v: %v", c.name, took, err)
	}
}

// TestRedisCallerCancels checks that a call whose ctx is cancelled reports
// the cancellation, not an unavailable store: the caller gave up, Redis did
// not fail.
func TestRedisCallerCancels(t *testing.T) {
	client := newTestClient(t, redistest.Start(t))
	s := NewRedis(client, nil)
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Get(ctx, "a")
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Errorf("Get with a cancelled ctx = %v, want context.Canceled and not ErrUnavailable", err)
	}
}

// TestRedisStateByteForByte checks that State survives as written, though
// encoding/json would compact it.
func TestRedisStateByteForByte(t *testing.T) {
	client := newTestClient(t, redistest.Start(t))
	s := NewRedis(client, nil)
	defer s.Close()
	ctx := t.Context()
	for _, state := range []string{`{ "a" : [1, 2] }`, "not JSON at all", "\x00\xff"} {
		rec := fullRecord("a")
		rec.State = []byte(state)
		if err := s.Delete(ctx, "a"); err != nil {
			t.Fatalf("Delete = %v", err)
		}
		if err := s.Create(ctx, rec, time.Minute); err != nil {
			t.Fatalf("Create with State %q = %v, want nil", state, err)
		}
		if got := mustGet(t, s, "a"); string(got.State) != state {
			t.Errorf("State = %q, want %q", got.State, state)
		}
	}
}

func TestTTLMillis(t *testing.T) {
	for _, tc := range []struct {
		ttl  time.Duration
		want int64
	}{
		{time.Nanosecond, 1},
		{time.Millisecond, 1},
		{time.Millisecond + 1, 2},
		{time.Minute, 60000},
	} {
		if got := ttlMillis(tc.ttl); got != tc.want {
			t.Errorf("ttlMillis(%v) = %d, want %d", tc.ttl, got, tc.want)
		}
	}
}
