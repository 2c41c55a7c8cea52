package sessionstore

// This file holds the contract every EventLog implementation must pass, and
// runs it against MemoryEventLog and RedisEventLog.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgw/gateway/sessionstore/redistest"
)

// The bounds every log under the contract is built with.
const (
	contractMaxLen = 10
	contractTTL    = time.Minute

	// redisTrimSlack is how many events beyond MaxLen a Redis stream may
	// keep: XADD MAXLEN ~ trims whole internal nodes, of up to
	// stream-node-max-entries (100 by default) entries.
	redisTrimSlack = 100
)

// eventHarness is one fresh, empty event log under test, built with
// MaxLen contractMaxLen and TTL contractTTL.
type eventHarness struct {
	log EventLog

	// advance moves the log's clock forward by d. It must be safe to call
	// concurrently with the log's methods.
	advance func(d time.Duration)
}

func TestMemoryEventLog(t *testing.T) {
	runEventContract(t, func(t *testing.T) eventHarness {
		clock := newFakeClock()
		return eventHarness{
			log:     NewMemoryEventLog(&MemoryEventLogOptions{MaxLen: contractMaxLen, TTL: contractTTL, Now: clock.Now}),
			advance: clock.Advance,
		}
	})
}

func TestRedisEventLog(t *testing.T) {
	client := newTestClient(t, redistest.Start(t))
	var n atomic.Int64
	runEventContract(t, func(t *testing.T) eventHarness {
		prefix := fmt.Sprintf("events%d:", n.Add(1))
		return eventHarness{
			log:     NewRedisEventLog(client, &RedisEventLogOptions{Prefix: prefix, MaxLen: contractMaxLen, TTL: contractTTL}),
			advance: func(d time.Duration) { ageKeys(t, client, prefix, d) },
		}
	})
}

