package gateway

import (
	"strings"
	"testing"
)

func TestPublicName(t *testing.T) {
	for _, tc := range []struct {
		prefix, sep, name string
		max               int
		want              string
	}{
		{"github", "__", "search", 64, "github__search"},
		{"", "__", "search", 64, "search"},
		{"fs", "__", "read.file", 64, "fs__read_file_" + hashOf("fs", "read.file")},
		{"fs", "__", "héllo wörld", 64, "fs__h__llo_w__rld_" + hashOf("fs", "héllo wörld")},
		{"fs", ".", "a.b", 64, "fs.a.b"},
		{"fs", "__", strings.Repeat("x", 80), 64, "fs__" + strings.Repeat("x", 53) + "_" + hashOf("fs", strings.Repeat("x", 80))},
		{"fs", "__", strings.Repeat("x", 60), 64, "fs__" + strings.Repeat("x", 60)},
		{"fs", "__", strings.Repeat("x", 61), 64, "fs__" + strings.Repeat("x", 53) + "_" + hashOf("fs", strings.Repeat("x", 61))},
		{strings.Repeat("p", 32), "__", "tool", 16, strings.Repeat("p", 9) + "_" + hashOf(strings.Repeat("p", 32), "tool")},
		{"fs", "__", "", 64, "fs___" + hashOf("fs", "")},
	} {
		got := publicName(tc.prefix, tc.sep, tc.name, tc.max)
		if got != tc.want {
			t.Errorf("publicName(%q, %q, %q, %d) = %q, want %q", tc.prefix, tc.sep, tc.name, tc.max, got, tc.want)
		}
		if len(got) > tc.max {
			t.Errorf("publicName(%q, %q, %q, %d) = %q: %d bytes, over the budget", tc.prefix, tc.sep, tc.name, tc.max, got, len(got))
		}
	}
}

// The alias of a name is pinned: public names are part of what clients
// and their users remember, so they must not change between releases.
func TestAliasIsStable(t *testing.T) {
	if got, want := publicName("fs", "__", "read.file", 64), "fs__read_file_a70c27"; got != want {
		t.Errorf("publicName(fs, __, read.file, 64) = %q, want %q (the alias scheme changed)", got, want)
	}
}

func hashOf(prefix, name string) string {
	a := aliasName(prefix, "__", name, 1000)
	return a[len(a)-aliasHashLen:]
}

func TestPublicURI(t *testing.T) {
	prefixes := map[string]*mount{"demo": {name: "demo"}, "a-b": {name: "ab"}}
	for _, tc := range []struct {
		prefix, uri, public string
	}{
		{"demo", "file:///x.txt", "demo+file:///x.txt"},
		{"demo", "demo://alerts/{state}", "demo+demo://alerts/{state}"},
		{"a-b", "https://h/p?q=1+2", "a-b+https://h/p?q=1+2"},
		{"", "file:///x.txt", "file:///x.txt"},
	} {
		got := publicURI(tc.prefix, tc.uri)
		if got != tc.public {
			t.Errorf("publicURI(%q, %q) = %q, want %q", tc.prefix, tc.uri, got, tc.public)
		}
		if tc.prefix == "" {
			continue
		}
		m, uri, ok := splitURI(got, prefixes)
		if !ok || m != prefixes[tc.prefix] || uri != tc.uri {
			t.Errorf("splitURI(%q) = %v, %q, %v; want mount %q, %q", got, m, uri, ok, tc.prefix, tc.uri)
		}
	}
	for _, bad := range []string{"file:///x", "other+file:///x", "+x", ""} {
		if _, _, ok := splitURI(bad, prefixes); ok {
			t.Errorf("splitURI(%q) found a mount, want none", bad)
		}
	}
}

func FuzzPublicName(f *testing.F) {
	f.Add("github", "search", 64)
	f.Add("fs", strings.Repeat("x", 200), 16)
	f.Add("", "a b\x00c", 20)
	f.Add("p", "日本語", 128)
	f.Fuzz(func(t *testing.T, prefix, name string, max int) {
		if max < 16 || max > 128 || len(prefix) > 32 {
			t.Skip()
		}
		const sep = "__"
		got := publicName(prefix, sep, name, max)
		if len(got) > max || len(got) == 0 {
			t.Fatalf("publicName(%q, %q, %d) = %q: length %d outside 1..%d", prefix, name, max, got, len(got), max)
		}
		if !validPublicName(got, sep) {
			t.Fatalf("publicName(%q, %q, %d) = %q holds characters clients reject", prefix, name, max, got)
		}
		if again := publicName(prefix, sep, name, max); again != got {
			t.Fatalf("publicName is not deterministic: %q then %q", got, again)
		}
		full := name
		if prefix != "" {
			full = prefix + sep + name
		}
		if len(full) <= max && name != "" && validPublicName(full, sep) && got != full {
			t.Fatalf("publicName(%q, %q, %d) = %q, want the plain %q", prefix, name, max, got, full)
		}
	})
}
