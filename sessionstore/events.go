package sessionstore

// An EventLog keeps the recent events of each stream of each session, so
// that a client whose connection dropped can reconnect, to any replica, and
// ask for what it missed. What a session or a stream is, and what an event
// holds, is the caller's business.
//
// Event ids are the decimal position of the event in its stream, from "1":
// dense, so that After can tell whether the event right after the caller's
// id is still kept, and so that a caller that counts events (as the MCP
// SDK's EventStore does, with 0-based indexes) can name a position without
// storing ids.
//
// MemoryEventLog keeps, per session, a map of streams; each stream is a
// slice of events, the position of its first event, and when it expires.
// Expired streams are dropped on access and by an amortized sweep, as
// Memory drops records: no goroutine.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// ErrPurged reports that some of the events after the given id are no
// longer kept: trimmed to bound the stream's length, expired, or deleted
// with their session, or the id is past the stream's end because the stream
// expired and started over. The caller cannot resume the stream.
var ErrPurged = errors.New("sessionstore: events purged")

// Default bounds of an event log whose options set none.
const (
	// DefaultEventMaxLen is how many events each stream keeps at least.
	DefaultEventMaxLen = 1000

	// DefaultEventTTL is how long a stream is kept after its last Append.
	DefaultEventTTL = 10 * time.Minute
)

// Event is one event of a stream.
type Event struct {
	// ID is the event's position in its stream, in decimal, "1" for the
	// first event. Later events have larger numbers, with no gaps, so a
	// caller that counts events can name one without storing its id.
	ID string

	// Data is what was appended, byte for byte.
	Data []byte
}

// EventLog keeps the recent events of the streams of each session, bounded
// in length and in time.
//
// Every EventLog:
//   - is safe for concurrent use;
//   - numbers the events of each stream 1, 2, 3, ... in the order their
//     Appends took effect, even when they race;
//   - copies data in and out;
//   - keeps at least the last MaxLen events of each stream, and drops
//     older ones (Redis trims approximately: up to 100 more may stay);
//   - drops a stream TTL after its last Append; the next Append to it
//     starts over at "1";
//   - rejects an empty session id and a malformed afterID with an error
//     that is not ErrPurged;
//   - fails every call but Close once closed; Close is idempotent.
type EventLog interface {
	// Append adds data as the next event of the given stream of the given
	// session, restarts the stream's TTL, and returns the event's id.
	// Stream names are opaque; "" is a valid one.
	Append(ctx context.Context, session, stream string, data []byte) (id string, err error)

	// After returns the events of one stream with ids after afterID, in
	// order. afterID "" or "0" means from the start. If the event right
	// after afterID is no longer kept, or afterID is past the end of the
	// stream, it returns ErrPurged and no events: a caller must never
	// mistake a partial history for a whole one. A stream that has no
	// events returns none, and no error, for "" and "0".
	After(ctx context.Context, session, stream, afterID string) ([]Event, error)

	// DeleteSession drops every stream of the session. Deleting a session
	// that has none is not an error.
	DeleteSession(ctx context.Context, session string) error

	// Close releases the log's resources. It is idempotent.
	Close() error
}

// checkSession rejects the empty session id, which no session can have.
func checkSession(session string) error {
	if session == "" {
		return errors.New("sessionstore: empty session id")
	}
	return nil
}

