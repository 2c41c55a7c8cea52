package gateway

// Public names. An upstream's tool or prompt "search" mounted with prefix
// "github" is offered as "github__search" (separator "__" by default).
// Upstream names and prefixes match ^[a-z0-9][a-z0-9-]{0,31}$ and the
// separator always holds a character outside that set, so the separator can
// never occur inside a prefix. The gateway still never splits public names:
// it looks them up in the catalog's tables.
//
// A name that is too long for the budget, or holds characters that strict
// clients reject (Claude accepts only [A-Za-z0-9_-]), gets a stable alias:
// the name with those characters replaced by "_", cut to fit, followed by "_"
// and six hex digits of a SHA-256 over prefix and original name. The alias
// depends only on the upstream's prefix and the original name, so it does
// not shift when other upstreams come or go.

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// aliasHashLen is the number of hex digits in an alias suffix.
const aliasHashLen = 6

// publicName returns the name clients see for the upstream entry name,
// mounted under prefix ("" = no namespace), within max bytes.
func publicName(prefix, sep, name string, max int) string {
	full := name
	if prefix != "" {
		full = prefix + sep + name
	}
	if len(full) <= max && name != "" && validPublicName(full, sep) {
		return full
	}
	return aliasName(prefix, sep, name, max)
}

// aliasName builds the hashed alias described in the file comment.
func aliasName(prefix, sep, name string, max int) string {
	sum := sha256.Sum256([]byte(prefix + "\x00" + name))
	suffix := "_" + hex.EncodeToString(sum[:])[:aliasHashLen]
	head := ""
	if prefix != "" {
		head = prefix + sep
	}
	clean := sanitizeName(name, sep)
	room := max - len(suffix) - len(head)
	if room < 1 {
		// Even the prefix does not fit: cut the whole thing.
		whole := sanitizeName(head+name, sep)
		if n := max - len(suffix); len(whole) > n {
			whole = whole[:n]
		}
		return whole + suffix
	}
	if len(clean) > room {
		clean = clean[:room]
	}
	return head + clean + suffix
}

// validPublicName reports whether s holds only [A-Za-z0-9_-] and the
// separator's characters.
func validPublicName(s, sep string) bool {
	for i := 0; i < len(s); i++ {
		if !nameChar(s[i]) && strings.IndexByte(sep, s[i]) < 0 {
			return false
		}
	}
	return true
}

// sanitizeName replaces every byte that validPublicName rejects with "_".
// Working on bytes keeps the result ASCII and its length predictable.
func sanitizeName(s, sep string) string {
	b := []byte(s)
	for i, c := range b {
		if !nameChar(c) && strings.IndexByte(sep, c) < 0 {
			b[i] = '_'
		}
	}
	return string(b)
}

func nameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
