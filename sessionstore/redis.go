package sessionstore

// Redis keeps each record in one hash, <prefix>session:<id>, whose Redis TTL
// is the record's ttl:
//
//	record   the Record as JSON, without State and with a stale UpdatedAt
//	state    State, byte for byte ("" for none)
//	updated  UpdatedAt, RFC 3339 with nanoseconds, UTC
//
// State has a field of its own because encoding/json compacts a
// json.RawMessage it marshals, and the contract keeps State byte for byte.
// UpdatedAt has one so that Touch can set it without reading and rewriting
// the record.
//
// Every call is one command, so one round trip: Get is HGETALL, Delete is
// DEL, and Create, Update and Touch are Lua scripts, sent with EVAL, that
// test whether the key exists and write it and its TTL atomically. (EVALSHA
// would send fewer bytes, but a server that has not seen the script yet, such
// as one that just restarted, answers NOSCRIPT and costs a second round trip;
// the scripts are a few hundred bytes.) Expiry is Redis's own: the server
// drops the key when its TTL runs out, so an expired record can be neither
// read nor resurrected.
//
// The store's clock only stamps CreatedAt and UpdatedAt; it never decides
// whether a record is live, so replicas whose clocks disagree still agree on
// that.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix is the key prefix of a Redis store or event log whose
// options set none.
const DefaultRedisPrefix = "mcpgw:"

// RedisOptions configures a Redis store. The zero value is ready to use.
type RedisOptions struct {
	// Prefix starts every key and pub/sub channel name the store uses, so
	// that several deployments, or tests, can share one Redis database
	// without seeing each other's records. If empty, DefaultRedisPrefix.
	Prefix string

	// Now returns the current time, for CreatedAt and UpdatedAt; tests
	// pass a fake clock. Expiry runs on the Redis server's clock. If nil,
	// time.Now.
	Now func() time.Time
}

// Redis is a Store that keeps records in Redis, so that every replica of the
// gateway sees every session. It is safe for concurrent use. Each Store
// method, Ping and Publish makes one round trip to Redis; if Redis cannot be
// reached the error wraps [ErrUnavailable], and the client reconnects by
// itself.
//
// Redis also carries messages between replicas: see [Redis.Publish] and
// [Redis.Subscribe].
//
// The client is the caller's: Close ends the store's subscriptions but does
// not close the client, which a [RedisEventLog] may share.
type Redis struct {
	client redis.UniversalClient
	prefix string
	now    func() time.Time

	closed atomic.Bool // read on every call, without the lock

	mu   sync.Mutex // guards subs, and orders Subscribe against Close
	subs map[*Subscription]struct{}
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store that keeps its records in Redis through client.
// opts may be nil. It does not contact Redis; use [Redis.Ping] to check that
// Redis can be reached.
func NewRedis(client redis.UniversalClient, opts *RedisOptions) *Redis {
	if opts == nil {
		opts = &RedisOptions{}
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Redis{
		client: client,
		prefix: prefix,
		now:    now,
		subs:   make(map[*Subscription]struct{}),
	}
}

// Record hash fields; see the file comment.
const (
	fieldRecord  = "record"
	fieldState   = "state"
	fieldUpdated = "updated"
)

// createScript stores a record unless its key exists.
// KEYS[1] record key; ARGV: record JSON, state, updated, ttl in ms.
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'state', ARGV[2], 'updated', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// updateScript replaces a record if its key exists.
// KEYS[1] record key; ARGV: record JSON, state, updated, ttl in ms.
var updateScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'state', ARGV[2], 'updated', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// touchScript sets a record's UpdatedAt and restarts its TTL if its key
// exists.
// KEYS[1] record key; ARGV: updated, ttl in ms.
var touchScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'updated', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// Create implements Store.
func (r *Redis) Create(ctx context.Context, rec *Record, ttl time.Duration) error {
	if err := checkWrite(rec, ttl); err != nil {
		return err
	}
	if r.closed.Load() {
		return errClosed
	}
	now := r.now()
	c := rec.clone()
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = now
	}
	c.CreatedAt, c.UpdatedAt = stamp(c.CreatedAt), stamp(c.UpdatedAt)
	args, err := encodeRecord(c, ttl)
	if err != nil {
		return err
	}
	ok, err := r.runWrite(ctx, "create session", createScript, c.ID, args...)
	if err != nil {
		return err
	}
	if !ok {
		return ErrExists
	}
	return nil
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, id string) (*Record, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if r.closed.Load() {
		return nil, errClosed
	}
	fields, err := r.client.HGetAll(ctx, r.recordKey(id)).Result()
	if err != nil {
		return nil, redisError(ctx, "get session", err)
	}
	if len(fields) == 0 {
		return nil, ErrNotFound
	}
	return decodeRecord(id, fields)
}

// Update implements Store.
func (r *Redis) Update(ctx context.Context, rec *Record, ttl time.Duration) error {
	if err := checkWrite(rec, ttl); err != nil {
		return err
	}
	if r.closed.Load() {
		return errClosed
	}
	c := rec.clone()
	c.CreatedAt, c.UpdatedAt = stamp(c.CreatedAt), stamp(r.now())
	args, err := encodeRecord(c, ttl)
	if err != nil {
		return err
	}
	ok, err := r.runWrite(ctx, "update session", updateScript, c.ID, args...)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotFound
	}
	return nil
}

