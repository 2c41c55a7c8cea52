package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/mcpgw/gateway/auth"
)

func TestAudit(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	p := &auth.Principal{Issuer: "https://idp", Subject: "alice", Claims: map[string]any{"email": "secret-claim@example.com"}}

	auth.Audit(context.Background(), log, p, "tools/call", "github/search", auth.OutcomeAllowed)
	auth.Audit(context.Background(), log, nil, "resources/read", "file:///x", auth.OutcomeDenied)
	auth.Audit(context.Background(), nil, p, "x", "y", auth.OutcomeError) // discarded

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []map[string]any{
		{"level": "INFO", "msg": "audit", "principal": "https://idp|alice", "action": "tools/call", "target": "github/search", "outcome": "allowed"},
		{"level": "INFO", "msg": "audit", "principal": "anonymous", "action": "resources/read", "target": "file:///x", "outcome": "denied"},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, line := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatal(err)
		}
		delete(got, "time")
		if fmt.Sprint(got) != fmt.Sprint(want[i]) {
			t.Errorf("line %d = %v, want %v", i, got, want[i])
		}
	}
}

func TestPrincipalHidesClaims(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	p := &auth.Principal{Issuer: "https://idp", Subject: "alice", Claims: map[string]any{"email": "secret-claim@example.com"}}
	log.Info("x", slog.Any("principal", p))
	fmt.Fprintf(&buf, " %v %s", p, p)
	if strings.Contains(buf.String(), "secret-claim") {
		t.Errorf("a claim leaked: %s", buf.String())
	}
	if !strings.Contains(buf.String(), "principal=https://idp|alice") {
		t.Errorf("log = %s, want principal=https://idp|alice", buf.String())
	}
}
