package sessionstore

// Memory drops expired records without a background goroutine, so there is
// nothing to stop and nothing to leak:
//
//   - on access: Get, Update, Touch and Create delete the expired record they
//     run into;
//   - by an amortized sweep: every sweepEvery creates, Create scans the whole
//     map and deletes what has expired. sweepEvery is the number of records
//     left after the previous sweep (at least minSweepEvery), so a sweep costs
//     O(1) per Create and the map holds at most about twice the records that
//     were live at the last sweep, plus minSweepEvery.
//
// Records in the map are never modified once stored: Update stores a fresh
// copy and Touch a shallow copy with a new UpdatedAt. So Get can copy a
// record out after releasing the lock, and readers never wait for a copy.

import (
	"context"
	"sync"
	"time"
)

// minSweepEvery is the fewest creates between two sweeps, so that a small
// map is not scanned on every Create.
const minSweepEvery = 64

// MemoryOptions configures a Memory store. The zero value is ready to use.
type MemoryOptions struct {
	// Now returns the current time; tests pass a fake clock. If nil,
	// time.Now.
	Now func() time.Time
}

// Memory is a Store that keeps records in process, for a single replica. It
// is safe for concurrent use, never blocks, and so ignores the ctx of its
// methods. It starts no goroutine; Close only drops the records.
type Memory struct {
	now func() time.Time

	mu         sync.Mutex // guards the fields below
	entries    map[string]memEntry
	closed     bool
	sinceSweep int // creates since the last sweep
	sweepEvery int // creates between sweeps; see the file comment
}

// memEntry is a stored record with the instant it expires. rec is never
// modified once stored.
type memEntry struct {
	rec     *Record
	expires time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store. opts may be nil.
func NewMemory(opts *MemoryOptions) *Memory {
	if opts == nil {
		opts = &MemoryOptions{}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Memory{
		now:        now,
		entries:    make(map[string]memEntry),
		sweepEvery: minSweepEvery,
	}
}

// Create implements Store.
func (m *Memory) Create(ctx context.Context, rec *Record, ttl time.Duration) error {
	if err := checkWrite(rec, ttl); err != nil {
		return err
	}
	// Read the clock and copy before locking: Now is the caller's code.
	now := m.now()
	c := rec.clone()
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = now
	}
	c.CreatedAt, c.UpdatedAt = stamp(c.CreatedAt), stamp(c.UpdatedAt)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	if _, ok := m.liveLocked(c.ID, now); ok {
		return ErrExists
	}
	m.entries[c.ID] = memEntry{rec: c, expires: now.Add(ttl)}
	m.sinceSweep++
	if m.sinceSweep >= m.sweepEvery {
		m.sweepLocked(now)
	}
	return nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, id string) (*Record, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	now := m.now()

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errClosed
	}
	e, ok := m.liveLocked(id, now)
	m.mu.Unlock()

	if !ok {
		return nil, ErrNotFound
	}
	return e.rec.clone(), nil // safe unlocked: stored records are immutable
}

// Update implements Store.
func (m *Memory) Update(ctx context.Context, rec *Record, ttl time.Duration) error {
	if err := checkWrite(rec, ttl); err != nil {
		return err
	}
	now := m.now()
	c := rec.clone()
	c.CreatedAt, c.UpdatedAt = stamp(c.CreatedAt), stamp(now)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	if _, ok := m.liveLocked(c.ID, now); !ok {
		return ErrNotFound
	}
	m.entries[c.ID] = memEntry{rec: c, expires: now.Add(ttl)}
	return nil
}

// Touch implements Store.
func (m *Memory) Touch(ctx context.Context, id string, ttl time.Duration) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := checkTTL(ttl); err != nil {
		return err
	}
	now := m.now()

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	e, ok := m.liveLocked(id, now)
	if !ok {
		return ErrNotFound
	}
	// A shallow copy: the slices and map it shares are never modified.
	r := *e.rec
	r.UpdatedAt = stamp(now)
	m.entries[id] = memEntry{rec: &r, expires: now.Add(ttl)}
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	delete(m.entries, id)
	return nil
}

// Close drops every record; later calls but Close fail. It is idempotent and
// always returns nil.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.entries = nil
	return nil
}

// Len reports how many records m holds, counting expired records that have
// not been dropped yet. It is meant for tests and metrics.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// liveLocked returns the entry for id if it has not expired at now, and
// deletes it if it has.
func (m *Memory) liveLocked(id string, now time.Time) (memEntry, bool) {
	e, ok := m.entries[id]
	if !ok {
		return memEntry{}, false
	}
	if !now.Before(e.expires) {
		delete(m.entries, id)
		return memEntry{}, false
	}
	return e, true
}

// sweepLocked deletes every record that has expired at now and schedules the
// next sweep.
func (m *Memory) sweepLocked(now time.Time) {
	for id, e := range m.entries {
		if !now.Before(e.expires) {
			delete(m.entries, id)
		}
	}
	m.sinceSweep = 0
	m.sweepEvery = max(minSweepEvery, len(m.entries))
}

// stamp turns a time into a record's timestamp. It drops the monotonic
// reading, which means nothing outside this process, so a record looks the
// same whichever store it came from.
func stamp(now time.Time) time.Time {
	return now.Round(0)
}