// Touch implements Store.
func (r *Redis) Touch(ctx context.Context, id string, ttl time.Duration) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := checkTTL(ttl); err != nil {
		return err
	}
	if r.closed.Load() {
		return errClosed
	}
	ok, err := r.runWrite(ctx, "touch session", touchScript, id, formatTime(stamp(r.now())), ttlMillis(ttl))
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotFound
	}
	return nil
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if r.closed.Load() {
		return errClosed
	}
	if err := r.client.Del(ctx, r.recordKey(id)).Err(); err != nil {
		return redisError(ctx, "delete session", err)
	}
	return nil
}

// Ping reports whether Redis can be reached, for a readiness check. Its
// error wraps ErrUnavailable when Redis is down.
func (r *Redis) Ping(ctx context.Context) error {
	if r.closed.Load() {
		return errClosed
	}
	if err := r.client.Ping(ctx).Err(); err != nil {
		return redisError(ctx, "ping", err)
	}
	return nil
}

// Close ends the store's subscriptions and returns when their goroutines
// have exited; later calls but Close fail. It does not close the client. It
// is idempotent and always returns nil.
func (r *Redis) Close() error {
	r.closed.Store(true)
	r.mu.Lock()
	subs := r.subs
	r.subs = make(map[*Subscription]struct{})
	r.mu.Unlock()
	for s := range subs {
		s.Close()
	}
	return nil
}

// recordKey is the key of the record with the given id.
func (r *Redis) recordKey(id string) string {
	return r.prefix + "session:" + id
}

// runWrite runs one of the record scripts on the record with the given id
// and reports whether it wrote.
func (r *Redis) runWrite(ctx context.Context, op string, script *redis.Script, id string, args ...any) (bool, error) {
	n, err := script.Eval(ctx, r.client, []string{r.recordKey(id)}, args...).Int()
	if err != nil {
		return false, redisError(ctx, op, err)
	}
	return n == 1, nil
}

// encodeRecord returns the script arguments that store rec with ttl.
func encodeRecord(rec *Record, ttl time.Duration) ([]any, error) {
	state := rec.State
	rec.State = nil // stored apart, byte for byte
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("sessionstore: encoding record: %w", err)
	}
	return []any{data, []byte(state), formatTime(rec.UpdatedAt), ttlMillis(ttl)}, nil
}

// decodeRecord rebuilds the record with the given id from its hash fields.
// Whatever the hash holds, it returns a record or an error; it never
// panics.
func decodeRecord(id string, fields map[string]string) (*Record, error) {
	data, ok := fields[fieldRecord]
	if !ok {
		return nil, corrupt("no %q field", fieldRecord)
	}
	updated, ok := fields[fieldUpdated]
	if !ok {
		return nil, corrupt("no %q field", fieldUpdated)
	}
	var rec Record
	if err := json.Unmarshal([]byte(data), &rec); err != nil {
		return nil, corrupt("field %q: %v", fieldRecord, err)
	}
	if rec.ID != id {
		// Not an id: the key was written by someone else, or copied.
		return nil, corrupt("field %q holds another session's record", fieldRecord)
	}
	t, err := time.Parse(time.RFC3339Nano, updated)
	if err != nil {
		return nil, corrupt("field %q: %v", fieldUpdated, err)
	}
	rec.UpdatedAt = t
	rec.State = nil
	if s := fields[fieldState]; s != "" {
		rec.State = json.RawMessage(s)
	}
	return &rec, nil
}

// errCorrupt is wrapped by the error for a key that holds something this
// package did not write. Callers have no recovery but to report it, so it is
// not exported.
var errCorrupt = errors.New("corrupt data in redis")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("sessionstore: %w: %s", errCorrupt, fmt.Sprintf(format, args...))
}

// formatTime is how the updated field stores a time.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// ttlMillis converts a ttl to whole milliseconds, rounding up, so that a
// record never expires before its ttl.
func ttlMillis(ttl time.Duration) int64 {
	ms := ttl.Milliseconds()
	if ttl%time.Millisecond != 0 {
		ms++
	}
	return ms
}
