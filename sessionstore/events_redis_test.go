package sessionstore

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mcpgw/gateway/sessionstore/redistest"
)

// TestRedisEventLogGarbage checks that stream keys holding something this
// package did not write give clear errors, never a panic, ErrPurged or
// ErrUnavailable.
func TestRedisEventLogGarbage(t *testing.T) {
	client := newTestClient(t, redistest.Start(t))
	const key = DefaultRedisPrefix + "events:{s}:st"
	for _, tc := range []struct {
		name       string
		write      func(ctx context.Context) error
		wantAppend bool // whether Append may still succeed
	}{
		{"string", func(ctx context.Context) error { return client.Set(ctx, key, "garbage", 0).Err() }, false},
		{"foreign ids", func(ctx context.Context) error {
			return client.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: "1700000000000-0", Values: []string{"d", "x"}}).Err()
		}, false},
		{"no data field", func(ctx context.Context) error {
			return client.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: "0-1", Values: []string{"other", "x"}}).Err()
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if err := client.Del(ctx, key).Err(); err != nil {
				t.Fatalf("DEL = %v", err)
			}
			if err := tc.write(ctx); err != nil {
				t.Fatalf("writing garbage: %v", err)
			}
			l := NewRedisEventLog(client, nil)
			defer l.Close()
			_, err := l.After(ctx, "s", "st", "")
			if err == nil || errors.Is(err, ErrPurged) || errors.Is(err, ErrUnavailable) || !errors.Is(err, errCorrupt) {
				t.Errorf("After = %v, want an error wrapping errCorrupt", err)
			}
			_, err = l.Append(ctx, "s", "st", []byte("x"))
			if errors.Is(err, ErrUnavailable) || (err == nil) != tc.wantAppend {
				t.Errorf("Append = %v, want a clear error unless the entries are ours", err)
			}
			if err := l.DeleteSession(ctx, "s"); err != nil {
				t.Errorf("DeleteSession = %v, want nil", err)
			}
		})
	}
}
