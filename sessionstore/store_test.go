package sessionstore

// This file is the contract every Store implementation must pass. An
// implementation's test calls runContract with a function that builds a
// fresh, empty store and a way to move that store's clock.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// harness is one fresh, empty store under test.
type harness struct {
	store Store

	// advance moves the store's clock forward by d, so that records age as
	// if d had passed. It must be safe to call concurrently with the
	// store's methods.
	advance func(d time.Duration)
}

// runContract runs the Store contract against stores built by newHarness,
// one fresh store per subtest. runContract closes each store when its
// subtest ends.
func runContract(t *testing.T, newHarness func(t *testing.T) harness) {
	setup := func(t *testing.T) (context.Context, Store, func(time.Duration)) {
		t.Helper()
		h := newHarness(t)
		t.Cleanup(func() {
			if err := h.store.Close(); err != nil {
				t.Errorf("Close() = %v, want nil", err)
			}
		})
		return t.Context(), h.store, h.advance
	}
	const ttl = time.Minute

	t.Run("RoundTrip", func(t *testing.T) {
		for _, want := range []*Record{
			fullRecord("full"),
			{ID: "minimal", Transport: "sse", CreatedAt: testEpoch, UpdatedAt: testEpoch},
		} {
			t.Run(want.ID, func(t *testing.T) {
				ctx, s, _ := setup(t)
				if err := s.Create(ctx, want, ttl); err != nil {
					t.Fatalf("Create(%q) = %v, want nil", want.ID, err)
				}
				got, err := s.Get(ctx, want.ID)
				if err != nil {
					t.Fatalf("Get(%q) = %v, want nil", want.ID, err)
				}
				if !sameRecord(got, want) {
					t.Errorf("Get(%q) = %s, want %s", want.ID, show(got), show(want))
				}
			})
		}
	})

	t.Run("Timestamps", func(t *testing.T) {
		ctx, s, advance := setup(t)
		rec := &Record{ID: "a", Transport: "streamable", LogLevel: "info"}
		if err := s.Create(ctx, rec, ttl); err != nil {
			t.Fatalf("Create = %v, want nil", err)
		}
		if !rec.CreatedAt.IsZero() || !rec.UpdatedAt.IsZero() {
			t.Errorf("Create modified the caller's record: %s", show(rec))
		}
		created := mustGet(t, s, "a")
		if created.CreatedAt.IsZero() || !created.UpdatedAt.Equal(created.CreatedAt) {
			t.Fatalf("after Create with zero times, CreatedAt = %v, UpdatedAt = %v; want both set and equal",
				created.CreatedAt, created.UpdatedAt)
		}

		advance(10 * time.Second)
		if err := s.Touch(ctx, "a", ttl); err != nil {
			t.Fatalf("Touch = %v, want nil", err)
		}
		touched := mustGet(t, s, "a")
		if !touched.CreatedAt.Equal(created.CreatedAt) {
			t.Errorf("after Touch, CreatedAt = %v, want %v", touched.CreatedAt, created.CreatedAt)
		}
		if atLeast := created.UpdatedAt.Add(10 * time.Second); touched.UpdatedAt.Before(atLeast) {
			t.Errorf("after Touch, UpdatedAt = %v, want at least %v", touched.UpdatedAt, atLeast)
		}
		touched.UpdatedAt = created.UpdatedAt
		if !sameRecord(touched, created) {
			t.Errorf("Touch changed more than UpdatedAt: got %s, want %s", show(touched), show(created))
		}

		advance(10 * time.Second)
		next := touched.clone()
		next.LogLevel = "debug"
		if err := s.Update(ctx, next, ttl); err != nil {
			t.Fatalf("Update = %v, want nil", err)
		}
		updated := mustGet(t, s, "a")
		if atLeast := created.UpdatedAt.Add(20 * time.Second); updated.UpdatedAt.Before(atLeast) {
			t.Errorf("after Update, UpdatedAt = %v, want at least %v", updated.UpdatedAt, atLeast)
		}
		if !next.UpdatedAt.Equal(created.UpdatedAt) {
			t.Errorf("Update modified the caller's record: UpdatedAt = %v, want %v", next.UpdatedAt, created.UpdatedAt)
		}
		next.UpdatedAt = updated.UpdatedAt
		if !sameRecord(updated, next) {
			t.Errorf("after Update, Get = %s, want %s", show(updated), show(next))
		}
	})

	t.Run("CopiesIn", func(t *testing.T) {
		ctx, s, _ := setup(t)
		rec := fullRecord("a")
		if err := s.Create(ctx, rec, ttl); err != nil {
			t.Fatalf("Create = %v, want nil", err)
		}
		scribble(rec)
		if got, want := mustGet(t, s, "a"), fullRecord("a"); !sameRecord(got, want) {
			t.Errorf("after changing the record passed to Create, Get = %s, want %s", show(got), show(want))
		}

		rec = fullRecord("a")
		rec.Owner = "replica-2"
		if err := s.Update(ctx, rec, ttl); err != nil {
			t.Fatalf("Update = %v, want nil", err)
		}
		want := rec.clone()
		scribble(rec)
		got := mustGet(t, s, "a")
		want.UpdatedAt = got.UpdatedAt
		if !sameRecord(got, want) {
			t.Errorf("after changing the record passed to Update, Get = %s, want %s", show(got), show(want))
		}
	})

	t.Run("CopiesOut", func(t *testing.T) {
		ctx, s, _ := setup(t)
		if err := s.Create(ctx, fullRecord("a"), ttl); err != nil {
			t.Fatalf("Create = %v, want nil", err)
		}
		first, second := mustGet(t, s, "a"), mustGet(t, s, "a")
		scribble(first)
		want := fullRecord("a")
		if !sameRecord(second, want) {
			t.Errorf("after changing one Get result, another = %s, want %s", show(second), show(want))
		}
		if got := mustGet(t, s, "a"); !sameRecord(got, want) {
			t.Errorf("after changing a Get result, Get = %s, want %s", show(got), show(want))
		}
	})

	t.Run("Exists", func(t *testing.T) {
		ctx, s, advance := setup(t)
		if err := s.Create(ctx, fullRecord("a"), ttl); err != nil {
			t.Fatalf("Create = %v, want nil", err)
		}
		advance(ttl / 2)
		other := fullRecord("a")
		other.Principal = "someone else"
		if err := s.Create(ctx, other, ttl); !errors.Is(err, ErrExists) {
			t.Errorf("second Create(%q) = %v, want ErrExists", "a", err)
		}
		if got, want := mustGet(t, s, "a"), fullRecord("a"); !sameRecord(got, want) {
			t.Errorf("after a refused Create, Get = %s, want %s", show(got), show(want))
		}
		// The refused Create did not restart the ttl either.
		advance(ttl/2 + time.Second)
		if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after the first ttl = %v, want ErrNotFound", err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			op   func(ctx context.Context, s Store) error
		}{
			{"Get", func(ctx context.Context, s Store) error { _, err := s.Get(ctx, "missing"); return err }},
			{"Update", func(ctx context.Context, s Store) error { return s.Update(ctx, fullRecord("missing"), ttl) }},
			{"Touch", func(ctx context.Context, s Store) error { return s.Touch(ctx, "missing", ttl) }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx, s, _ := setup(t)
				if err := s.Create(ctx, fullRecord("other"), ttl); err != nil {
					t.Fatalf("Create = %v, want nil", err)
				}
				if err := tc.op(ctx, s); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s(%q) = %v, want ErrNotFound", tc.name, "missing", err)
				}
				if _, err := s.Get(ctx, "missing"); !errors.Is(err, ErrNotFound) {
					t.Errorf("after %s, Get(%q) = %v, want ErrNotFound", tc.name, "missing", err)
				}
			})
		}
	})

	t.Run("Delete", func(t *testing.T) {
		ctx, s, _ := setup(t)
		for _, id := range []string{"a", "b"} {
			if err := s.Create(ctx, fullRecord(id), ttl); err != nil {
				t.Fatalf("Create(%q) = %v, want nil", id, err)
			}
		}
		for i := range 2 {
			if err := s.Delete(ctx, "a"); err != nil {
				t.Errorf("Delete(%q) #%d = %v, want nil", "a", i+1, err)
			}
		}
		if err := s.Delete(ctx, "never"); err != nil {
			t.Errorf("Delete(%q) = %v, want nil", "never", err)
		}
		if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) after Delete = %v, want ErrNotFound", "a", err)
		}
		if err := s.Touch(ctx, "a", ttl); !errors.Is(err, ErrNotFound) {
			t.Errorf("Touch(%q) after Delete = %v, want ErrNotFound", "a", err)
		}
		if err := s.Update(ctx, fullRecord("a"), ttl); !errors.Is(err, ErrNotFound) {
			t.Errorf("Update(%q) after Delete = %v, want ErrNotFound", "a", err)
		}
		if got, want := mustGet(t, s, "b"), fullRecord("b"); !sameRecord(got, want) {
			t.Errorf("Get(%q) after deleting %q = %s, want %s", "b", "a", show(got), show(want))
		}
		if err := s.Create(ctx, fullRecord("a"), ttl); err != nil {
			t.Errorf("Create(%q) after Delete = %v, want nil", "a", err)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		ctx, s, advance := setup(t)
		if err := s.Create(ctx, fullRecord("a"), ttl); err != nil {
			t.Fatalf("Create = %v, want nil", err)
		}
		// 10s short of the ttl: Redis's own clock goes on meanwhile.
		advance(ttl - 10*time.Second)
		if _, err := s.Get(ctx, "a"); err != nil {
			t.Fatalf("Get %v after Create with ttl %v = %v, want nil", ttl-10*time.Second, ttl, err)
		}
		advance(12 * time.Second)
		if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after the ttl = %v, want ErrNotFound", err)
		}
		if err := s.Touch(ctx, "a", ttl); !errors.Is(err, ErrNotFound) {
			t.Errorf("Touch after the ttl = %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, "a"); err != nil {
			t.Errorf("Delete after the ttl = %v, want nil", err)
		}
		// An expired id is free again.
		rec := fullRecord("a")
		rec.Owner = "replica-2"
		if err := s.Create(ctx, rec, ttl); err != nil {
			t.Fatalf("Create after the ttl = %v, want nil", err)
		}
		if got := mustGet(t, s, "a"); !sameRecord(got, rec) {
			t.Errorf("Get after re-Create = %s, want %s", show(got), show(rec))
		}
	})

	t.Run("GetDoesNotSlide", func(t *testing.T) {
		ctx, s, advance := setup(t)
		if err := s.Create(ctx, fullRecord("a"), ttl); err != nil {
			t.Fatalf("Create = %v, want nil", err)
		}
		advance(40 * time.Second)
		mustGet(t, s, "a")
		advance(40 * time.Second)
		if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get 80s after Create with ttl %v, reading it at 40s = %v, want ErrNotFound", ttl, err)
		}
	})

	t.Run("TouchSlides", func(t *testing.T) {
		ctx, s, advance := setup(t)
		if err := s.Create(ctx, fullRecord("a"), ttl); err != nil {
			t.Fatalf("Create = %v, want nil", err)
		}
		// Touched at 40s and 80s: live at 110s, gone after 140s.
		for i := range 2 {
			advance(40 * time.Second)
			if err := s.Touch(ctx, "a", ttl); err != nil {
				t.Fatalf("Touch #%d = %v, want nil", i+1, err)
			}
		}
		advance(30 * time.Second)
		if _, err := s.Get(ctx, "a"); err != nil {
			t.Fatalf("Get 30s after Touch with ttl %v = %v, want nil", ttl, err)
		}
		// Touch sets the new ttl, shorter ones too.
		if err := s.Touch(ctx, "a", 10*time.Second); err != nil {
			t.Fatalf("Touch with ttl 10s = %v, want nil", err)
		}
		advance(11 * time.Second)
		if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get 11s after Touch with ttl 10s = %v, want ErrNotFound", err)
		}
	})

	t.Run("UpdateRestartsTTL", func(t *testing.T) {
		ctx, s, advance := setup(t)
		if err := s.Create(ctx, fullRecord("a"), ttl); err != nil {
			t.Fatalf("Create = %v, want nil", err)
		}
		advance(40 * time.Second)
		rec := mustGet(t, s, "a")
		rec.Subscriptions = []string{"file:///new"}
		rec.UpstreamSessions = nil
		rec.State = json.RawMessage(`{"initialized":true}`)
		if err := s.Update(ctx, rec, ttl); err != nil {
			t.Fatalf("Update = %v, want nil", err)
		}
		advance(40 * time.Second)
		got, err := s.Get(ctx, "a")
		if err != nil {
			t.Fatalf("Get 40s after Update with ttl %v = %v, want nil", ttl, err)
		}
		rec.UpdatedAt = got.UpdatedAt
		if !sameRecord(got, rec) {
			t.Errorf("Get after Update = %s, want %s", show(got), show(rec))
		}
		advance(30 * time.Second)
		if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get 70s after Update with ttl %v = %v, want ErrNotFound", ttl, err)
		}
	})

	t.Run("UpdateDoesNotResurrect", func(t *testing.T) {
		ctx, s, advance := setup(t)
		if err := s.Create(ctx, fullRecord("a"), ttl); err != nil {
			t.Fatalf("Create = %v, want nil", err)
		}
		advance(ttl + time.Second)
		if err := s.Update(ctx, fullRecord("a"), ttl); !errors.Is(err, ErrNotFound) {
			t.Errorf("Update of an expired record = %v, want ErrNotFound", err)
		}
		if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Update of an expired record = %v, want ErrNotFound", err)
		}
	})

	t.Run("InvalidArguments", func(t *testing.T) {
		live := fullRecord("live")
		for _, tc := range []struct {
			name string
			op   func(ctx context.Context, s Store) error
		}{
			{"Create ttl 0", func(ctx context.Context, s Store) error { return s.Create(ctx, fullRecord("new"), 0) }},
			{"Create ttl -1s", func(ctx context.Context, s Store) error { return s.Create(ctx, fullRecord("new"), -time.Second) }},
			{"Create empty id", func(ctx context.Context, s Store) error { return s.Create(ctx, fullRecord(""), ttl) }},
			{"Create nil", func(ctx context.Context, s Store) error { return s.Create(ctx, nil, ttl) }},
			{"Update ttl 0", func(ctx context.Context, s Store) error { return s.Update(ctx, fullRecord("live"), 0) }},
			{"Update ttl -1s", func(ctx context.Context, s Store) error { return s.Update(ctx, fullRecord("live"), -time.Second) }},
			{"Update empty id", func(ctx context.Context, s Store) error { return s.Update(ctx, fullRecord(""), ttl) }},
			{"Update nil", func(ctx context.Context, s Store) error { return s.Update(ctx, nil, ttl) }},
			{"Touch ttl 0", func(ctx context.Context, s Store) error { return s.Touch(ctx, "live", 0) }},
			{"Touch ttl -1s", func(ctx context.Context, s Store) error { return s.Touch(ctx, "live", -time.Second) }},
			{"Touch empty id", func(ctx context.Context, s Store) error { return s.Touch(ctx, "", ttl) }},
			{"Get empty id", func(ctx context.Context, s Store) error { _, err := s.Get(ctx, ""); return err }},
			{"Delete empty id", func(ctx context.Context, s Store) error { return s.Delete(ctx, "") }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx, s, _ := setup(t)
				if err := s.Create(ctx, live, ttl); err != nil {
					t.Fatalf("Create = %v, want nil", err)
				}
				err := tc.op(ctx, s)
				if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) {
					t.Errorf("%s = %v, want an argument error", tc.name, err)
				}
				if got := mustGet(t, s, "live"); !sameRecord(got, live) {
					t.Errorf("after %s, Get(%q) = %s, want %s", tc.name, "live", show(got), show(live))
				}
				if _, err := s.Get(ctx, "new"); !errors.Is(err, ErrNotFound) {
					t.Errorf("after %s, Get(%q) = %v, want ErrNotFound", tc.name, "new", err)
				}
			})
		}
	})

	t.Run("Close", func(t *testing.T) {
		ctx, s, _ := setup(t)
		if err := s.Create(ctx, fullRecord("a"), ttl); err != nil {
			t.Fatalf("Create = %v, want nil", err)
		}
		for i := range 2 {
			if err := s.Close(); err != nil {
				t.Fatalf("Close #%d = %v, want nil", i+1, err)
			}
		}
		for _, tc := range []struct {
			name string
			op   func() error
		}{
			{"Create", func() error { return s.Create(ctx, fullRecord("b"), ttl) }},
			{"Get", func() error { _, err := s.Get(ctx, "a"); return err }},
			{"Update", func() error { return s.Update(ctx, fullRecord("a"), ttl) }},
			{"Touch", func() error { return s.Touch(ctx, "a", ttl) }},
			{"Delete", func() error { return s.Delete(ctx, "a") }},
		} {
			if err := tc.op(); err == nil {
				t.Errorf("%s after Close = nil, want an error", tc.name)
			}
		}
	})

	t.Run("ConcurrentCreate", func(t *testing.T) {
		ctx, s, _ := setup(t)
		const n = 16
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				rec := fullRecord("a")
				rec.Owner = fmt.Sprint("replica-", i)
				errs[i] = s.Create(ctx, rec, ttl)
			})
		}
		wg.Wait()
		created := 0
		for i, err := range errs {
			switch {
			case err == nil:
				created++
			case !errors.Is(err, ErrExists):
				t.Errorf("Create #%d = %v, want nil or ErrExists", i, err)
			}
		}
		if created != 1 {
			t.Errorf("%d concurrent Creates of one id: %d succeeded, want 1", n, created)
		}
	})

	// ConcurrentUpdate checks that Updates, Touches and Gets of one record
	// racing each other all succeed, and that every Get sees one writer's
	// record whole, never fields of two.
	t.Run("ConcurrentUpdate", func(t *testing.T) {
		ctx, s, _ := setup(t)
		if err := s.Create(ctx, fullRecord("a"), ttl); err != nil {
			t.Fatalf("Create = %v, want nil", err)
		}
		const (
			writers = 8
			ops     = 25
		)
		written := func(w int) *Record {
			rec := fullRecord("a")
			rec.Owner = fmt.Sprint("replica-", w)
			rec.LogLevel = fmt.Sprint("level-", w)
			rec.Subscriptions = []string{fmt.Sprint("file:///", w)}
			rec.State = json.RawMessage(fmt.Sprintf(`{"writer": %d}`, w))
			return rec
		}
		// whole reports whether rec is fullRecord("a") or one writer's.
		whole := func(rec *Record) bool {
			for w := -1; w < writers; w++ {
				want := fullRecord("a")
				if w >= 0 {
					want = written(w)
				}
				want.UpdatedAt = rec.UpdatedAt
				if sameRecord(rec, want) {
					return true
				}
			}
			return false
		}
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range ops {
					if err := s.Update(ctx, written(w), ttl); err != nil {
						t.Errorf("writer %d: Update #%d = %v, want nil", w, i, err)
						return
					}
					if err := s.Touch(ctx, "a", ttl); err != nil {
						t.Errorf("writer %d: Touch #%d = %v, want nil", w, i, err)
						return
					}
				}
			})
			wg.Go(func() {
				for range ops {
					rec, err := s.Get(ctx, "a")
					if err != nil {
						t.Errorf("reader %d: Get = %v, want nil", w, err)
						return
					}
					if !whole(rec) {
						t.Errorf("reader %d: Get = %s, want one writer's record whole", w, show(rec))
						return
					}
				}
			})
		}
		wg.Wait()
		if got := mustGet(t, s, "a"); !whole(got) {
			t.Errorf("after the race, Get = %s, want one writer's record whole", show(got))
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		ctx, s, advance := setup(t)
		const (
			workers = 8
			ops     = 200
			ids     = 16
		)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range ops {
					id := fmt.Sprint("s", (w*7+i)%ids)
					if err := concurrentOp(ctx, s, (w+i)%6, id, ttl); err != nil {
						t.Errorf("worker %d op %d: %v", w, i, err)
						return
					}
					if w == 0 && i%10 == 0 {
						advance(20 * time.Second)
					}
				}
			})
		}
		wg.Wait()
	})
}