// parseAfter parses the afterID of After: "" or a decimal position >= 0.
func parseAfter(afterID string) (int64, error) {
	if afterID == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(afterID, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != afterID {
		return 0, fmt.Errorf("sessionstore: event id %q is not a position", afterID)
	}
	return n, nil
}

// eventID formats a position as an event id.
func eventID(n int64) string {
	return strconv.FormatInt(n, 10)
}

// MemoryEventLogOptions configures a MemoryEventLog. The zero value is ready
// to use.
type MemoryEventLogOptions struct {
	// MaxLen is how many events each stream keeps; older ones are
	// dropped. If zero, DefaultEventMaxLen.
	MaxLen int

	// TTL is how long a stream is kept after its last Append. If zero,
	// DefaultEventTTL.
	TTL time.Duration

	// Now returns the current time; tests pass a fake clock. If nil,
	// time.Now.
	Now func() time.Time
}

// MemoryEventLog is an EventLog that keeps events in process, for a single
// replica. It is safe for concurrent use, never blocks, and so ignores the
// ctx of its methods. It starts no goroutine; Close only drops the events.
type MemoryEventLog struct {
	maxLen int
	ttl    time.Duration
	now    func() time.Time

	mu         sync.Mutex // guards the fields below
	sessions   map[string]map[string]*memStream
	streams    int // in sessions, counting expired ones not dropped yet
	closed     bool
	sinceSweep int // appends since the last sweep
	sweepEvery int // appends between sweeps, as in Memory
}

// memStream is one stream of a MemoryEventLog.
type memStream struct {
	first   int64    // position of events[0]; the next is first+len(events)
	events  [][]byte // never modified once appended, so After can share them
	expires time.Time
}

var _ EventLog = (*MemoryEventLog)(nil)

// NewMemoryEventLog returns an empty in-memory event log. opts may be nil.
func NewMemoryEventLog(opts *MemoryEventLogOptions) *MemoryEventLog {
	if opts == nil {
		opts = &MemoryEventLogOptions{}
	}
	l := &MemoryEventLog{
		maxLen:     opts.MaxLen,
		ttl:        opts.TTL,
		now:        opts.Now,
		sessions:   make(map[string]map[string]*memStream),
		sweepEvery: minSweepEvery,
	}
	if l.maxLen <= 0 {
		l.maxLen = DefaultEventMaxLen
	}
	if l.ttl <= 0 {
		l.ttl = DefaultEventTTL
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l
}

// Append implements EventLog.
func (l *MemoryEventLog) Append(ctx context.Context, session, stream string, data []byte) (string, error) {
	if err := checkSession(session); err != nil {
		return "", err
	}
	data = slices.Clone(data)
	now := l.now()

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", errClosed
	}
	s := l.liveLocked(session, stream, now)
	if s == nil {
		s = &memStream{first: 1}
		if l.sessions[session] == nil {
			l.sessions[session] = make(map[string]*memStream)
		}
		l.sessions[session][stream] = s
		l.streams++
	}
	s.events = append(s.events, data)
	if over := len(s.events) - l.maxLen; over > 0 {
		clear(s.events[:over]) // let the dropped data be collected
		s.events = s.events[over:]
		s.first += int64(over)
	}
	s.expires = now.Add(l.ttl)
	id := s.first + int64(len(s.events)) - 1

	l.sinceSweep++
	if l.sinceSweep >= l.sweepEvery {
		l.sweepLocked(now)
	}
	return eventID(id), nil
}

// After implements EventLog.
func (l *MemoryEventLog) After(ctx context.Context, session, stream, afterID string) ([]Event, error) {
	if err := checkSession(session); err != nil {
		return nil, err
	}
	after, err := parseAfter(afterID)
	if err != nil {
		return nil, err
	}
	now := l.now()

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errClosed
	}
	s := l.liveLocked(session, stream, now)
	if s == nil {
		l.mu.Unlock()
		if after == 0 {
			return nil, nil
		}
		return nil, ErrPurged
	}
	first, last := s.first, s.first+int64(len(s.events))-1
	if after+1 < first || after > last {
		l.mu.Unlock()
		return nil, ErrPurged
	}
	// Copy the slice, not the data, under the lock: Append may clear
	// elements of the array, but never modifies the data they point to.
	data := slices.Clone(s.events[after+1-first:])
	l.mu.Unlock()

	out := make([]Event, len(data))
	for i, d := range data {
		out[i] = Event{ID: eventID(after + 1 + int64(i)), Data: slices.Clone(d)}
	}
	return out, nil
}

// DeleteSession implements EventLog.
func (l *MemoryEventLog) DeleteSession(ctx context.Context, session string) error {
	if err := checkSession(session); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	l.streams -= len(l.sessions[session])
	delete(l.sessions, session)
	return nil
}

// Close drops every event; later calls but Close fail. It is idempotent and
// always returns nil.
func (l *MemoryEventLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.sessions = nil
	l.streams = 0
	return nil
}

// liveLocked returns the stream if it has not expired at now, and drops it
// if it has.
func (l *MemoryEventLog) liveLocked(session, stream string, now time.Time) *memStream {
	streams := l.sessions[session]
	s := streams[stream]
	if s == nil {
		return nil
	}
	if !now.Before(s.expires) {
		l.dropLocked(session, stream)
		return nil
	}
	return s
}

// dropLocked deletes one stream, and its session once it has none.
func (l *MemoryEventLog) dropLocked(session, stream string) {
	streams := l.sessions[session]
	delete(streams, stream)
	l.streams--
	if len(streams) == 0 {
		delete(l.sessions, session)
	}
}

// sweepLocked drops every stream that has expired at now and schedules the
// next sweep.
func (l *MemoryEventLog) sweepLocked(now time.Time) {
	for session, streams := range l.sessions {
		for stream, s := range streams {
			if !now.Before(s.expires) {
				l.dropLocked(session, stream)
			}
		}
	}
	l.sinceSweep = 0
	l.sweepEvery = max(minSweepEvery, l.streams)
}
