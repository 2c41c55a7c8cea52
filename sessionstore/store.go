// Package sessionstore keeps what the gateway's replicas share about client
// sessions: the session records, the events of resumable streams, and a
// message bus between replicas. The package knows nothing of MCP; it stores a
// [Record]'s fields, events and messages as opaque data.
//
// Records and events each have an interface, an in-process implementation
// for a single replica, and a Redis one, so that any replica can serve any
// session:
//   - session records: [Store], kept by [Memory] in process or by [Redis]
//     in one Redis hash per record;
//   - events of resumable streams: [EventLog], kept by [MemoryEventLog] or
//     by [RedisEventLog] in Redis Streams.
//
// Fan-out between replicas (cache invalidation, change notices) exists only
// over Redis, [Redis.Publish] and [Redis.Subscribe]: a single replica has
// no one to tell.
//
// One contract test suite per interface runs against every implementation.
// [NewRedisClient] builds the go-redis client from a URL or from Sentinel or
// Cluster addresses; the Redis types share it and never close it. The
// redistest package starts a real redis-server for tests.
//
// # Expiry
//
// A record lives for a ttl without use. Create, Update and Touch (re)start
// that ttl; Get does not, so reading a record never keeps it alive. Once the
// ttl has run out the record is gone for good: Get, Update and Touch report
// [ErrNotFound], and only Create can store a record with that id again.
//
// # Guarantees
//
// Every Store:
//   - is safe for concurrent use;
//   - copies records in and out: after Create or Update the caller may reuse
//     its Record, and a Record returned by Get shares no slice, map or
//     State bytes with the store or with other callers;
//   - creates atomically: of concurrent Creates with one id, exactly one
//     succeeds and the others get [ErrExists];
//   - rejects an empty id, a nil record and a ttl <= 0 with an error that is
//     neither ErrNotFound nor ErrExists, and stores nothing;
//   - fills a zero CreatedAt or UpdatedAt on Create with its clock, and sets
//     UpdatedAt on Update and Touch; the caller's Record is never modified;
//   - fails every call but Close once closed; Close is idempotent.
//
// A store may return nil for an empty slice or map, may drop a time's
// monotonic reading and location (compare times with [time.Time.Equal]),
// and may round a ttl up to its own resolution (Redis: milliseconds).
//
// # Failures
//
// A store that lives in another process can be unreachable. Its methods then
// return an error that wraps [ErrUnavailable], which a server turns into
// "503 Service Unavailable" with Retry-After rather than a 500: the request
// was fine, and the same request succeeds once the store is back. The Redis
// types reconnect by themselves; nothing has to be rebuilt.
package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound reports that there is no live record with the given id: it
// never existed, was deleted, or expired.
var ErrNotFound = errors.New("sessionstore: session not found")

// ErrExists reports a Create with an id that is live already.
var ErrExists = errors.New("sessionstore: session exists")

// ErrUnavailable reports that the store could not be reached or could not
// serve the call right now (connection refused or broken, timeout, a Redis
// that is loading or failing over). The call may or may not have taken
// effect; retrying later is expected to work. Errors wrap it; test with
// errors.Is.
var ErrUnavailable = errors.New("sessionstore: store unavailable")

// Store keeps session records, each expiring after a ttl without use. See the
// package documentation for the guarantees every implementation gives.
type Store interface {
	// Create stores a new record that expires after ttl without use.
	// It returns ErrExists if a live record has rec.ID; an expired one is
	// replaced.
	Create(ctx context.Context, rec *Record, ttl time.Duration) error

	// Get returns a copy of the live record with the given id, which the
	// caller may mutate freely, or ErrNotFound. It does not restart the ttl.
	Get(ctx context.Context, id string) (*Record, error)

	// Update replaces the live record with id rec.ID, sets its UpdatedAt and
	// restarts its ttl. It returns ErrNotFound if that record is not live:
	// an expired or deleted record is never resurrected.
	Update(ctx context.Context, rec *Record, ttl time.Duration) error

	// Touch restarts the ttl of the live record with the given id (sliding
	// expiry) and sets its UpdatedAt, or returns ErrNotFound.
	Touch(ctx context.Context, id string, ttl time.Duration) error

	// Delete removes the record with the given id. Deleting a missing
	// record is not an error.
	Delete(ctx context.Context, id string) error

	// Close releases the store's resources. It is idempotent.
	Close() error
}

// errClosed is returned by every method of a closed store but Close. Callers
// have no reason to branch on it, so it is not exported.
var errClosed = errors.New("sessionstore: store closed")

// checkID rejects the empty id, which no session can have.
func checkID(id string) error {
	if id == "" {
		return errors.New("sessionstore: empty session id")
	}
	return nil
}

// checkTTL rejects a ttl <= 0: it would store a record that is expired
// already, which is always a caller's mistake.
func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("sessionstore: ttl must be positive, got %v", ttl)
	}
	return nil
}

// checkWrite validates the arguments of Create and Update.
func checkWrite(rec *Record, ttl time.Duration) error {
	if rec == nil {
		return errors.New("sessionstore: nil record")
	}
	if err := checkID(rec.ID); err != nil {
		return err
	}
	return checkTTL(ttl)
}
