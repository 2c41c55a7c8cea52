package auth

import (
	"path"
	"slices"
	"strconv"
	"strings"
)

// Kind is the kind of thing a policy rule gates.
type Kind string

// Kinds of PolicyRule lists.
const (
	KindTool     Kind = "tool"     // matched against Tools
	KindPrompt   Kind = "prompt"   // matched against Prompts
	KindResource Kind = "resource" // matched against Resources: URIs and URI templates
)

// PolicyRule is one entry of auth.policies. See Policy for how rules match.
type PolicyRule struct {
	// Upstreams (upstreams) are globs over upstream names. If empty, the
	// rule applies to every upstream.
	Upstreams []string
	// Tools (tools), Prompts (prompts) and Resources (resources) are globs
	// over upstream-side names and resource URIs or URI templates.
	Tools     []string
	Prompts   []string
	Resources []string
	// RequireScopes (require_scopes) must all be held.
	RequireScopes []string
	// RequireClaims (require_claims) maps a top-level claim name to the
	// values it may have; every entry must be satisfied.
	RequireClaims map[string][]string
}

// Policy decides which principals may see and use which tools, prompts and
// resources. A nil *Policy allows everything.
//
// Rules are tried in order and the first that matches decides. A rule
// matches (kind, upstream, name) when:
//
//   - upstream matches one of its Upstreams globs, or Upstreams is empty; and
//   - if the rule lists no names of any kind (no Tools, Prompts or
//     Resources), it covers everything of those upstreams; otherwise name
//     must match one of the globs listed for kind, and a rule that lists
//     names for other kinds only does not match this kind.
//
// So {upstreams: [admin*]} guards every tool, prompt and resource of the
// admin upstreams, while {upstreams: [admin*], tools: ["*"]} guards only
// their tools.
//
// A matching rule allows iff the principal holds every RequireScopes entry
// and satisfies every RequireClaims entry: the claim equals one of the
// listed values or, for a list claim, any element does. Numbers and
// booleans compare in their JSON spelling ("42", "true"). A matching rule
// that requires nothing allows, which exempts what it matches from the
// rules after it. If no rule matches, access is allowed: the request has
// already passed required_scopes.
//
// Globs use path.Match syntax, except that "*" also matches "/", so that
// "file:///srv/*" covers a whole tree of URIs. Invalid globs match nothing
// (Config.Validate rejects them).
//
// Without a principal (mode none), a matching rule that requires anything
// denies, since nothing can be proven; a rule that requires nothing allows.
type Policy struct {
	rules []PolicyRule
}

// NewPolicy returns the policy of rules, evaluated in order.
func NewPolicy(rules []PolicyRule) *Policy {
	return &Policy{rules: slices.Clone(rules)}
}

// Allowed reports whether p may see or use the named tool, prompt or
// resource of upstream. p may be nil.
func (pol *Policy) Allowed(p *Principal, kind Kind, upstream, name string) bool {
	r := pol.match(kind, upstream, name)
	return r == nil || (len(pol.missingScopes(r, p)) == 0 && claimsSatisfied(r, p))
}

// MissingScopes returns the scopes that the rule deciding (kind, upstream,
// name) requires and p lacks, or nil. A 403 should list them together with
// the scopes p already needed (see Authenticator.Authorize).
func (pol *Policy) MissingScopes(p *Principal, kind Kind, upstream, name string) []string {
	r := pol.match(kind, upstream, name)
	if r == nil {
		return nil
	}
	return pol.missingScopes(r, p)
}

// Scopes returns every scope some rule requires, in rule order, without
// duplicates.
func (pol *Policy) Scopes() []string {
	if pol == nil {
		return nil
	}
	var out []string
	for _, r := range pol.rules {
		out = union(out, r.RequireScopes)
	}
	return out
}

// match returns the first rule that matches, or nil.
func (pol *Policy) match(kind Kind, upstream, name string) *PolicyRule {
	if pol == nil {
		return nil
	}
	for i := range pol.rules {
		r := &pol.rules[i]
		if len(r.Upstreams) > 0 && !MatchAny(r.Upstreams, upstream) {
			continue
		}
		if len(r.Tools)+len(r.Prompts)+len(r.Resources) == 0 {
			return r
		}
		var globs []string
		switch kind {
		case KindTool:
			globs = r.Tools
		case KindPrompt:
			globs = r.Prompts
		case KindResource:
			globs = r.Resources
		}
		if MatchAny(globs, name) {
			return r
		}
	}
	return nil
}

func (pol *Policy) missingScopes(r *PolicyRule, p *Principal) []string {
	if p == nil {
		return slices.Clone(r.RequireScopes)
	}
	return missing(r.RequireScopes, p.Scopes)
}

func claimsSatisfied(r *PolicyRule, p *Principal) bool {
	if len(r.RequireClaims) == 0 {
		return true
	}
	if p == nil {
		return false
	}
	for name, accepted := range r.RequireClaims {
		if !claimMatches(p.Claims[name], accepted) {
			return false
		}
	}
	return true
}

func claimMatches(v any, accepted []string) bool {
	if list, ok := v.([]any); ok {
		return slices.ContainsFunc(list, func(e any) bool { return scalarMatches(e, accepted) })
	}
	return scalarMatches(v, accepted)
}

func scalarMatches(v any, accepted []string) bool {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case float64:
		s = strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		s = strconv.FormatBool(v)
	default:
		return false
	}
	return slices.Contains(accepted, s)
}

// MatchAny reports whether name matches one of globs: path.Match syntax,
// except that "*" also spans "/", so that a glob over URIs covers subtrees.
// The gateway's upstream filters use the same rule as the policy.
func MatchAny(globs []string, name string) bool {
	// path.Match stops "*" at "/"; NUL never occurs in names or URIs.
	name = strings.ReplaceAll(name, "/", "\x00")
	for _, g := range globs {
		if ok, _ := path.Match(strings.ReplaceAll(g, "/", "\x00"), name); ok {
			return true
		}
	}
	return false
}
