// Package deploy holds the container image's config and the Kubernetes
// manifests. Nothing here can run a container or a cluster, so this test
// checks what can be checked offline: the manifests parse and agree with
// each other (ports, probes, labels, config mount), both gateway configs load
// with the gateway's real config loader, and the Dockerfile's final stage
// runs the config it copies.
package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mcpgw/gateway/gateway"
)

const (
	kubeDir          = "kubernetes"
	dockerConfigFile = "docker/gateway.yaml"        // relative to this directory
	dockerConfigCtx  = "deploy/docker/gateway.yaml" // the same file, relative to the build context
	dockerfile       = "../Dockerfile"
	dockerignore     = "../.dockerignore"
	goMod            = "../go.mod"
	configKey        = "gateway.yaml" // the ConfigMap key holding the gateway config
)

// optionalManifests may sit in kubeDir without being listed in
// kustomization.yaml's resources.
var optionalManifests = []string{"hpa.yaml"}

// ---- Kubernetes objects (only the fields the checks read) ----------------

type meta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type manifest struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`

	file string
	node *yaml.Node
}

func (m *manifest) String() string { return fmt.Sprintf("%s %s %q", m.file, m.Kind, m.Metadata.Name) }

func (m *manifest) decode(t *testing.T, v any) {
	t.Helper()
	if err := m.node.Decode(v); err != nil {
		t.Fatalf("%s: %v", m, err)
	}
}

type selector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type probe struct {
	HTTPGet *struct {
		Path   string `yaml:"path"`
		Port   any    `yaml:"port"`
		Scheme string `yaml:"scheme"`
	} `yaml:"httpGet"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type securityContext struct {
	RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
	RunAsUser                *int  `yaml:"runAsUser"`
	ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	Privileged               *bool `yaml:"privileged"`
	Capabilities             *struct {
		Drop []string `yaml:"drop"`
		Add  []string `yaml:"add"`
	} `yaml:"capabilities"`
	SeccompProfile *struct {
		Type string `yaml:"type"`
	} `yaml:"seccompProfile"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	StartupProbe    *probe           `yaml:"startupProbe"`
	LivenessProbe   *probe           `yaml:"livenessProbe"`
	ReadinessProbe  *probe           `yaml:"readinessProbe"`
	SecurityContext *securityContext `yaml:"securityContext"`
	VolumeMounts    []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type deployment struct {
	Spec struct {
		Replicas *int     `yaml:"replicas"`
		Selector selector `yaml:"selector"`
		Strategy struct {
			Type          string `yaml:"type"`
			RollingUpdate struct {
				MaxUnavailable any `yaml:"maxUnavailable"`
			} `yaml:"rollingUpdate"`
		} `yaml:"strategy"`
		Template struct {
			Metadata meta `yaml:"metadata"`
			Spec     struct {
				TerminationGracePeriodSeconds *int            `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               securityContext `yaml:"securityContext"`
				Containers                    []container     `yaml:"containers"`
				Volumes                       []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
				Affinity struct {
					PodAntiAffinity struct {
						Preferred []struct {
							PodAffinityTerm struct {
								TopologyKey   string   `yaml:"topologyKey"`
								LabelSelector selector `yaml:"labelSelector"`
							} `yaml:"podAffinityTerm"`
						} `yaml:"preferredDuringSchedulingIgnoredDuringExecution"`
					} `yaml:"podAntiAffinity"`
				} `yaml:"affinity"`
				TopologySpreadConstraints []struct {
					TopologyKey   string   `yaml:"topologyKey"`
					LabelSelector selector `yaml:"labelSelector"`
				} `yaml:"topologySpreadConstraints"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type service struct {
	Spec struct {
		Type     string            `yaml:"type"`
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type kustomization struct {
	Namespace string   `yaml:"namespace"`
	Resources []string `yaml:"resources"`
	Images    []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
}

// namespaced lists the kinds used here that live in a namespace.
var namespaced = map[string]bool{
	"ConfigMap": true, "Deployment": true, "Service": true,
	"PodDisruptionBudget": true, "HorizontalPodAutoscaler": true, "Secret": true,
}

// ---- loading ---------------------------------------------------------------

type manifests struct {
	kust  kustomization
	files []string    // every YAML file in kubeDir, base names, sorted
	objs  []*manifest // every object in those files except the Kustomization
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	entries, err := os.ReadDir(kubeDir)
	if err != nil {
		t.Fatal(err)
	}
	ms := &manifests{}
	sawKust := false
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || ext != ".yaml" && ext != ".yml" {
			continue
		}
		ms.files = append(ms.files, e.Name())
		data, err := os.ReadFile(filepath.Join(kubeDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var doc yaml.Node
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", e.Name(), i, err)
			}
			if len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null" {
				continue // an empty document, e.g. after a trailing ---
			}
			m := &manifest{file: e.Name(), node: doc.Content[0]}
			if err := m.node.Decode(m); err != nil {
				t.Fatalf("%s: document %d: %v", e.Name(), i, err)
			}
			if m.Kind == "Kustomization" {
				if e.Name() != "kustomization.yaml" || sawKust {
					t.Errorf("%s: a Kustomization belongs alone in kustomization.yaml", e.Name())
				}
				sawKust = true
				m.decode(t, &ms.kust)
				continue
			}
			ms.objs = append(ms.objs, m)
		}
	}
	if !sawKust {
		t.Fatalf("%s has no kustomization.yaml", kubeDir)
	}
	return ms
}

func (ms *manifests) one(t *testing.T, kind string) *manifest {
	t.Helper()
	var found []*manifest
	for _, m := range ms.objs {
		if m.Kind == kind {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s in %s, found %d", kind, kubeDir, len(found))
	}
	return found[0]
}

// gatewayContainer returns the Deployment and its (only) container.
func (ms *manifests) gatewayContainer(t *testing.T) (*deployment, *container) {
	t.Helper()
	var d deployment
	ms.one(t, "Deployment").decode(t, &d)
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("Deployment: want one container, got %d", len(cs))
	}
	return &d, &cs[0]
}

// containerPort resolves a probe or Service port (a number, or the name of
// one of c's ports) to a container port number.
func containerPort(c *container, port any) (int, error) {
	switch p := port.(type) {
	case int:
		for _, cp := range c.Ports {
			if cp.ContainerPort == p {
				return p, nil
			}
		}
		return 0, fmt.Errorf("port %d is not one of container %q's ports", p, c.Name)
	case string:
		if n, err := strconv.Atoi(p); err == nil {
			return containerPort(c, n)
		}
		for _, cp := range c.Ports {
			if cp.Name == p {
				return cp.ContainerPort, nil
			}
		}
		return 0, fmt.Errorf("port name %q is not one of container %q's ports", p, c.Name)
	default:
		return 0, fmt.Errorf("port %v (%T) is neither a number nor a name", port, port)
	}
}

// ---- (1) manifests ----------------------------------------------------------

func TestManifestBasics(t *testing.T) {
	ms := loadManifests(t)

	var nsName string
	seen := map[string]string{}
	for _, m := range ms.objs {
		if m.APIVersion == "" || m.Kind == "" || m.Metadata.Name == "" {
			t.Errorf("%s: apiVersion, kind and metadata.name are all required (got %q, %q, %q)",
				m.file, m.APIVersion, m.Kind, m.Metadata.Name)
		}
		key := m.Kind + "/" + m.Metadata.Name
		if prev, dup := seen[key]; dup {
			t.Errorf("%s: %s is also defined in %s", m.file, key, prev)
		}
		seen[key] = m.file
		if m.Kind == "Namespace" {
			nsName = m.Metadata.Name
		}
	}
	if nsName == "" {
		t.Fatal("no Namespace object")
	}
	if nsName != "mcp-gateway" || ms.kust.Namespace != nsName {
		t.Errorf("Namespace %q, kustomization namespace %q; want both mcp-gateway", nsName, ms.kust.Namespace)
	}
	// Explicit namespaces, so `kubectl apply -f deploy/kubernetes` works too.
	for _, m := range ms.objs {
		if namespaced[m.Kind] && m.Metadata.Namespace != nsName {
			t.Errorf("%s: metadata.namespace = %q, want %q", m, m.Metadata.Namespace, nsName)
		}
	}

	// kustomization.yaml lists every manifest (except optional ones), and
	// only files that exist.
	for _, r := range ms.kust.Resources {
		if !slices.Contains(ms.files, r) {
			t.Errorf("kustomization.yaml lists %q, which is not a YAML file in %s", r, kubeDir)
		}
	}
	for _, f := range ms.files {
		if f != "kustomization.yaml" && !slices.Contains(ms.kust.Resources, f) && !slices.Contains(optionalManifests, f) {
			t.Errorf("%s is not listed in kustomization.yaml's resources (nor marked optional in this test)", f)
		}
	}
	for _, want := range []string{"Namespace", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget"} {
		found := false
		for _, m := range ms.objs {
			found = found || m.Kind == want && slices.Contains(ms.kust.Resources, m.file)
		}
		if !found {
			t.Errorf("no %s among kustomization.yaml's resources", want)
		}
	}

	// The image kustomize rewrites is the one the Deployment runs.
	_, c := ms.gatewayContainer(t)
	img := c.Image
	if i := strings.LastIndex(img, ":"); i > strings.LastIndex(img, "/") {
		img = img[:i]
	}
	if len(ms.kust.Images) == 0 || ms.kust.Images[0].Name != img {
		t.Errorf("kustomization.yaml images[0].name should be the Deployment's image %q", img)
	}
}

func TestDeployment(t *testing.T) {
	ms := loadManifests(t)
	d, c := ms.gatewayContainer(t)
	spec := &d.Spec.Template.Spec

	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas = %v, want at least 2", d.Spec.Replicas)
	}
	if mu := fmt.Sprint(d.Spec.Strategy.RollingUpdate.MaxUnavailable); d.Spec.Strategy.Type != "RollingUpdate" || mu != "0" && mu != "0%" {
		t.Errorf("strategy = %s with maxUnavailable %s, want RollingUpdate with maxUnavailable 0", d.Spec.Strategy.Type, mu)
	}
	podLabels := d.Spec.Template.Metadata.Labels
	if !selects(d.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("selector %v does not select the pod template's labels %v", d.Spec.Selector.MatchLabels, podLabels)
	}

	// One port, and the probes use it with the gateway's health paths.
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort == 0 {
		t.Fatalf("container ports = %+v, want exactly one", c.Ports)
	}
	port := c.Ports[0].ContainerPort
	for _, p := range []struct {
		name string
		pr   *probe
		path string
	}{
		{"startupProbe", c.StartupProbe, gateway.PathHealth},
		{"livenessProbe", c.LivenessProbe, gateway.PathHealth},
		{"readinessProbe", c.ReadinessProbe, gateway.PathReady},
	} {
		if p.pr == nil || p.pr.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe on %s", p.name, p.path)
			continue
		}
		if p.pr.HTTPGet.Path != p.path {
			t.Errorf("%s: path %q, want %q", p.name, p.pr.HTTPGet.Path, p.path)
		}
		if got, err := containerPort(c, p.pr.HTTPGet.Port); err != nil || got != port {
			t.Errorf("%s: port %v resolves to %d (%v), want the container port %d", p.name, p.pr.HTTPGet.Port, got, err, port)
		}
		if s := p.pr.HTTPGet.Scheme; s != "" && s != "HTTP" {
			t.Errorf("%s: scheme %q; the gateway serves plain HTTP", p.name, s)
		}
	}

	// Security: pod or container level, container level wins.
	pod, ctr := &spec.SecurityContext, c.SecurityContext
	if ctr == nil {
		ctr = &securityContext{}
	}
	if v := firstBool(ctr.RunAsNonRoot, pod.RunAsNonRoot); v == nil || !*v {
		t.Error("runAsNonRoot is not true")
	}
	if u := firstInt(ctr.RunAsUser, pod.RunAsUser); u != nil && *u == 0 {
		t.Error("runAsUser is 0 (root)")
	}
	if v := ctr.ReadOnlyRootFilesystem; v == nil || !*v {
		t.Error("container readOnlyRootFilesystem is not true")
	}
	if v := ctr.AllowPrivilegeEscalation; v == nil || *v {
		t.Error("container allowPrivilegeEscalation is not false")
	}
	if v := ctr.Privileged; v != nil && *v {
		t.Error("container is privileged")
	}
	if ctr.Capabilities == nil || !slices.Contains(ctr.Capabilities.Drop, "ALL") || len(ctr.Capabilities.Add) > 0 {
		t.Errorf("capabilities = %+v, want drop [ALL] and nothing added", ctr.Capabilities)
	}
	seccomp := ctr.SeccompProfile
	if seccomp == nil {
		seccomp = pod.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != "RuntimeDefault" {
		t.Errorf("seccompProfile = %+v, want RuntimeDefault", seccomp)
	}

	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("no %s request", r)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Error("no memory limit")
	}

	// HOSTNAME is the pod name.
	hostname := false
	for _, e := range c.Env {
		hostname = hostname || e.Name == "HOSTNAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.name"
	}
	if !hostname {
		t.Error("no env HOSTNAME from fieldRef metadata.name")
	}

	// cmd/gateway gives in-flight requests 20s after SIGTERM, then stops the
	// stdio children; the grace period must cover that.
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g < 25 {
		t.Errorf("terminationGracePeriodSeconds = %v, want at least 25 (and 30 by default)", g)
	}

	// Spread: preferred anti-affinity across nodes and topology spread, both
	// selecting this Deployment's pods.
	anti := spec.Affinity.PodAntiAffinity.Preferred
	if len(anti) == 0 || anti[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" ||
		!selects(anti[0].PodAffinityTerm.LabelSelector.MatchLabels, podLabels) {
		t.Errorf("want a preferred podAntiAffinity on kubernetes.io/hostname selecting the pods, got %+v", anti)
	}
	if len(spec.TopologySpreadConstraints) == 0 {
		t.Error("no topologySpreadConstraints")
	}
	for i, tsc := range spec.TopologySpreadConstraints {
		if !selects(tsc.LabelSelector.MatchLabels, podLabels) {
			t.Errorf("topologySpreadConstraints[%d] does not select the pods", i)
		}
	}
}

func TestServicePDBAndHPA(t *testing.T) {
	ms := loadManifests(t)
	d, c := ms.gatewayContainer(t)
	podLabels := d.Spec.Template.Metadata.Labels

	var svc service
	ms.one(t, "Service").decode(t, &svc)
	if svc.Spec.Type != "" && svc.Spec.Type != "ClusterIP" {
		t.Errorf("Service type %q, want ClusterIP", svc.Spec.Type)
	}
	if !selects(svc.Spec.Selector, podLabels) {
		t.Errorf("Service selector %v does not select the pods (%v)", svc.Spec.Selector, podLabels)
	}
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service ports = %+v, want one", svc.Spec.Ports)
	}
	sp := svc.Spec.Ports[0]
	if sp.Name != "http" || sp.Port != 80 {
		t.Errorf("Service port = %s %d, want http 80", sp.Name, sp.Port)
	}
	if got, err := containerPort(c, sp.TargetPort); err != nil || got != c.Ports[0].ContainerPort {
		t.Errorf("Service targetPort %v resolves to %d (%v), want the container port %d", sp.TargetPort, got, err, c.Ports[0].ContainerPort)
	}

	var pdb struct {
		Spec struct {
			MinAvailable any      `yaml:"minAvailable"`
			Selector     selector `yaml:"selector"`
		} `yaml:"spec"`
	}
	ms.one(t, "PodDisruptionBudget").decode(t, &pdb)
	if n, ok := pdb.Spec.MinAvailable.(int); !ok || n < 1 || n >= *d.Spec.Replicas {
		t.Errorf("PDB minAvailable = %v; want at least 1 and below replicas (%d), or drains block", pdb.Spec.MinAvailable, *d.Spec.Replicas)
	}
	if !selects(pdb.Spec.Selector.MatchLabels, podLabels) {
		t.Error("PDB selector does not select the pods")
	}

	var hpa struct {
		Spec struct {
			ScaleTargetRef struct {
				Kind string `yaml:"kind"`
				Name string `yaml:"name"`
			} `yaml:"scaleTargetRef"`
			MinReplicas int `yaml:"minReplicas"`
			MaxReplicas int `yaml:"maxReplicas"`
			Metrics     []struct {
				Resource struct {
					Name   string `yaml:"name"`
					Target struct {
						AverageUtilization int `yaml:"averageUtilization"`
					} `yaml:"target"`
				} `yaml:"resource"`
			} `yaml:"metrics"`
		} `yaml:"spec"`
	}
	h := ms.one(t, "HorizontalPodAutoscaler")
	h.decode(t, &hpa)
	dep := ms.one(t, "Deployment")
	if r := hpa.Spec.ScaleTargetRef; r.Kind != "Deployment" || r.Name != dep.Metadata.Name {
		t.Errorf("HPA targets %s %q, want Deployment %q", r.Kind, r.Name, dep.Metadata.Name)
	}
	if hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas < hpa.Spec.MinReplicas {
		t.Errorf("HPA replicas %d..%d", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if m := hpa.Spec.Metrics; len(m) != 1 || m[0].Resource.Name != "cpu" || m[0].Resource.Target.AverageUtilization != 70 {
		t.Errorf("HPA metrics = %+v, want cpu at 70%%", m)
	}
}

// ---- (2) gateway configs ------------------------------------------------------

// lookupEnv provides the variables the configs reference (in the Kubernetes
// setup they come from the Secret) and records every lookup.
type fakeEnv struct {
	vars   map[string]string
	lookup []string
}

func (e *fakeEnv) LookupEnv(k string) (string, bool) {
	e.lookup = append(e.lookup, k)
	v, ok := e.vars[k]
	return v, ok
}

func TestDockerConfig(t *testing.T) {
	data, err := os.ReadFile(dockerConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	env := &fakeEnv{}
	cfg, err := gateway.ParseConfig(data, "/etc/gateway", env.LookupEnv)
	if err != nil {
		t.Fatalf("%s does not load:\n%v", dockerConfigFile, err)
	}
	if len(env.lookup) > 0 {
		t.Errorf("%s references %v; `docker run image` must work without any environment", dockerConfigFile, env.lookup)
	}
	port := checkListen(t, dockerConfigFile, cfg)

	df := parseDockerfile(t)
	if !slices.Contains(df.final.expose, strconv.Itoa(port)) {
		t.Errorf("Dockerfile EXPOSE %v does not include the config's port %d", df.final.expose, port)
	}
	checkStdioCommandsInImage(t, dockerConfigFile, cfg, df)
}

func TestKubernetesConfig(t *testing.T) {
	ms := loadManifests(t)
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	cmObj := ms.one(t, "ConfigMap")
	cmObj.decode(t, &cm)
	text, ok := cm.Data[configKey]
	if !ok {
		t.Fatalf("ConfigMap %q has no %s key", cmObj.Metadata.Name, configKey)
	}

	// The config as shipped: no ${VAR} may be required.
	env := &fakeEnv{}
	cfg, err := gateway.ParseConfig([]byte(text), "/etc/gateway", env.LookupEnv)
	if err != nil {
		t.Fatalf("ConfigMap %s does not load:\n%v", configKey, err)
	}
	port := checkListen(t, "ConfigMap "+configKey, cfg)
	if cfg.PublicURL == "" {
		t.Error("ConfigMap config has no public_url")
	}
	if cfg.SessionStore.Type != "memory" {
		t.Errorf("session_store.type = %q, want memory until the Redis store exists", cfg.SessionStore.Type)
	}
	df := parseDockerfile(t)
	checkStdioCommandsInImage(t, "ConfigMap "+configKey, cfg, df)

	// The Deployment serves on the config's port, and points --config at
	// the ConfigMap's key where it is mounted.
	d, c := ms.gatewayContainer(t)
	if c.Ports[0].ContainerPort != port {
		t.Errorf("containerPort %d, but the config listens on %d", c.Ports[0].ContainerPort, port)
	}
	args := c.Args
	if len(c.Command) == 0 && len(args) == 0 {
		args = df.final.cmd // the image's CMD
	}
	cfgPath := configFlag(args)
	if cfgPath == "" {
		t.Fatalf("container args %q have no --config", args)
	}
	volume := ""
	for _, vm := range c.VolumeMounts {
		if vm.SubPath == "" && path.Dir(cfgPath) == path.Clean(vm.MountPath) && path.Base(cfgPath) == configKey {
			volume = vm.Name
		}
	}
	if volume == "" {
		t.Fatalf("--config %s is not the %s key of a mounted volume %+v", cfgPath, configKey, c.VolumeMounts)
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == volume && (v.ConfigMap == nil || v.ConfigMap.Name != cmObj.Metadata.Name) {
			t.Errorf("volume %q is not the ConfigMap %q", volume, cmObj.Metadata.Name)
		}
	}

	// The commented remote upstream is a working example: uncommented, with
	// its variables set (as the Secret would), it loads, and its headers
	// come from the environment.
	example, n := uncommentUpstreams(text)
	if n == 0 {
		t.Fatal("the ConfigMap config has no commented-out upstream example (\"# - name: ...\")")
	}
	env = &fakeEnv{vars: map[string]string{"SEARCH_API_TOKEN": "s3cret"}}
	cfg, err = gateway.ParseConfig([]byte(example), "/etc/gateway", env.LookupEnv)
	if err != nil {
		t.Fatalf("the commented upstream example, uncommented, does not load:\n%v\n\n%s", err, example)
	}
	var remote *gateway.UpstreamConfig
	for i := range cfg.Upstreams {
		if cfg.Upstreams[i].Transport == gateway.TransportStreamableHTTP {
			remote = &cfg.Upstreams[i]
		}
	}
	if remote == nil {
		t.Fatal("the uncommented example has no streamable-http upstream")
	}
	if !slices.Contains(env.lookup, "SEARCH_API_TOKEN") || !slices.ContainsFunc(mapValues(remote.Headers), func(v string) bool {
		return strings.Contains(v, "s3cret")
	}) {
		t.Errorf("the example's headers %v do not take SEARCH_API_TOKEN from the environment (lookups %v)", remote.Headers, env.lookup)
	}
}

// checkListen checks that cfg listens on a non-loopback address (so the
// container's port is reachable) and returns the port.
func checkListen(t *testing.T, what string, cfg *gateway.Config) int {
	t.Helper()
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		t.Fatalf("%s: listen %q: %v", what, cfg.Listen, err)
	}
	if strings.EqualFold(host, "localhost") {
		t.Errorf("%s: listen %q is loopback; unreachable from outside the container", what, cfg.Listen)
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		t.Errorf("%s: listen %q is loopback; unreachable from outside the container", what, cfg.Listen)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port == 0 {
		t.Fatalf("%s: listen %q needs a fixed port", what, cfg.Listen)
	}
	return port
}

// checkStdioCommandsInImage checks that each stdio upstream runs a program
// that the image's final stage contains (distroless has nothing else).
func checkStdioCommandsInImage(t *testing.T, what string, cfg *gateway.Config, df *dockerfileInfo) {
	t.Helper()
	for _, u := range cfg.Upstreams {
		if u.Transport != gateway.TransportStdio {
			continue
		}
		if !path.IsAbs(u.Command) || !slices.Contains(df.finalFiles(), u.Command) {
			t.Errorf("%s: upstream %q runs %q, which the image's final stage does not COPY (it has %v)",
				what, u.Name, u.Command, df.finalFiles())
		}
	}
}

// uncommentUpstreams turns commented-out upstream entries ("# - name: x"
// followed by "#   key: v" lines at the same comment indentation) back into
// YAML, and reports how many it found.
func uncommentUpstreams(text string) (string, int) {
	lines := strings.Split(text, "\n")
	n := 0
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimLeft(lines[i], " ")
		if !strings.HasPrefix(trimmed, "# - name:") {
			continue
		}
		indent := lines[i][:len(lines[i])-len(trimmed)]
		n++
		lines[i] = indent + strings.TrimPrefix(trimmed, "# ")
		for i+1 < len(lines) && strings.HasPrefix(lines[i+1], indent+"#   ") {
			i++
			lines[i] = indent + strings.TrimPrefix(lines[i], indent+"# ")
		}
	}
	return strings.Join(lines, "\n"), n
}

// ---- (3) Dockerfile -------------------------------------------------------------

type stage struct {
	base, name, platform string
	copies               []copyInstr
	cmd, entrypoint      []string
	expose               []string
	user                 string
	runs                 []string
	env                  []string
}

type copyInstr struct {
	from string   // --from stage, or "" for the build context
	srcs []string // sources
	dest string
}

type dockerfileInfo struct {
	globalArgs map[string]string
	stages     []*stage
	final      *stage
}

// finalFiles lists the absolute paths the final stage copies files to.
func (d *dockerfileInfo) finalFiles() []string {
	var out []string
	for _, c := range d.final.copies {
		for _, s := range c.srcs {
			if strings.HasSuffix(c.dest, "/") {
				out = append(out, path.Join(c.dest, path.Base(s)))
			} else {
				out = append(out, c.dest)
			}
		}
	}
	return out
}

var argRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

// parseDockerfile reads the instructions this test cares about. It joins
// continuation lines and drops comments, as Docker does; it is not a full
// Dockerfile parser.
func parseDockerfile(t *testing.T) *dockerfileInfo {
	t.Helper()
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var instrs []string
	var cur strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || trimmed == "" {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		instrs = append(instrs, cur.String())
		cur.Reset()
	}

	d := &dockerfileInfo{globalArgs: map[string]string{}}
	var st *stage
	for _, in := range instrs {
		kw, rest, _ := strings.Cut(in, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(kw) {
		case "ARG":
			if st == nil {
				name, def, _ := strings.Cut(rest, "=")
				d.globalArgs[name] = strings.Trim(def, `"`)
			}
		case "FROM":
			st = &stage{}
			fields := strings.Fields(rest)
			for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
				if v, ok := strings.CutPrefix(fields[0], "--platform="); ok {
					st.platform = v
				}
				fields = fields[1:]
			}
			if len(fields) == 0 {
				t.Fatalf("Dockerfile: FROM without an image: %q", in)
			}
			st.base = argRef.ReplaceAllStringFunc(fields[0], func(ref string) string {
				return d.globalArgs[argRef.FindStringSubmatch(ref)[1]]
			})
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				st.name = fields[2]
			}
			d.stages = append(d.stages, st)
		case "COPY", "ADD":
			var c copyInstr
			var args []string
			if strings.HasPrefix(rest, "[") {
				args = jsonArray(t, in, rest)
			} else {
				fields := strings.Fields(rest)
				for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
					if v, ok := strings.CutPrefix(fields[0], "--from="); ok {
						c.from = v
					}
					fields = fields[1:]
				}
				args = fields
			}
			if len(args) < 2 {
				t.Fatalf("Dockerfile: %q needs a source and a destination", in)
			}
			c.srcs, c.dest = args[:len(args)-1], args[len(args)-1]
			if st != nil {
				st.copies = append(st.copies, c)
			}
		case "CMD":
			st.cmd = jsonArray(t, in, rest)
		case "ENTRYPOINT":
			st.entrypoint = jsonArray(t, in, rest)
		case "EXPOSE":
			for _, f := range strings.Fields(rest) {
				st.expose = append(st.expose, strings.TrimSuffix(f, "/tcp"))
			}
		case "USER":
			st.user = rest
		case "RUN":
			st.runs = append(st.runs, rest)
		case "ENV":
			st.env = append(st.env, rest)
		}
	}
	if len(d.stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a builder and a runtime stage", len(d.stages))
	}
	d.final = d.stages[len(d.stages)-1]
	return d
}