// runEventContract runs the EventLog contract against logs built by
// newHarness, one fresh log per subtest, and closes each log when its
// subtest ends.
func runEventContract(t *testing.T, newHarness func(t *testing.T) eventHarness) {
	setup := func(t *testing.T) (context.Context, EventLog, func(time.Duration)) {
		t.Helper()
		h := newHarness(t)
		t.Cleanup(func() {
			if err := h.log.Close(); err != nil {
				t.Errorf("Close() = %v, want nil", err)
			}
		})
		return t.Context(), h.log, h.advance
	}

	t.Run("AppendAfter", func(t *testing.T) {
		ctx, l, _ := setup(t)
		data := [][]byte{[]byte("one"), {}, []byte("\x00\xff binary"), []byte(`{"jsonrpc":"2.0"}`)}
		for i, d := range data {
			id, err := l.Append(ctx, "s", "st", d)
			if want := strconv.Itoa(i + 1); err != nil || id != want {
				t.Fatalf("Append #%d = %q, %v; want %q, nil", i+1, id, err, want)
			}
		}
		for after := 0; after <= len(data); after++ {
			for _, afterID := range afterIDs(after) {
				got, err := l.After(ctx, "s", "st", afterID)
				if err != nil {
					t.Fatalf("After(%q) = %v, want nil", afterID, err)
				}
				want := eventsFrom(after+1, data[after:]...)
				if !sameEvents(got, want) {
					t.Errorf("After(%q) = %s, want %s", afterID, showEvents(got), showEvents(want))
				}
			}
		}
	})

	t.Run("Copies", func(t *testing.T) {
		_, l, _ := setup(t)
		d := []byte("abc")
		mustAppend(t, l, "s", "st", d)
		d[0] = 'X'
		first := mustAfter(t, l, "s", "st", "")
		first[0].Data[1] = 'Y'
		if got, want := mustAfter(t, l, "s", "st", ""), eventsFrom(1, []byte("abc")); !sameEvents(got, want) {
			t.Errorf("after changing the appended and returned data, After = %s, want %s", showEvents(got), showEvents(want))
		}
	})

	t.Run("StreamsApart", func(t *testing.T) {
		ctx, l, _ := setup(t)
		// Names that a careless key scheme would confuse.
		for _, k := range []struct{ session, stream string }{
			{"s", "a"}, {"s", "b"}, {"s", ""}, {"s", "a:b"}, {"s:a", "b"}, {"t", "a"},
			{"{x}", "y"}, {"{x", "}y"}, {"%7Bx%7D", "y"}, {"s}:a", "b"},
		} {
			for i := range 2 {
				id, err := l.Append(ctx, k.session, k.stream, []byte(k.session+"|"+k.stream))
				if want := strconv.Itoa(i + 1); err != nil || id != want {
					t.Fatalf("Append(%q, %q) #%d = %q, %v; want %q, nil", k.session, k.stream, i+1, id, err, want)
				}
			}
		}
		for _, k := range []struct{ session, stream string }{
			{"s", "a"}, {"s", ""}, {"s:a", "b"}, {"{x}", "y"}, {"{x", "}y"}, {"%7Bx%7D", "y"}, {"s}:a", "b"},
		} {
			d := []byte(k.session + "|" + k.stream)
			if got, want := mustAfter(t, l, k.session, k.stream, ""), eventsFrom(1, d, d); !sameEvents(got, want) {
				t.Errorf("After(%q, %q) = %s, want %s", k.session, k.stream, showEvents(got), showEvents(want))
			}
		}
		if got := mustAfter(t, l, "s", "never", ""); len(got) != 0 {
			t.Errorf("After of a stream never appended to = %s, want none", showEvents(got))
		}
	})

	t.Run("Purged", func(t *testing.T) {
		ctx, l, _ := setup(t)
		if _, err := l.After(ctx, "s", "st", "1"); !errors.Is(err, ErrPurged) {
			t.Errorf("After(%q) of an empty stream = %v, want ErrPurged", "1", err)
		}
		for range 3 {
			mustAppend(t, l, "s", "st", []byte("x"))
		}
		if _, err := l.After(ctx, "s", "st", "4"); !errors.Is(err, ErrPurged) {
			t.Errorf("After(%q) past the end of a stream of 3 = %v, want ErrPurged", "4", err)
		}
	})

	t.Run("Bounded", func(t *testing.T) {
		ctx, l, _ := setup(t)
		const total = contractMaxLen + 3*redisTrimSlack
		for i := 1; i <= total; i++ {
			mustAppend(t, l, "s", "st", []byte(strconv.Itoa(i)))
		}
		// The last MaxLen events are always kept.
		after := total - contractMaxLen
		got := mustAfter(t, l, "s", "st", strconv.Itoa(after))
		var want []Event
		for i := after + 1; i <= total; i++ {
			want = append(want, Event{ID: strconv.Itoa(i), Data: []byte(strconv.Itoa(i))})
		}
		if !sameEvents(got, want) {
			t.Errorf("After(%q) = %s, want %s", strconv.Itoa(after), showEvents(got), showEvents(want))
		}
		// Older ones are dropped, and After says so rather than return
		// part of the history.
		for _, afterID := range []string{"", "1", strconv.Itoa(total - contractMaxLen - redisTrimSlack - 1)} {
			if got, err := l.After(ctx, "s", "st", afterID); !errors.Is(err, ErrPurged) {
				t.Errorf("After(%q) of %d events with MaxLen %d = %s, %v; want ErrPurged", afterID, total, contractMaxLen, showEvents(got), err)
			}
		}
		// Other streams keep their own bound.
		mustAppend(t, l, "s", "other", []byte("o"))
		if got, want := mustAfter(t, l, "s", "other", ""), eventsFrom(1, []byte("o")); !sameEvents(got, want) {
			t.Errorf("After of another stream = %s, want %s", showEvents(got), showEvents(want))
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		ctx, l, advance := setup(t)
		mustAppend(t, l, "s", "a", []byte("a1"))
		advance(40 * time.Second)
		mustAppend(t, l, "s", "a", []byte("a2")) // restarts a's ttl
		mustAppend(t, l, "s", "b", []byte("b1"))
		// 10s short of the ttl: Redis's own clock goes on meanwhile.
		advance(contractTTL - 10*time.Second)
		if got, want := mustAfter(t, l, "s", "a", ""), eventsFrom(1, []byte("a1"), []byte("a2")); !sameEvents(got, want) {
			t.Errorf("After %v since the last Append = %s, want %s", contractTTL-10*time.Second, showEvents(got), showEvents(want))
		}
		mustAppend(t, l, "s", "b", []byte("b2")) // restarts b's ttl only
		advance(12 * time.Second)
		if got, err := l.After(ctx, "s", "a", ""); err != nil || len(got) != 0 {
			t.Errorf("After of an expired stream = %s, %v; want none, nil", showEvents(got), err)
		}
		if _, err := l.After(ctx, "s", "a", "2"); !errors.Is(err, ErrPurged) {
			t.Errorf("After(%q) of an expired stream = %v, want ErrPurged", "2", err)
		}
		if got, want := mustAfter(t, l, "s", "b", ""), eventsFrom(1, []byte("b1"), []byte("b2")); !sameEvents(got, want) {
			t.Errorf("After of a stream appended to since = %s, want %s", showEvents(got), showEvents(want))
		}
		// An expired stream starts over.
		if id := mustAppend(t, l, "s", "a", []byte("new")); id != "1" {
			t.Errorf("Append to an expired stream = %q, want %q", id, "1")
		}
		if _, err := l.After(ctx, "s", "a", "2"); !errors.Is(err, ErrPurged) {
			t.Errorf("After(%q) of a stream that started over at 1 = %v, want ErrPurged", "2", err)
		}
	})

	t.Run("AfterDoesNotSlide", func(t *testing.T) {
		ctx, l, advance := setup(t)
		mustAppend(t, l, "s", "a", []byte("a1"))
		advance(40 * time.Second)
		mustAfter(t, l, "s", "a", "")
		advance(40 * time.Second)
		if got, err := l.After(ctx, "s", "a", ""); err != nil || len(got) != 0 {
			t.Errorf("After 80s after the last Append, reading at 40s = %s, %v; want none, nil", showEvents(got), err)
		}
	})

	t.Run("DeleteSession", func(t *testing.T) {
		ctx, l, _ := setup(t)
		for _, st := range []string{"a", "b", ""} {
			mustAppend(t, l, "s", st, []byte(st))
		}
		mustAppend(t, l, "other", "a", []byte("kept"))
		for i := range 2 {
			if err := l.DeleteSession(ctx, "s"); err != nil {
				t.Fatalf("DeleteSession #%d = %v, want nil", i+1, err)
			}
		}
		if err := l.DeleteSession(ctx, "never"); err != nil {
			t.Errorf("DeleteSession of an unknown session = %v, want nil", err)
		}
		for _, st := range []string{"a", "b", ""} {
			if got, err := l.After(ctx, "s", st, ""); err != nil || len(got) != 0 {
				t.Errorf("After(%q) of a deleted session = %s, %v; want none, nil", st, showEvents(got), err)
			}
			if _, err := l.After(ctx, "s", st, "1"); !errors.Is(err, ErrPurged) {
				t.Errorf("After(%q, %q) of a deleted session = %v, want ErrPurged", st, "1", err)
			}
		}
		if got, want := mustAfter(t, l, "other", "a", ""), eventsFrom(1, []byte("kept")); !sameEvents(got, want) {
			t.Errorf("After of another session = %s, want %s", showEvents(got), showEvents(want))
		}
		if id := mustAppend(t, l, "s", "a", []byte("again")); id != "1" {
			t.Errorf("Append after DeleteSession = %q, want %q", id, "1")
		}
	})

	t.Run("InvalidArguments", func(t *testing.T) {
		ctx, l, _ := setup(t)
		mustAppend(t, l, "s", "st", []byte("x"))
		for _, tc := range []struct {
			name string
			op   func() error
		}{
			{"Append empty session", func() error { _, err := l.Append(ctx, "", "st", nil); return err }},
			{"After empty session", func() error { _, err := l.After(ctx, "", "st", ""); return err }},
			{"DeleteSession empty session", func() error { return l.DeleteSession(ctx, "") }},
			{"After -1", func() error { _, err := l.After(ctx, "s", "st", "-1"); return err }},
			{"After x", func() error { _, err := l.After(ctx, "s", "st", "x"); return err }},
			{"After 1.5", func() error { _, err := l.After(ctx, "s", "st", "1.5"); return err }},
			{"After 01", func() error { _, err := l.After(ctx, "s", "st", "01"); return err }},
			{"After 0-1", func() error { _, err := l.After(ctx, "s", "st", "0-1"); return err }},
			{"After huge", func() error { _, err := l.After(ctx, "s", "st", "99999999999999999999"); return err }},
		} {
			if err := tc.op(); err == nil || errors.Is(err, ErrPurged) {
				t.Errorf("%s = %v, want an argument error", tc.name, err)
			}
		}
		if got, want := mustAfter(t, l, "s", "st", ""), eventsFrom(1, []byte("x")); !sameEvents(got, want) {
			t.Errorf("after the invalid calls, After = %s, want %s", showEvents(got), showEvents(want))
		}
	})

	t.Run("Close", func(t *testing.T) {
		ctx, l, _ := setup(t)
		mustAppend(t, l, "s", "st", []byte("x"))
		for i := range 2 {
			if err := l.Close(); err != nil {
				t.Fatalf("Close #%d = %v, want nil", i+1, err)
			}
		}
		if _, err := l.Append(ctx, "s", "st", nil); err == nil {
			t.Error("Append after Close = nil, want an error")
		}
		if _, err := l.After(ctx, "s", "st", ""); err == nil {
			t.Error("After after Close = nil, want an error")
		}
		if err := l.DeleteSession(ctx, "s"); err == nil {
			t.Error("DeleteSession after Close = nil, want an error")
		}
	})

	// ConcurrentAppend checks that racing Appends to one stream get the
	// ids 1..n, each once, and that the kept events are the last ones in
	// id order.
	t.Run("ConcurrentAppend", func(t *testing.T) {
		ctx, l, advance := setup(t)
		const (
			workers = 8
			ops     = 10
		)
		var (
			mu  sync.Mutex
			ids = make(map[string]string) // id -> data
			wg  sync.WaitGroup
		)
		for w := range workers {
			wg.Go(func() {
				for i := range ops {
					d := fmt.Sprint(w, "/", i)
					id, err := l.Append(ctx, "s", "st", []byte(d))
					if err != nil {
						t.Errorf("worker %d: Append = %v, want nil", w, err)
						return
					}
					mu.Lock()
					if prev, dup := ids[id]; dup {
						t.Errorf("Append of %q = id %q, already given to %q", d, id, prev)
					}
					ids[id] = d
					mu.Unlock()
					// Readers race the writers too.
					if _, err := l.After(ctx, "s", "st", ""); err != nil && !errors.Is(err, ErrPurged) {
						t.Errorf("worker %d: After = %v", w, err)
					}
					if w == 0 {
						advance(time.Second) // well inside the ttl
					}
				}
			})
		}
		wg.Wait()
		const n = workers * ops
		for i := 1; i <= n; i++ {
			if _, ok := ids[strconv.Itoa(i)]; !ok {
				t.Errorf("no Append got id %d of 1..%d", i, n)
			}
		}
		got := mustAfter(t, l, "s", "st", strconv.Itoa(n-contractMaxLen))
		var want []Event
		for i := n - contractMaxLen + 1; i <= n; i++ {
			want = append(want, Event{ID: strconv.Itoa(i), Data: []byte(ids[strconv.Itoa(i)])})
		}
		if !sameEvents(got, want) {
			t.Errorf("After the race = %s, want %s", showEvents(got), showEvents(want))
		}
	})
}

// afterIDs returns the ids that mean "after position n": "" and "0" both
// mean the start.
func afterIDs(n int) []string {
	if n == 0 {
		return []string{"", "0"}
	}
	return []string{strconv.Itoa(n)}
}

// eventsFrom returns events with ids from first on, carrying data.
func eventsFrom(first int, data ...[]byte) []Event {
	var out []Event
	for i, d := range data {
		out = append(out, Event{ID: strconv.Itoa(first + i), Data: d})
	}
	return out
}

// sameEvents reports whether a and b hold the same events; nil and empty
// data are the same.
func sameEvents(a, b []Event) bool {
	return slices.EqualFunc(a, b, func(x, y Event) bool {
		return x.ID == y.ID && bytes.Equal(x.Data, y.Data)
	})
}

// showEvents formats events for a failure message.
func showEvents(evs []Event) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, e := range evs {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s:%q", e.ID, e.Data)
	}
	b.WriteByte(']')
	return b.String()
}

func mustAppend(t *testing.T, l EventLog, session, stream string, data []byte) string {
	t.Helper()
	id, err := l.Append(t.Context(), session, stream, data)
	if err != nil {
		t.Fatalf("Append(%q, %q) = %v, want nil", session, stream, err)
	}
	return id
}

func mustAfter(t *testing.T, l EventLog, session, stream, afterID string) []Event {
	t.Helper()
	evs, err := l.After(t.Context(), session, stream, afterID)
	if err != nil {
		t.Fatalf("After(%q, %q, %q) = %v, want nil", session, stream, afterID, err)
	}
	return evs
}
