package sessionstore

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpgw/gateway/sessionstore/redistest"
)

// deliveryTimeout bounds the wait for a message that must arrive. Delivery
// takes microseconds; the bound only keeps a lost message from hanging the
// test.
const deliveryTimeout = 10 * time.Second

// TestRedisPubSub runs two replicas, each with its own client, on one Redis:
// what one publishes, the other receives, byte for byte, and only on the
// channel and prefix it subscribed to.
func TestRedisPubSub(t *testing.T) {
	srv := redistest.Start(t)
	clientA, clientB := newTestClient(t, srv), newTestClient(t, srv)
	a := NewRedis(clientA, &RedisOptions{Prefix: "p:"})
	b := NewRedis(clientB, &RedisOptions{Prefix: "p:"})
	other := NewRedis(clientA, &RedisOptions{Prefix: "q:"})
	for _, s := range []*Redis{a, b, other} {
		defer s.Close()
	}
	ctx := t.Context()

	subB := mustSubscribe(t, b, "ch")
	subA := mustSubscribe(t, a, "ch")
	subOtherChannel := mustSubscribe(t, b, "ch2")
	subOtherPrefix := mustSubscribe(t, other, "ch")

	payloads := [][]byte{[]byte("hello"), {}, []byte("\x00\xff binary"), []byte(strings.Repeat("x", 1<<16))}
	for _, p := range payloads {
		if err := a.Publish(ctx, "ch", p); err != nil {
			t.Fatalf("Publish = %v, want nil", err)
		}
	}
	for _, sub := range []*Subscription{subB, subA} {
		for _, want := range payloads {
			if got := receive(t, sub); got.Gap || string(got.Payload) != string(want) {
				t.Fatalf("received %v, want payload %.20q", got, want)
			}
		}
	}
	// The others got nothing: the first thing each receives is a marker
	// published after the payloads, on its own channel.
	if err := b.Publish(ctx, "ch2", []byte("marker")); err != nil {
		t.Fatalf("Publish = %v, want nil", err)
	}
	if err := other.Publish(ctx, "ch", []byte("marker")); err != nil {
		t.Fatalf("Publish = %v, want nil", err)
	}
	for name, sub := range map[string]*Subscription{"another channel": subOtherChannel, "another prefix": subOtherPrefix} {
		if got := receive(t, sub); string(got.Payload) != "marker" {
			t.Errorf("subscriber to %s received %v first, want the marker", name, got)
		}
	}
}

// TestRedisPubSubReconnect stops Redis under a subscription: Publish fails
// with ErrUnavailable meanwhile, the subscription reports the gap once
// Redis is back, and delivers again, all without help from the caller.
func TestRedisPubSubReconnect(t *testing.T) {
	srv := redistest.Start(t)
	pub := NewRedis(newTestClient(t, srv), nil)
	defer pub.Close()
	subStore := NewRedis(newTestClient(t, srv), nil)
	defer subStore.Close()
	sub := mustSubscribe(t, subStore, "ch")
	ctx := t.Context()

	srv.Stop()
	if err := pub.Publish(ctx, "ch", []byte("lost")); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Publish with Redis down = %v, want ErrUnavailable", err)
	}
	srv.Restart()
	if got := receive(t, sub); !got.Gap {
		t.Fatalf("first delivery after Redis restarted = %v, want a gap", got)
	}
	waitForRedis(t, pub)
	if err := pub.Publish(ctx, "ch", []byte("after")); err != nil {
		t.Fatalf("Publish after the restart = %v, want nil", err)
	}
	if got := receive(t, sub); got.Gap || string(got.Payload) != "after" {
		t.Errorf("received %v, want payload %q", got, "after")
	}
}