// concurrentOp runs one operation of the Concurrent test and reports an error
// if it broke the contract.
func concurrentOp(ctx context.Context, s Store, op int, id string, ttl time.Duration) error {
	var err error
	switch op {
	case 0:
		err = s.Create(ctx, fullRecord(id), ttl)
	case 1, 2:
		var rec *Record
		rec, err = s.Get(ctx, id)
		if err != nil {
			break
		}
		if want := fullRecord(id); rec.ID != id || rec.Principal != want.Principal {
			return fmt.Errorf("Get(%q) = %s, want a record for %q", id, show(rec), id)
		}
		// Under -race, this catches a store that shares its memory.
		scribble(rec)
	case 3:
		err = s.Touch(ctx, id, ttl)
	case 4:
		rec := fullRecord(id)
		rec.LogLevel = "debug"
		err = s.Update(ctx, rec, ttl)
	case 5:
		err = s.Delete(ctx, id)
	}
	if err != nil && !errors.Is(err, ErrExists) && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("op %d on %q: %w", op, id, err)
	}
	return nil
}

// testEpoch is the time of the records the tests build.
var testEpoch = time.Date(2025, 6, 18, 12, 0, 0, 123456789, time.UTC)

// fullRecord returns a record for id with every field set.
func fullRecord(id string) *Record {
	return &Record{
		ID:               id,
		Principal:        "https://issuer.example|" + id + "-owner",
		Transport:        "streamable",
		ProtocolVersion:  "2025-06-18",
		State:            json.RawMessage(`{"initializeParams":{"protocolVersion":"2025-06-18"},"logLevel":"info"}`),
		LogLevel:         "info",
		Subscriptions:    []string{"file:///a.txt", "file:///b.txt"},
		UpstreamSessions: map[string]string{"github": "gh-" + id, "fs": "fs-" + id},
		Owner:            "replica-1",
		CreatedAt:        testEpoch,
		UpdatedAt:        testEpoch.Add(time.Second),
	}
}

