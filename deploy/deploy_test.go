// Package deploy holds the container image (../Dockerfile, docker/) and the
// Kubernetes manifests (kubernetes/). It has no Go code of its own: its tests
// check, without a container engine or a cluster, what an image build or an
// apply would otherwise reveal, as far as that can be known offline.
//
// # What is checked, and how
//
//   - kubernetes/: every YAML file parses; every kustomization's resources,
//     components and generator files exist; every file is used; every base
//     and component is reached from an overlay (manifests_test.go).
//   - Each overlay (kubernetes/overlays/*) is rendered with the real
//     kustomize (`kustomize build`, else `kubectl kustomize`, else
//     `go run sigs.k8s.io/kustomize/kustomize/v5`), and the objects it would
//     apply are checked against each other and against the gateway: probes
//     on gateway.PathHealth and gateway.PathReady on the container's port,
//     --config pointing at the mounted ConfigMap key, the Service, PDB, HPA,
//     Ingress and NetworkPolicy selecting and reaching the right pods, the
//     restricted Pod Security Standard for every pod, resources, replicas,
//     termination timing (overlays_test.go).
//   - The config each overlay mounts is loaded with gateway.ParseConfig (the
//     loader and validator `gateway validate` runs), with the environment
//     the Deployment gives the container; every ${VAR} it needs must come
//     from there, and the Secret's keys must match secrets.env.example
//     (config_test.go). The cluster config's probes are served in-process
//     without a token while /mcp demands one.
//   - ../Dockerfile is parsed (dockerfile_test.go), its `go build` command is
//     run as written, and the binaries it makes are started with the image's
//     config (docker/gateway.yaml): /healthz, /readyz and the demo upstream
//     answer, and SIGTERM ends the gateway cleanly (image_test.go).
package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Paths, relative to this directory (the test's working directory).
const (
	kubeDir          = "kubernetes"
	overlaysDir      = "kubernetes/overlays"
	secretsExample   = "kubernetes/base/secrets.env.example"
	dockerConfigFile = "docker/gateway.yaml"
	dockerfilePath   = "../Dockerfile"
	dockerignorePath = "../.dockerignore"
	goModPath        = "../go.mod"
	readmePath       = "../README.md"
	repoRoot         = ".."

	// dockerConfigCtx is dockerConfigFile relative to the build context.
	dockerConfigCtx = "deploy/docker/gateway.yaml"
)

// The gateway's objects, as the manifests name them.
const (
	namespace       = "mcp-gateway"
	gatewayName     = "mcp-gateway" // Deployment, Service, PDB, HPA, Ingress
	gatewayPortName = "http"
	secretName      = "mcp-gateway-secrets"
	wantReplicas    = 3
)

// What cmd/gateway does after SIGTERM, which terminationGracePeriodSeconds
// must cover: srv.Shutdown's timeout for requests in flight, then stopping
// stdio children in stages (upstream.Options.StopGrace, 3s by default, after
// stdin is closed, after SIGTERM, and for their stderr to drain).
const (
	gatewayDrainSeconds = 20
	stdioStopSeconds    = 3 * 3
)

// ---- YAML ---------------------------------------------------------------------

// yamlDocs parses every document of a multi-document YAML stream, skipping
// empty ones (a leading or trailing ---).
func yamlDocs(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for i := 0; ; i++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null" {
			continue
		}
		docs = append(docs, doc.Content[0])
	}
}

// lookup follows a path of mapping keys from n, or returns nil.
func lookup(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// ---- small helpers -----------------------------------------------------------------

// selects reports whether a non-empty matchLabels selector selects labels.
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func firstNonNil[T any](vs ...*T) *T {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

// configFlag returns the value of --config (or -config) in args, cleaned.
func configFlag(args []string) string {
	for i, a := range args {
		if (a == "--config" || a == "-config") && i+1 < len(args) {
			return path.Clean(args[i+1])
		}
		for _, p := range []string{"--config=", "-config="} {
			if v, ok := strings.CutPrefix(a, p); ok {
				return path.Clean(v)
			}
		}
	}
	return ""
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// parseQuantity parses a Kubernetes resource quantity ("250m", "512Mi",
// "2", "1G") into milli-units, which is exact for everything the manifests
// use.
func parseQuantity(q string) (int64, error) {
	suffixes := []struct {
		s string
		m int64 // milli-units per unit
	}{
		{"Ki", 1000 << 10}, {"Mi", 1000 << 20}, {"Gi", 1000 << 30}, {"Ti", 1000 << 40},
		{"k", 1000 * 1e3}, {"M", 1000 * 1e6}, {"G", 1000 * 1e9}, {"T", 1000 * 1e12},
		{"m", 1},
	}
	mult := int64(1000)
	for _, s := range suffixes {
		if v, ok := strings.CutSuffix(q, s.s); ok {
			q, mult = v, s.m
			break
		}
	}
	n, err := strconv.ParseInt(q, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("quantity %q: not a non-negative integer with a known suffix", q)
	}
	return n * mult, nil
}

// parseGoMemLimit parses a GOMEMLIMIT value (runtime/debug syntax: a byte
// count with an optional B, KiB, MiB, GiB or TiB suffix) into bytes.
func parseGoMemLimit(v string) (int64, error) {
	mult := int64(1)
	for _, s := range []struct {
		s string
		m int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if n, ok := strings.CutSuffix(v, s.s); ok {
			v, mult = n, s.m
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("GOMEMLIMIT %q is not a byte count like 384MiB", v)
	}
	return n * mult, nil
}