// TestSubscriptionClose checks that closing a subscription, or its store,
// closes C and stops every goroutine the subscription started.
func TestSubscriptionClose(t *testing.T) {
	srv := redistest.Start(t)
	s := NewRedis(newTestClient(t, srv), nil)
	ctx := t.Context()

	one := mustSubscribe(t, s, "a")
	one.Close()
	one.Close() // idempotent
	if _, ok := <-one.C; ok {
		t.Error("C delivered after Close, want it closed")
	}

	subs := []*Subscription{mustSubscribe(t, s, "a"), mustSubscribe(t, s, "b")}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v, want nil", err)
	}
	for i, sub := range subs {
		if _, ok := <-sub.C; ok {
			t.Errorf("subscription %d: C delivered after the store closed, want it closed", i)
		}
		sub.Close() // after the store's Close: a no-op
	}
	if _, err := s.Subscribe(ctx, "a"); err == nil {
		t.Error("Subscribe after Close = nil error, want an error")
	}
	if err := s.Publish(ctx, "a", nil); err == nil {
		t.Error("Publish after Close = nil, want an error")
	}
	waitNoGoroutine(t, "sessionstore.forward", "go-redis/v9.(*channel)")
}

// TestForward drives the forwarding loop with a channel the test controls,
// as go-redis would: messages pass in order; a full buffer turns into a
// gap, delivered once there is room and ahead of later messages; every
// resubscription is a gap.
func TestForward(t *testing.T) {
	in := make(chan any) // unbuffered: a send returns once forward has taken it
	out := make(chan Message, 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		forward(in, out, func() {})
	}()
	msg := func(p string) *redis.Message { return &redis.Message{Payload: p} }

	in <- msg("1")
	in <- msg("2")
	in <- msg("3") // out is full: dropped, gap pending
	in <- msg("4") // dropped: the pending gap covers it
	for _, want := range []Message{{Payload: []byte("1")}, {Payload: []byte("2")}, {Gap: true}} {
		if got := <-out; got.Gap != want.Gap || string(got.Payload) != string(want.Payload) {
			t.Fatalf("received %v, want %v", got, want)
		}
	}
	in <- msg("5")
	in <- &redis.Subscription{Kind: "subscribe", Channel: "ch"} // a reconnect
	for _, want := range []Message{{Payload: []byte("5")}, {Gap: true}} {
		if got := <-out; got.Gap != want.Gap || string(got.Payload) != string(want.Payload) {
			t.Fatalf("received %v, want %v", got, want)
		}
	}
	in <- msg("6")
	close(in)
	<-done
	var rest []Message
	for m := range out {
		rest = append(rest, m)
	}
	if len(rest) != 1 || string(rest[0].Payload) != "6" {
		t.Errorf("after the gap, received %v, want only payload 6, then C closed", rest)
	}
}

func mustSubscribe(t *testing.T, s *Redis, channel string) *Subscription {
	t.Helper()
	sub, err := s.Subscribe(t.Context(), channel)
	if err != nil {
		t.Fatalf("Subscribe(%q) = %v, want nil", channel, err)
	}
	t.Cleanup(sub.Close)
	return sub
}

// receive returns the next delivery on sub, failing the test if none comes
// within deliveryTimeout or C is closed.
func receive(t *testing.T, sub *Subscription) Message {
	t.Helper()
	timer := time.NewTimer(deliveryTimeout)
	defer timer.Stop()
	select {
	case m, ok := <-sub.C:
		if !ok {
			t.Fatal("C closed, want a delivery")
		}
		return m
	case <-timer.C:
		t.Fatalf("nothing received within %v", deliveryTimeout)
		return Message{}
	}
}

// waitNoGoroutine waits until no goroutine's stack mentions any of funcs.
// A goroutine that has done its last act (closed a channel, say) still
// needs a moment to be gone, and nothing signals that moment, so this
// polls, within a bound.
func waitNoGoroutine(t *testing.T, funcs ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		stacks := string(buf[:runtime.Stack(buf, true)])
		var found []string
		for _, f := range funcs {
			if strings.Contains(stacks, f) {
				found = append(found, f)
			}
		}
		if len(found) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines still running %v: %v\n%s", found, funcs, stacks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
