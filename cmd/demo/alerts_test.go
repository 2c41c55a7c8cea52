package main

import (
	"slices"
	"strings"
	"testing"
)

func TestNormalizeState(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		wantErr  bool
	}{
		{"CA", "CA", false},
		{"ca", "CA", false},
		{"nY", "NY", false},
		{" tx\n", "TX", false},
		{"", "", true},
		{"C", "", true},
		{"CAL", "", true},
		{"C1", "", true},
		{"C A", "", true},
		{"ÇA", "", true},
		{"ſa", "", true}, // upper-cases to "SA"
		{"ıa", "", true}, // upper-cases to "IA"
	} {
		got, err := normalizeState(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("normalizeState(%q) = %q, %v; want %q, error %t", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func FuzzNormalizeState(f *testing.F) {
	for _, s := range []string{"CA", "ny", " tx ", "", "CAL", "ÇA", "\x00a", "ſa"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, err := normalizeState(s)
		if err != nil {
			return
		}
		if trimmed := strings.TrimSpace(s); len(code) != 2 || len(trimmed) != 2 || strings.ToUpper(trimmed) != code || strings.ToUpper(code) != code {
			t.Errorf("normalizeState(%q) = %q, want two upper-case letters equal to the input", s, code)
		}
		if again, err := normalizeState(code); err != nil || again != code {
			t.Errorf("normalizeState(%q) = %q, %v; want it unchanged", code, again, err)
		}
	})
}

func TestBundledAlerts(t *testing.T) {
	b, err := newAlertBook(sampleAlerts)
	if err != nil {
		t.Fatalf("newAlertBook(bundled data): %v", err)
	}
	for _, code := range []string{"CA", "TX", "NY", "FL"} {
		if !slices.Contains(b.codes, code) {
			t.Errorf("bundled data lacks %s; have %v", code, b.codes)
		}
	}
	for code, alerts := range b.states {
		for i, a := range alerts {
			if a.Event == "" || a.Area == "" || a.Severity == "" || a.Description == "" || a.Instructions == "" {
				t.Errorf("%s alert %d has an empty field: %+v", code, i, a)
			}
		}
	}
}

func TestNewAlertBookRejects(t *testing.T) {
	for _, tc := range []struct{ name, data, wantErr string }{
		{"not json", `[`, "decoding alerts"},
		{"unknown field", `{"CA":[{"event":"x","colour":"red"}]}`, "unknown field"},
		{"lower-case key", `{"ca":[{"event":"x"}]}`, `alerts key "ca"`},
		{"long key", `{"CAL":[{"event":"x"}]}`, `alerts key "CAL"`},
		{"empty state", `{"CA":[]}`, "no alerts"},
	} {
		_, err := newAlertBook([]byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: newAlertBook(%s) error = %v, want one containing %q", tc.name, tc.data, err, tc.wantErr)
		}
	}
}
