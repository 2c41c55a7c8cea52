package sessionstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestMemory(t *testing.T) {
	runContract(t, func(t *testing.T) harness {
		clock := newFakeClock()
		return harness{store: NewMemory(&MemoryOptions{Now: clock.Now}), advance: clock.Advance}
	})
}

func TestMemoryNilOptions(t *testing.T) {
	m := NewMemory(nil)
	defer m.Close()
	before := time.Now()
	if err := m.Create(t.Context(), &Record{ID: "a", Transport: "sse"}, time.Hour); err != nil {
		t.Fatalf("Create = %v, want nil", err)
	}
	after := time.Now()
	got := mustGet(t, m, "a")
	if got.CreatedAt.Before(before) || got.CreatedAt.After(after) {
		t.Errorf("CreatedAt = %v, want between %v and %v", got.CreatedAt, before, after)
	}
	if got.CreatedAt != got.CreatedAt.Round(0) || got.UpdatedAt != got.UpdatedAt.Round(0) {
		t.Errorf("CreatedAt = %v, UpdatedAt = %v: want no monotonic reading", got.CreatedAt, got.UpdatedAt)
	}

	// Nor when the caller sets the times from its own clock.
	now := time.Now()
	if err := m.Create(t.Context(), &Record{ID: "b", CreatedAt: now, UpdatedAt: now}, time.Hour); err != nil {
		t.Fatalf("Create = %v, want nil", err)
	}
	got = mustGet(t, m, "b")
	if got.CreatedAt != now.Round(0) || got.UpdatedAt != now.Round(0) {
		t.Errorf("CreatedAt = %v, UpdatedAt = %v: want %v without a monotonic reading", got.CreatedAt, got.UpdatedAt, now.Round(0))
	}
}

// TestMemoryExpiryBoundary checks the exact instant a record expires: it is
// live until ttl has passed and gone from then on.
func TestMemoryExpiryBoundary(t *testing.T) {
	clock := newFakeClock()
	m := NewMemory(&MemoryOptions{Now: clock.Now})
	ctx := t.Context()
	if err := m.Create(ctx, fullRecord("a"), time.Minute); err != nil {
		t.Fatalf("Create = %v, want nil", err)
	}
	clock.Advance(time.Minute - time.Nanosecond)
	if _, err := m.Get(ctx, "a"); err != nil {
		t.Fatalf("Get 1ns before the ttl = %v, want nil", err)
	}
	clock.Advance(time.Nanosecond)
	if _, err := m.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get at the ttl = %v, want ErrNotFound", err)
	}
}

// TestMemoryDropsOnAccess checks that an expired record is dropped by the
// first call that runs into it, not only by a sweep.
func TestMemoryDropsOnAccess(t *testing.T) {
	for _, tc := range []struct {
		name    string
		op      func(ctx context.Context, m *Memory) error
		wantErr error
		wantLen int
	}{
		{"Get", func(ctx context.Context, m *Memory) error { _, err := m.Get(ctx, "a"); return err }, ErrNotFound, 0},
		{"Touch", func(ctx context.Context, m *Memory) error { return m.Touch(ctx, "a", time.Minute) }, ErrNotFound, 0},
		{"Update", func(ctx context.Context, m *Memory) error { return m.Update(ctx, fullRecord("a"), time.Minute) }, ErrNotFound, 0},
		{"Create", func(ctx context.Context, m *Memory) error { return m.Create(ctx, fullRecord("a"), time.Minute) }, nil, 1},
		{"Delete", func(ctx context.Context, m *Memory) error { return m.Delete(ctx, "a") }, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			m := NewMemory(&MemoryOptions{Now: clock.Now})
			ctx := t.Context()
			if err := m.Create(ctx, fullRecord("a"), time.Minute); err != nil {
				t.Fatalf("Create = %v, want nil", err)
			}
			clock.Advance(2 * time.Minute)
			if got := m.Len(); got != 1 {
				t.Fatalf("Len() before access = %d, want 1", got)
			}
			if err := tc.op(ctx, m); !errors.Is(err, tc.wantErr) {
				t.Errorf("%s of an expired record = %v, want %v", tc.name, err, tc.wantErr)
			}
			if got := m.Len(); got != tc.wantLen {
				t.Errorf("Len() after %s = %d, want %d", tc.name, got, tc.wantLen)
			}
		})
	}
}

// TestMemorySweep checks that records nobody reads again are dropped, so a
// steady stream of short sessions keeps the map small.
func TestMemorySweep(t *testing.T) {
	const (
		perRound = 10
		rounds   = 1000
		ttl      = time.Minute
		step     = 30 * time.Second
	)
	clock := newFakeClock()
	m := NewMemory(&MemoryOptions{Now: clock.Now})
	ctx := t.Context()
	// At most ttl/step rounds of records are live at once; the map may
	// hold twice that, plus the creates between two sweeps of a small map.
	limit := 2*perRound*int(ttl/step) + minSweepEvery
	for r := range rounds {
		for i := range perRound {
			if err := m.Create(ctx, &Record{ID: fmt.Sprint(r, "-", i)}, ttl); err != nil {
				t.Fatalf("Create = %v, want nil", err)
			}
		}
		if got := m.Len(); got > limit {
			t.Fatalf("Len() = %d after %d creates, want at most %d", got, (r+1)*perRound, limit)
		}
		clock.Advance(step)
	}
}

func BenchmarkMemoryGet(b *testing.B) {
	m := NewMemory(nil)
	defer m.Close()
	ctx := b.Context()
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprint("session-", i)
		if err := m.Create(ctx, fullRecord(ids[i]), time.Hour); err != nil {
			b.Fatalf("Create = %v, want nil", err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := m.Get(ctx, ids[i%len(ids)]); err != nil {
				b.Fatalf("Get = %v, want nil", err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := m.Get(ctx, ids[i%len(ids)]); err != nil {
					b.Errorf("Get = %v, want nil", err)
					return
				}
				i++
			}
		})
	})
}

// fakeClock is a clock that moves only when told to. It is safe for
// concurrent use.
type fakeClock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 6, 18, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
