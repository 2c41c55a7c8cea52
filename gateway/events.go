package gateway

// Resumable streams across replicas. With Redis, every message the gateway
// writes on a session's standalone stream (the GET stream: notifications,
// list changes, resource updates) is also kept in a Redis Stream (bounded in
// length and time), so that a client that reconnects with Last-Event-ID, on
// any replica, gets what it missed: the new owner replays it from Redis.
// The streams of POST responses are kept in memory only: a call's stream
// belongs to the replica running the call, and dies with it.
//
// The SDK stores each message before it delivers it. Writing to Redis there
// would add a round trip to every response, so messages are queued here and
// written in the background, in order, per stream; a replay first writes
// what is still queued for its stream. What a replica had not written when
// it died is lost to a replay elsewhere (milliseconds of messages).
//
// The SDK numbers a stream's events from 0 and resumes after the index in
// Last-Event-ID; the log numbers them from 1, in the order they were
// appended. Appending each stream's events in the SDK's order keeps event i
// at position i+1.

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"strconv"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/gateway/sessionstore"
)

type streamKey struct{ session, stream string }

// streamEvents is an mcp.EventStore over a shared sessionstore.EventLog
// (the standalone streams) and a local one (the others).
type streamEvents struct {
	log    sessionstore.EventLog // shared: standalone streams
	local  sessionstore.EventLog // this replica's: POST response streams
	logger *slog.Logger

	mu      sync.Mutex
	pending map[streamKey][][]byte // queued, not yet written, in order
	kick    chan struct{}          // buffered 1: something is queued
	stop    chan struct{}
	done    chan struct{}

	flushMu sync.Mutex // one writer at a time keeps each stream in order
}

var _ mcp.EventStore = (*streamEvents)(nil)

func newStreamEvents(log sessionstore.EventLog, logger *slog.Logger) *streamEvents {
	e := &streamEvents{log: log, local: sessionstore.NewMemoryEventLog(nil), logger: logger, pending: map[streamKey][][]byte{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go e.run()
	return e
}

// Open implements mcp.EventStore; streams need no setup.
func (e *streamEvents) Open(context.Context, string, string) error { return nil }

// Append implements mcp.EventStore: it queues data for the background
// writer.
func (e *streamEvents) Append(ctx context.Context, session, stream string, data []byte) error {
	if stream != "" {
		_, err := e.local.Append(ctx, session, stream, data)
		return err
	}
	e.mu.Lock()
	k := streamKey{session, stream}
	e.pending[k] = append(e.pending[k], append([]byte(nil), data...))
	e.mu.Unlock()
	select {
	case e.kick <- struct{}{}:
	default:
	}
	return nil
}

// After implements mcp.EventStore: the events of a stream after index,
// read from the log once what is queued for the stream is written.
func (e *streamEvents) After(ctx context.Context, session, stream string, index int) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		log := e.local
		if stream == "" {
			log = e.log
			if err := e.flush(ctx, func(k streamKey) bool { return k == streamKey{session, stream} }); err != nil {
				yield(nil, err)
				return
			}
		}
		events, err := log.After(ctx, session, stream, strconv.Itoa(index+1))
		if errors.Is(err, sessionstore.ErrPurged) {
			err = mcp.ErrEventsPurged
		}
		if err != nil {
			yield(nil, err)
			return
		}
		for _, ev := range events {
			if !yield(ev.Data, nil) {
				return
			}
		}
	}
}

// SessionClosed implements mcp.EventStore. A session's transport closes on
// this replica when the session ends and also when the replica hands it
// over (shutdown), so its events stay: they expire, or deleteSession drops
// them when the session really ends.
func (e *streamEvents) SessionClosed(context.Context, string) error { return nil }

// deleteSession drops a session's events, queued and written.
func (e *streamEvents) deleteSession(ctx context.Context, session string) {
	e.mu.Lock()
	for k := range e.pending {
		if k.session == session {
			delete(e.pending, k)
		}
	}
	e.mu.Unlock()
	e.local.DeleteSession(ctx, session)
	if err := e.log.DeleteSession(ctx, session); err != nil {
		e.logger.LogAttrs(ctx, slog.LevelDebug, "deleting session events failed", slog.Any("err", err))
	}
}

// flush writes the queued events of the streams that match, in order.
func (e *streamEvents) flush(ctx context.Context, match func(streamKey) bool) error {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	e.mu.Lock()
	batch := map[streamKey][][]byte{}
	for k, evs := range e.pending {
		if match(k) {
			batch[k] = evs
			delete(e.pending, k)
		}
	}
	e.mu.Unlock()
	var firstErr error
	for k, evs := range batch {
		for _, data := range evs {
			if _, err := e.log.Append(ctx, k.session, k.stream, data); err != nil {
				// A lost event makes later replays of this stream refuse
				// (purged) rather than skip it silently.
				e.logger.LogAttrs(ctx, slog.LevelWarn, "storing a stream event failed", slog.Any("err", err))
				if firstErr == nil {
					firstErr = err
				}
				break
			}
		}
	}
	return firstErr
}

// run writes queued events in the background until close.
func (e *streamEvents) run() {
	defer close(e.done)
	all := func(streamKey) bool { return true }
	for {
		select {
		case <-e.kick:
			e.flush(context.Background(), all)
		case <-e.stop:
			e.flush(context.Background(), all)
			return
		}
	}
}

// close writes what is queued and stops the writer.
func (e *streamEvents) close() {
	close(e.stop)
	<-e.done
	e.local.Close()
}
