package auth

import (
	"context"
	"log/slog"
)

// Outcomes for Audit.
const (
	OutcomeAllowed = "allowed"
	OutcomeDenied  = "denied"
	OutcomeError   = "error"
)

// Audit writes one audit record to log: who (the principal's Key, or
// "anonymous" for nil), did what (action, such as "tools/call"), to what
// (target, such as an upstream-side tool name or URI) and how it ended
// (outcome, such as OutcomeAllowed). The message is always "audit", so
// records are easy to route; tokens, claims and arguments are never part
// of it. A nil log discards the record.
func Audit(ctx context.Context, log *slog.Logger, p *Principal, action, target, outcome string) {
	if log == nil {
		return
	}
	who := "anonymous"
	if p != nil {
		who = p.Key()
	}
	log.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.String("principal", who),
		slog.String("action", action),
		slog.String("target", target),
		slog.String("outcome", outcome))
}
