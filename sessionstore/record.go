package sessionstore

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// Record is what the gateway keeps about one client session. The store treats
// every field as opaque data; the JSON tags are the form a shared store may
// serialize it in.
type Record struct {
	// ID is the session id; it must not be empty.
	ID string `json:"id"`

	// Principal is who owns the session, e.g. issuer+"|"+subject; "" when
	// authentication is off.
	Principal string `json:"principal,omitempty"`

	// Transport is the client's transport: "streamable" or "sse".
	Transport string `json:"transport"`

	// ProtocolVersion is the MCP protocol version negotiated with the client.
	ProtocolVersion string `json:"protocolVersion,omitempty"`

	// State is opaque to the store (the SDK's ServerSessionState as JSON)
	// and kept byte for byte.
	State json.RawMessage `json:"state,omitempty"`

	// LogLevel is the level the client set with logging/setLevel.
	LogLevel string `json:"logLevel,omitempty"`

	// Subscriptions are the resource URIs the client subscribed to.
	Subscriptions []string `json:"subscriptions,omitempty"`

	// UpstreamSessions maps an upstream's name to the session id the
	// gateway holds with it on behalf of this client.
	UpstreamSessions map[string]string `json:"upstreamSessions,omitempty"`

	// Owner is the replica that holds the session's live connection.
	Owner string `json:"owner,omitempty"`

	// CreatedAt is when the session was created. If zero, Create sets it.
	CreatedAt time.Time `json:"createdAt"`

	// UpdatedAt is when the record was last written or touched. If zero,
	// Create sets it; Update and Touch always set it.
	UpdatedAt time.Time `json:"updatedAt"`
}

// clone returns a deep copy of r, so that neither side can see the other's
// later changes. Nil slices and maps stay nil.
func (r *Record) clone() *Record {
	c := *r
	if r.State != nil {
		c.State = json.RawMessage(bytes.Clone(r.State))
	}
	c.Subscriptions = slices.Clone(r.Subscriptions)
	c.UpstreamSessions = maps.Clone(r.UpstreamSessions)
	return &c
}