// jsonArray parses the exec form ["a", "b"], which CMD and ENTRYPOINT must
// use: the shell form needs /bin/sh, which distroless lacks.
func jsonArray(t *testing.T, in, s string) []string {
	t.Helper()
	var out []string
	if err := yaml.Unmarshal([]byte(s), &out); err != nil || !strings.HasPrefix(s, "[") {
		t.Fatalf("Dockerfile: %q must use the exec form [\"...\"] (there is no shell in the image)", in)
	}
	return out
}

func TestDockerfile(t *testing.T) {
	df := parseDockerfile(t)
	final := df.final

	if !strings.HasPrefix(final.base, "gcr.io/distroless/static") || !strings.Contains(final.base, "nonroot") {
		t.Errorf("final stage FROM %s, want gcr.io/distroless/static-debian12:nonroot", final.base)
	}
	if u := final.user; u != "" && u != "nonroot" && u != "nonroot:nonroot" && !strings.HasPrefix(u, "65532") {
		t.Errorf("final stage USER %q, want nonroot (65532)", u)
	}
	if !slices.Equal(final.entrypoint, []string{"/gateway"}) {
		t.Errorf("ENTRYPOINT %q, want [\"/gateway\"]", final.entrypoint)
	}

	// CMD's --config is where the default config is copied, from the file
	// TestDockerConfig validates.
	cfgPath := configFlag(final.cmd)
	if cfgPath == "" {
		t.Fatalf("CMD %q has no --config", final.cmd)
	}
	copied := false
	for _, c := range final.copies {
		dest := c.dest
		if strings.HasSuffix(dest, "/") && len(c.srcs) == 1 {
			dest = path.Join(dest, path.Base(c.srcs[0]))
		}
		if path.Clean(dest) == cfgPath {
			copied = true
			if c.from != "" || !slices.Equal(c.srcs, []string{dockerConfigCtx}) {
				t.Errorf("%s is copied from %v (stage %q), want %s from the build context", cfgPath, c.srcs, c.from, dockerConfigCtx)
			}
		}
	}
	if !copied {
		t.Errorf("CMD's --config %s is not a COPY destination of the final stage (%v)", cfgPath, df.finalFiles())
	}
	for _, bin := range []string{"/gateway", "/demo"} {
		if !slices.Contains(df.finalFiles(), bin) {
			t.Errorf("the final stage does not COPY %s", bin)
		}
	}

	// The builder: Go at least go.mod's version (golang images set
	// GOTOOLCHAIN=local), modules downloaded before the sources are copied,
	// static, trimmed and versioned binaries.
	build := df.stages[0]
	goVer, ok := strings.CutPrefix(build.base, "golang:")
	if !ok {
		t.Fatalf("builder FROM %s, want golang:<version>-bookworm", build.base)
	}
	goVer, _, _ = strings.Cut(goVer, "-")
	if want := goDirective(t); !versionAtLeast(goVer, want) {
		t.Errorf("builder Go %s is older than go.mod's go %s", goVer, want)
	}
	var order []string
	for _, c := range build.copies {
		order = append(order, strings.Join(c.srcs, " "))
	}
	if len(order) < 2 || order[0] != "go.mod go.sum" || !strings.Contains(strings.Join(build.runs, "\n"), "go mod download") {
		t.Errorf("builder copies %q; want go.mod go.sum first, then `go mod download`, then the sources", order)
	}
	all := strings.Join(append(build.env, build.runs...), "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "-X main.version=${VERSION}", "./cmd/gateway", "./cmd/demo"} {
		if !strings.Contains(all, want) {
			t.Errorf("builder ENV/RUN lack %q", want)
		}
	}
}

