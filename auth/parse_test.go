package auth

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		header []string
		want   string
		err    error
	}{
		{nil, "", ErrNoToken},
		{[]string{""}, "", ErrNoToken},
		{[]string{"Basic abc"}, "", ErrNoToken},
		{[]string{"Bearer"}, "", ErrNoToken},
		{[]string{"Bearer abc"}, "abc", nil},
		{[]string{"bEaReR   abc  "}, "abc", nil},
		{[]string{"Bearer a b"}, "", ErrInvalidRequest},
		{[]string{"Bearer a", "Bearer b"}, "", ErrInvalidRequest},
	} {
		got, err := bearerToken(http.Header{"Authorization": tc.header})
		if got != tc.want || (err == nil) != (tc.err == nil) || (err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("bearerToken(%q) = %q, %v, want %q, %v", tc.header, got, err, tc.want, tc.err)
		}
	}
}

func TestPeekIssuer(t *testing.T) {
	for _, tc := range []struct {
		token string
		want  string
		ok    bool
	}{
		{"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcCJ9.c2ln", "https://idp", true},
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "", false},         // no iss
		{"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjF9.c2ln", "", false},            // iss not a string
		{"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcCJ9", "", false}, // two parts
		{"opaque", "", false},
		{"a.!!.c", "", false},
	} {
		got, ok := peekIssuer(tc.token)
		if got != tc.want || ok != tc.ok {
			t.Errorf("peekIssuer(%q) = %q, %v, want %q, %v", tc.token, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzPeekIssuer(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcCJ9.c2ln")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		iss, ok := peekIssuer(token)
		if ok && (iss == "" || strings.Count(token, ".") != 2) {
			t.Errorf("peekIssuer(%q) = %q, true for a token that is not a three-part JWS with iss", token, iss)
		}
	})
}

func FuzzBearerToken(f *testing.F) {
	f.Add("Bearer abc")
	f.Add("bearer  a b")
	f.Fuzz(func(t *testing.T, header string) {
		token, err := bearerToken(http.Header{"Authorization": {header}})
		if err == nil && (token == "" || strings.ContainsAny(token, " \t\r\n")) {
			t.Errorf("bearerToken(%q) = %q, nil: want a token without spaces", header, token)
		}
	})
}
