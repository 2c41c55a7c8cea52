package gateway

// Resource URIs. An upstream mounted with prefix "demo" offers its resource
// "file:///notes.txt" as "demo+file:///notes.txt", and its template
// "demo://alerts/{state}" as "demo+demo://alerts/{state}". The rewrite is
// reversible: prefixes cannot contain "+", so the first "+" ends the prefix,
// and the prefix is then looked up in a table of mounted upstreams. An
// upstream mounted without a prefix keeps its URIs unchanged.
//
// Every place a URI travels is rewritten the same way: list results, reads,
// and resource links and embedded resources inside tool and prompt results.

import "strings"

// uriSep separates a prefix from the upstream's own URI.
const uriSep = "+"

// publicURI returns the URI clients see for an upstream's uri.
func publicURI(prefix, uri string) string {
	if prefix == "" {
		return uri
	}
	return prefix + uriSep + uri
}

// splitURI returns the prefix and the upstream's URI of a public URI whose
// prefix is in prefixes, or ok=false.
func splitURI(public string, prefixes map[string]*mount) (m *mount, uri string, ok bool) {
	p, rest, found := strings.Cut(public, uriSep)
	if !found {
		return nil, "", false
	}
	m, ok = prefixes[p]
	if !ok {
		return nil, "", false
	}
	return m, rest, true
}