func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile(dockerignore)
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	for _, p := range []string{"go.mod", "go.sum", dockerConfigCtx, "cmd/gateway/main.go", "cmd/demo/main.go", "cmd/demo/data/alerts.json", "gateway/config.go"} {
		if ignored(patterns, p) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", p)
		}
	}
	// Hundreds of MB of test fixtures (node_modules) and the repository's
	// history have no business in the build context.
	for _, p := range []string{".git/HEAD", "gateway/testdata/conformance/package.json", "gateway/testdata/tsclient/node_modules/x/package.json"} {
		if !ignored(patterns, p) {
			t.Errorf(".dockerignore does not exclude %s", p)
		}
	}
}

// ignored approximates Docker's .dockerignore rules: the last matching
// pattern wins, "!" re-includes, a pattern matching a parent directory
// matches everything below it, "**" matches any number of directories.
func ignored(patterns []string, file string) bool {
	out := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = path.Clean(strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/"))
		re := regexp.MustCompile("^" + globToRegexp(p) + "(/.*)?$")
		if re.MatchString(file) {
			out = !neg
		}
	}
	return out
}

func globToRegexp(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}

// ---- helpers ---------------------------------------------------------------

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

func firstBool(vs ...*bool) *bool {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

func firstInt(vs ...*int) *int {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

func configFlag(args []string) string {
	for i, a := range args {
		if (a == "--config" || a == "-config") && i+1 < len(args) {
			return path.Clean(args[i+1])
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return path.Clean(v)
		}
	}
	return ""
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func goDirective(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(goMod)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("go.mod has no go directive")
	return ""
}

// versionAtLeast compares dotted Go versions; a missing component in have
// (a floating tag such as 1.26) means its newest release, so it matches.
func versionAtLeast(have, want string) bool {
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i := range w {
		if i >= len(h) {
			return true
		}
		hn, err1 := strconv.Atoi(h[i])
		wn, err2 := strconv.Atoi(w[i])
		if err1 != nil || err2 != nil {
			return false
		}
		if hn != wn {
			return hn > wn
		}
	}
	return true
}
