// Package gctune sets the garbage collector of a gateway process.
//
// A gateway's live heap is small (its catalog and sessions) while it
// allocates a lot per proxied message: the go-sdk decodes every JSON value
// with a fresh 32 KiB buffer, about ten per proxied call. With Go's default
// GOGC=100 the collector then runs every few megabytes, and its work is a
// third of the gateway's CPU. A larger GOGC trades memory for that CPU;
// a memory limit of 90% of the container's keeps the trade inside what
// the pod has: near the limit the collector runs as often as it must.
package gctune

import (
	"errors"
	"math"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// DefaultGCPercent is the GOGC the gateway runs with unless the GOGC
// environment variable says otherwise.
const DefaultGCPercent = 400

// Settings are the collector settings in force.
type Settings struct {
	GCPercent   int   // -1: off
	MemoryLimit int64 // bytes; 0: none
}

// Apply sets GOGC to DefaultGCPercent unless the GOGC environment variable
// is set, and the soft memory limit to 90% of the cgroup's memory limit
// unless GOMEMLIMIT (or AUTOMEMLIMIT=off) is set. Outside a container, or
// in one without a memory limit, no limit is set. The error says why a
// cgroup's limit could not be read; the GOGC setting holds regardless.
func Apply() (Settings, error) {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(DefaultGCPercent)
	}
	_, err := memlimit.Set(memlimit.WithRatio(0.9), memlimit.WithProvider(memlimit.FromCgroup))
	if errors.Is(err, memlimit.ErrNoCgroup) || errors.Is(err, memlimit.ErrCgroupsNotSupported) {
		err = nil
	}
	return Current(), err
}

// Current reads the collector settings in force.
func Current() Settings {
	pct := debug.SetGCPercent(-1)
	debug.SetGCPercent(pct)
	s := Settings{GCPercent: pct}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		s.MemoryLimit = l
	}
	return s
}

// String describes s as the GOGC and GOMEMLIMIT environment variables
// would.
func (s Settings) String() string {
	gc := "off"
	if s.GCPercent >= 0 {
		gc = strconv.Itoa(s.GCPercent)
	}
	limit := "none"
	if s.MemoryLimit > 0 {
		limit = strconv.FormatInt(s.MemoryLimit>>20, 10) + "MiB"
	}
	return "GOGC=" + gc + " GOMEMLIMIT=" + limit
}
