// The memory tools give the demo some state, so tests can tell whether two
// calls reached the same process (a note saved through one session or
// transport is visible through every other) or two different copies.

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// maxNoteBytes keeps one careless call from growing the process without bound.
const maxNoteBytes = 64 << 10

// A note is one saved memory.
type note struct {
	ID   int    `json:"id" jsonschema:"the note's id, unique within this server process"`
	Text string `json:"text" jsonschema:"the note as saved"`
}

// memory is an in-process note store shared by every session of the server.
// It is safe for concurrent use; nothing survives a restart.
type memory struct {
	mu     sync.Mutex // guards the fields below
	lastID int
	notes  []note
}

// save stores text and returns its id. Ids start at 1.
func (m *memory) save(text string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastID++
	m.notes = append(m.notes, note{ID: m.lastID, Text: text})
	return m.lastID
}

// search returns the notes containing query, ignoring case, oldest first.
// An empty query matches every note. The result is never nil.
func (m *memory) search(query string) []note {
	q := strings.ToLower(query)
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []note{}
	for _, n := range m.notes {
		if strings.Contains(strings.ToLower(n.Text), q) {
			out = append(out, n)
		}
	}
	return out
}

type saveMemoryInput struct {
	Text string `json:"text" jsonschema:"the note to remember"`
}

type saveMemoryOutput struct {
	ID int `json:"id" jsonschema:"the id of the saved note"`
}

func (m *memory) saveTool(_ context.Context, _ *mcp.CallToolRequest, in saveMemoryInput) (*mcp.CallToolResult, saveMemoryOutput, error) {
	if strings.TrimSpace(in.Text) == "" {
		return nil, saveMemoryOutput{}, errors.New("text must not be empty")
	}
	if len(in.Text) > maxNoteBytes {
		return nil, saveMemoryOutput{}, fmt.Errorf("text is %d bytes; the limit is %d", len(in.Text), maxNoteBytes)
	}
	id := m.save(in.Text)
	return textResult(fmt.Sprintf("Saved memory %d.", id)), saveMemoryOutput{ID: id}, nil
}

type searchMemoryInput struct {
	Query string `json:"query" jsonschema:"text to look for in saved notes (case-insensitive substring; empty matches all)"`
}

type searchMemoryOutput struct {
	Memories []note `json:"memories" jsonschema:"the matching notes, oldest first"`
}

func (m *memory) searchTool(_ context.Context, _ *mcp.CallToolRequest, in searchMemoryInput) (*mcp.CallToolResult, searchMemoryOutput, error) {
	found := m.search(in.Query)
	if len(found) == 0 {
		return textResult(fmt.Sprintf("No memories match %q.", in.Query)), searchMemoryOutput{Memories: found}, nil
	}
	lines := make([]string, len(found))
	for i, n := range found {
		lines[i] = fmt.Sprintf("[%d] %s", n.ID, n.Text)
	}
	return textResult(strings.Join(lines, "\n")), searchMemoryOutput{Memories: found}, nil
}
