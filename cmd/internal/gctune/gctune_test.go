package gctune

import (
	"os"
	"runtime/debug"
	"testing"
)

// unsetenv removes key for the test and restores it after.
func unsetenv(t *testing.T, key string) {
	t.Helper()
	t.Setenv(key, "") // restores the old value at the end
	os.Unsetenv(key)
}

func TestApplyDefaultsGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	unsetenv(t, "GOGC")
	t.Setenv("GOMEMLIMIT", "1GiB") // keeps memlimit away from this machine's cgroup
	s, err := Apply()
	if err != nil {
		t.Fatal(err)
	}
	if s.GCPercent != DefaultGCPercent || Current().GCPercent != DefaultGCPercent {
		t.Errorf("GOGC after Apply = %d (reported %d), want %d", Current().GCPercent, s.GCPercent, DefaultGCPercent)
	}
}

func TestApplyKeepsOperatorSettings(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(1 << 30))
	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "1GiB")
	s, err := Apply()
	if err != nil {
		t.Fatal(err)
	}
	if s.GCPercent != 150 || s.MemoryLimit != 1<<30 {
		t.Errorf("Apply with GOGC and GOMEMLIMIT set changed them: %+v", s)
	}
	if got, want := s.String(), "GOGC=150 GOMEMLIMIT=1024MiB"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestString(t *testing.T) {
	if got, want := (Settings{GCPercent: -1}).String(), "GOGC=off GOMEMLIMIT=none"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
