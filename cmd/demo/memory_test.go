package main

import (
	"fmt"
	"sync"
	"testing"
)

// TestMemoryConcurrent saves from many goroutines at once (run with -race)
// and checks that every note got its own id and can be found.
func TestMemoryConcurrent(t *testing.T) {
	const writers = 20
	var m memory
	ids := make(chan int, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() { ids <- m.save(fmt.Sprintf("note %02d", i)) })
	}
	wg.Wait()
	close(ids)

	seen := map[int]bool{}
	for id := range ids {
		if id < 1 || id > writers || seen[id] {
			t.Errorf("save returned id %d: out of range or repeated", id)
		}
		seen[id] = true
	}
	if got := len(m.search("NOTE")); got != writers {
		t.Errorf("search(%q) found %d notes, want %d", "NOTE", got, writers)
	}
	if got := m.search("note 07"); len(got) != 1 || got[0].Text != "note 07" {
		t.Errorf("search(%q) = %+v, want the one note", "note 07", got)
	}
}

func TestParseListening(t *testing.T) {
	for _, tc := range []struct {
		line, want string
		ok         bool
	}{
		{"time=2026-01-02T03:04:05.000Z level=INFO msg=listening addr=127.0.0.1:43817", "127.0.0.1:43817", true},
		{"time=x level=INFO msg=listening addr=[::1]:80 extra=1", "[::1]:80", true},
		{"time=x level=INFO msg=starting name=demo", "", false},
	} {
		got, ok := parseListening(tc.line)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseListening(%q) = %q, %t; want %q, %t", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}