// scribble changes every field of r in place, including the contents of its
// slices, map and State, as a careless caller might.
func scribble(r *Record) {
	r.Principal += "!"
	r.Transport = "sse"
	r.ProtocolVersion = "1999-01-01"
	for i := range r.State {
		r.State[i] = ' '
	}
	r.LogLevel = "emergency"
	for i := range r.Subscriptions {
		r.Subscriptions[i] = "changed"
	}
	for k := range r.UpstreamSessions {
		r.UpstreamSessions[k] = "changed"
	}
	if r.UpstreamSessions != nil {
		r.UpstreamSessions["added"] = "x"
	}
	r.Owner = "thief"
	r.CreatedAt = r.CreatedAt.Add(time.Hour)
	r.UpdatedAt = r.UpdatedAt.Add(time.Hour)
}

// sameRecord reports whether a and b hold the same data, as the package
// documentation defines it: times compare with Equal, and nil and empty
// slices and maps are the same.
func sameRecord(a, b *Record) bool {
	if a == nil || b == nil {
		return a == b
	}
	if !a.CreatedAt.Equal(b.CreatedAt) || !a.UpdatedAt.Equal(b.UpdatedAt) {
		return false
	}
	return reflect.DeepEqual(normalize(a), normalize(b))
}

// normalize returns a copy of r with zero times and nil for empty slices and
// maps.
func normalize(r *Record) *Record {
	c := r.clone()
	c.CreatedAt, c.UpdatedAt = time.Time{}, time.Time{}
	if len(c.State) == 0 {
		c.State = nil
	}
	if len(c.Subscriptions) == 0 {
		c.Subscriptions = nil
	}
	if len(c.UpstreamSessions) == 0 {
		c.UpstreamSessions = nil
	}
	return c
}

// show formats a record for a failure message.
func show(r *Record) string {
	if r == nil {
		return "<nil>"
	}
	c := r.clone()
	if len(c.State) > 0 && !json.Valid(c.State) {
		// Show scribbled-on State as a string rather than fail to marshal.
		c.State, _ = json.Marshal(string(c.State))
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Sprintf("%+v", *c)
	}
	return string(b)
}

// mustGet returns the live record with the given id or fails the test.
func mustGet(t *testing.T, s Store, id string) *Record {
	t.Helper()
	rec, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%q) = %v, want nil", id, err)
	}
	return rec
}
