package sessionstore

// Publish and Subscribe carry messages between replicas over Redis pub/sub,
// on channels named <prefix><channel>.
//
// Redis pub/sub delivers at most once: a message published while a
// subscriber's connection is down, or while the subscriber is too slow to
// keep up, is lost, and nothing in Redis says so. A cache that is
// invalidated by messages must know when it may have missed one, or it
// serves stale data until its entries expire. So a Subscription reports
// every possible loss as a Message with Gap set:
//
//   - go-redis reconnects a broken subscription by itself and resubscribes;
//     Redis confirms each (re)subscription, and every confirmation after the
//     first means the connection was lost in between;
//   - the subscriber's buffer is bounded; a message that finds it full is
//     dropped and a gap is recorded instead.
//
// A pending gap is delivered as soon as there is room, ahead of any later
// message, and messages that arrive while it is pending are dropped: the
// receiver resynchronizes from scratch anyway.
//
// Each Subscription owns one goroutine, which forwards from go-redis's
// channel to C, and go-redis starts one more, its receive loop. The
// forwarding goroutine also pings Redis when the subscription has been idle
// for 3s, so that a connection that died silently is noticed and
// re-established (go-redis's own health check does the same, but in a
// goroutine that Close could not wait for). Close returns only when both
// goroutines have exited.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// subscribeTimeout bounds how long Subscribe waits for Redis to confirm the
// subscription when ctx has no earlier deadline.
const subscribeTimeout = 5 * time.Second

// pingEvery is how long a subscription may receive nothing before it pings
// Redis, and pingTimeout how long the ping may take.
const (
	pingEvery   = 3 * time.Second
	pingTimeout = 2 * time.Second
)

// subscriptionBuffer is how many messages a Subscription holds for a
// receiver that is busy; more are dropped and reported as a gap.
const subscriptionBuffer = 256

// Message is one delivery on a Subscription: a published payload, or notice
// of a gap.
type Message struct {
	// Payload is the published payload; nil if Gap is set.
	Payload []byte

	// Gap reports that messages published before this one may have been
	// lost: the connection to Redis broke and was re-established, or the
	// receiver fell behind. Whatever the receiver derives from messages
	// (a cache, say) must be rebuilt or dropped.
	Gap bool
}

// Subscription receives the messages published on one channel, by any
// replica, after Subscribe returned it.
type Subscription struct {
	// C delivers the messages in the order Redis received them. It is
	// closed when the subscription ends: by Close, by closing the store,
	// or by closing the client.
	C <-chan Message

	owner *Redis
	ps    *redis.PubSub
	done  chan struct{} // closed when the forwarding goroutine has exited
	once  sync.Once
}

// Publish sends payload to every current subscriber of channel, on every
// replica that shares this Redis and prefix. Delivery is at most once: see
// [Message.Gap]. It makes one round trip.
func (r *Redis) Publish(ctx context.Context, channel string, payload []byte) error {
	if r.closed.Load() {
		return errClosed
	}
	if err := r.client.Publish(ctx, r.prefix+channel, payload).Err(); err != nil {
		return redisError(ctx, "publish", err)
	}
	return nil
}

// Subscribe subscribes to channel and returns once Redis has confirmed it,
// so that every message published afterwards is delivered (or reported as a
// gap). If Redis cannot be reached within ctx, or 5s, the error wraps
// [ErrUnavailable]; once subscribed, the subscription survives Redis
// restarts by itself. The caller must Close the subscription, or the store.
func (r *Redis) Subscribe(ctx context.Context, channel string) (*Subscription, error) {
	if r.closed.Load() {
		return nil, errClosed
	}
	timeout := subscribeTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if timeout <= 0 {
		// ReceiveTimeout would take 0 for "wait forever".
		return nil, fmt.Errorf("sessionstore: subscribe: %w", context.DeadlineExceeded)
	}
	ps := r.client.Subscribe(ctx, r.prefix+channel)
	reply, err := ps.ReceiveTimeout(ctx, timeout)
	if err == nil {
		if sub, ok := reply.(*redis.Subscription); !ok || sub.Kind != "subscribe" {
			err = fmt.Errorf("unexpected reply %v", reply)
		}
	}
	if err != nil {
		_ = ps.Close()
		return nil, redisError(ctx, "subscribe", err)
	}

	out := make(chan Message, subscriptionBuffer)
	s := &Subscription{
		C:     out,
		owner: r,
		ps:    ps,
		done:  make(chan struct{}),
	}
	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		_ = ps.Close()
		return nil, errClosed
	}
	r.subs[s] = struct{}{}
	r.mu.Unlock()

	// go-redis's own health check would be a goroutine that Close cannot
	// wait for; forward pings instead.
	in := ps.ChannelWithSubscriptions(redis.WithChannelHealthCheckInterval(0))
	go func() {
		defer close(s.done)
		forward(in, out, s.ping)
	}()
	return s, nil
}

// Close ends the subscription: C is closed, and Close returns once the
// subscription's goroutines have exited. It is idempotent.
func (s *Subscription) Close() {
	s.once.Do(func() {
		// go-redis's receive loop sees the PubSub closed, closes its
		// channel and exits; forward then closes C and returns.
		_ = s.ps.Close()
	})
	<-s.done
	s.owner.mu.Lock()
	delete(s.owner.subs, s)
	s.owner.mu.Unlock()
}

// ping checks the subscription's connection; see the file comment. A
// failed write makes go-redis reconnect and resubscribe.
func (s *Subscription) ping() {
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	_ = s.ps.Ping(ctx)
}

// forward copies messages from go-redis's channel in to out until in is
// closed, then closes out. It calls ping whenever in has been idle for
// pingEvery. See the file comment for how it reports gaps.
func forward(in <-chan any, out chan<- Message, ping func()) {
	defer close(out)
	idle := time.NewTimer(pingEvery)
	defer idle.Stop()
	gap := false
	for {
		var gapOut chan<- Message // nil, so never chosen, unless a gap is pending
		if gap {
			gapOut = out
		}
		select {
		case gapOut <- Message{Gap: true}:
			gap = false
		case <-idle.C:
			ping()
			idle.Reset(pingEvery)
		case m, ok := <-in:
			if !ok {
				return
			}
			idle.Reset(pingEvery)
			switch m := m.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					gap = true // resubscribed after a reconnect
				}
			case *redis.Message:
				if gap {
					continue // the pending gap covers it
				}
				select {
				case out <- Message{Payload: []byte(m.Payload)}:
				default:
					gap = true
				}
			}
		}
	}
}
