package sessionstore

// RedisEventLog keeps each stream of a session in a Redis Stream,
//
//	<prefix>events:{<session>}:<stream>
//
// with entries whose Redis ids are 0-<position> and whose one field "d" is
// the data, and each session's stream names in a set,
//
//	<prefix>events:{<session>}
//
// so that DeleteSession finds them without SCAN. Both keys carry the TTL:
// Append restarts it on the stream it writes and on the set, so the set
// outlives every stream it names. The session id in the braces is escaped
// ('%', '{' and '}' as %25, %7B, %7D): the braces are then a Redis Cluster
// hash tag that puts all of a session's keys in one slot, and the key names
// cannot collide, as the session part ends at the first '}'.
//
// Append is one Lua script (one round trip): it reads the stream's last id,
// adds the next position with XADD MAXLEN ~ (trimming whole internal nodes,
// which is cheap, so a stream may hold up to a node, 100 entries by default,
// more than MaxLen), and restarts both TTLs. Positions are computed by the
// script rather than with XADD's "0-*" so that Redis 6 works too. After is
// one XRANGE from the caller's position, which tells in one read both what
// follows it and whether anything between was trimmed. DeleteSession is one
// script.

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisEventLogOptions configures a RedisEventLog. The zero value is ready
// to use.
type RedisEventLogOptions struct {
	// Prefix starts every key the log uses; see RedisOptions.Prefix. If
	// empty, DefaultRedisPrefix.
	Prefix string

	// MaxLen is how many events each stream keeps at least; Redis trims
	// older ones approximately. If zero, DefaultEventMaxLen.
	MaxLen int

	// TTL is how long a stream is kept after its last Append, rounded up
	// to a millisecond. If zero, DefaultEventTTL.
	TTL time.Duration
}

// RedisEventLog is an EventLog that keeps events in Redis Streams, so that a
// client can resume a stream on any replica. It is safe for concurrent use.
// Each call makes one round trip to Redis; if Redis cannot be reached the
// error wraps [ErrUnavailable]. The client is the caller's: Close does not
// close it.
type RedisEventLog struct {
	client redis.UniversalClient
	prefix string
	maxLen int
	ttl    time.Duration
	closed atomic.Bool
}

var _ EventLog = (*RedisEventLog)(nil)

// NewRedisEventLog returns an event log that keeps its events in Redis
// through client. opts may be nil. It does not contact Redis.
func NewRedisEventLog(client redis.UniversalClient, opts *RedisEventLogOptions) *RedisEventLog {
	if opts == nil {
		opts = &RedisEventLogOptions{}
	}
	l := &RedisEventLog{
		client: client,
		prefix: opts.Prefix,
		maxLen: opts.MaxLen,
		ttl:    opts.TTL,
	}
	if l.prefix == "" {
		l.prefix = DefaultRedisPrefix
	}
	if l.maxLen <= 0 {
		l.maxLen = DefaultEventMaxLen
	}
	if l.ttl <= 0 {
		l.ttl = DefaultEventTTL
	}
	return l
}

// appendScript adds the next event to a stream.
// KEYS[1] stream key, KEYS[2] session set; ARGV: stream name, data, max
// length, ttl in ms. It returns the new event's position.
var appendScript = redis.NewScript(`
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local n = 1
if #last > 0 then
  local pos = string.match(last[1][1], '^0%-(%d+)$')
  if not pos then
    return redis.error_reply('ERR sessionstore: stream holds an entry it did not write: ' .. last[1][1])
  end
  n = tonumber(pos) + 1
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '0-' .. n, 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return n
`)

// deleteScript deletes a session's streams and their set.
// KEYS[1] session set; ARGV[1] the prefix of its stream keys. The stream
// keys are not declared, but they share the set's hash tag, so a Redis
// Cluster finds them on the same node.
var deleteScript = redis.NewScript(`
for _, s in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('DEL', ARGV[1] .. s)
end
redis.call('DEL', KEYS[1])
return 0
`)

// Append implements EventLog.
func (l *RedisEventLog) Append(ctx context.Context, session, stream string, data []byte) (string, error) {
	if err := checkSession(session); err != nil {
		return "", err
	}
	if l.closed.Load() {
		return "", errClosed
	}
	set := l.sessionKey(session)
	n, err := appendScript.Eval(ctx, l.client, []string{set + ":" + stream, set},
		stream, data, l.maxLen, ttlMillis(l.ttl)).Int64()
	if err != nil {
		return "", redisError(ctx, "append event", err)
	}
	return eventID(n), nil
}

// After implements EventLog.
func (l *RedisEventLog) After(ctx context.Context, session, stream, afterID string) ([]Event, error) {
	if err := checkSession(session); err != nil {
		return nil, err
	}
	after, err := parseAfter(afterID)
	if err != nil {
		return nil, err
	}
	if l.closed.Load() {
		return nil, errClosed
	}
	// From the caller's own event on: if it is still there, nothing after
	// it was trimmed; if the first entry is after+1, nothing was either.
	msgs, err := l.client.XRange(ctx, l.sessionKey(session)+":"+stream, "0-"+eventID(after), "+").Result()
	if err != nil {
		return nil, redisError(ctx, "read events", err)
	}
	if len(msgs) == 0 {
		// Trimming never removes the last entry, so no entry at or after
		// the caller's means an empty stream, or one that started over.
		if after == 0 {
			return nil, nil
		}
		return nil, ErrPurged
	}
	out := make([]Event, 0, len(msgs))
	for i, m := range msgs {
		n, err := entryPosition(m.ID)
		if err != nil {
			return nil, err
		}
		if i == 0 && n > after+1 {
			return nil, ErrPurged
		}
		if n <= after {
			continue // the caller's own event
		}
		d, ok := m.Values["d"].(string)
		if !ok {
			return nil, corrupt("stream entry %s has no data field", m.ID)
		}
		out = append(out, Event{ID: eventID(n), Data: []byte(d)})
	}
	return out, nil
}

// DeleteSession implements EventLog.
func (l *RedisEventLog) DeleteSession(ctx context.Context, session string) error {
	if err := checkSession(session); err != nil {
		return err
	}
	if l.closed.Load() {
		return errClosed
	}
	set := l.sessionKey(session)
	if err := deleteScript.Eval(ctx, l.client, []string{set}, set+":").Err(); err != nil {
		return redisError(ctx, "delete events", err)
	}
	return nil
}

// Close marks the log closed; later calls but Close fail. It does not close
// the client. It is idempotent and always returns nil.
func (l *RedisEventLog) Close() error {
	l.closed.Store(true)
	return nil
}

// sessionKey is the key of the set of a session's stream names, and the
// prefix, before ":<stream>", of its streams' keys.
func (l *RedisEventLog) sessionKey(session string) string {
	return l.prefix + "events:{" + hashTagEscaper.Replace(session) + "}"
}

// hashTagEscaper makes a session id safe between the braces of a hash tag;
// see the file comment.
var hashTagEscaper = strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")

// entryPosition returns the position in a stream entry id 0-<position>.
func entryPosition(id string) (int64, error) {
	pos, ok := strings.CutPrefix(id, "0-")
	if !ok {
		return 0, corrupt("stream entry %s was not written by this package", id)
	}
	n, err := strconv.ParseInt(pos, 10, 64)
	if err != nil || n < 1 {
		return 0, corrupt("stream entry %s was not written by this package", id)
	}
	return n, nil
}
