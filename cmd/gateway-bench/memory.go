// Reading this process's memory. Every reading follows two garbage
// collections, so that it counts what is live, not what awaits
// collection.

package main

import "runtime"

// memSnapshot is the process's memory at one moment.
type memSnapshot struct {
	heapInuse  uint64 // runtime.MemStats.HeapInuse: spans holding objects
	heapAlloc  uint64 // runtime.MemStats.HeapAlloc: live objects
	stackInuse uint64 // goroutine stacks
	goroutines int
}

// snapshot collects garbage and reads the process's memory.
func snapshot() memSnapshot {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSnapshot{heapInuse: m.HeapInuse, heapAlloc: m.HeapAlloc, stackInuse: m.StackInuse, goroutines: runtime.NumGoroutine()}
}

// memDelta is what was added between two snapshots, per unit (a session,
// a stream) when divided.
type memDelta struct {
	heapInuse, heapAlloc, stackInuse, goroutines float64
}

// since returns the growth from before to s, divided by n.
func (s memSnapshot) since(before memSnapshot, n int) memDelta {
	f := float64(n)
	return memDelta{
		heapInuse:  (float64(s.heapInuse) - float64(before.heapInuse)) / f,
		heapAlloc:  (float64(s.heapAlloc) - float64(before.heapAlloc)) / f,
		stackInuse: (float64(s.stackInuse) - float64(before.stackInuse)) / f,
		goroutines: float64(s.goroutines-before.goroutines) / f,
	}
}

// total is heap plus stacks: what a session costs in memory.
func (d memDelta) total() float64 { return d.heapInuse + d.stackInuse }

// minus subtracts o from every field.
func (d memDelta) minus(o memDelta) memDelta {
	return memDelta{d.heapInuse - o.heapInuse, d.heapAlloc - o.heapAlloc, d.stackInuse - o.stackInuse, d.goroutines - o.goroutines}
}
