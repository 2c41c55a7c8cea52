package deploy

// Checks on the objects each overlay renders: they must agree with each other
// and with what the gateway binary serves.

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mcpgw/gateway/gateway"
)

// ---- object shapes (only the fields the checks read) -----------------------------

type selector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
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
			Metadata meta    `yaml:"metadata"`
			Spec     podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	AutomountServiceAccountToken  *bool            `yaml:"automountServiceAccountToken"`
	TerminationGracePeriodSeconds *int             `yaml:"terminationGracePeriodSeconds"`
	HostNetwork                   bool             `yaml:"hostNetwork"`
	HostPID                       bool             `yaml:"hostPID"`
	HostIPC                       bool             `yaml:"hostIPC"`
	SecurityContext               *securityContext `yaml:"securityContext"`
	InitContainers                []container      `yaml:"initContainers"`
	Containers                    []container      `yaml:"containers"`
	Volumes                       []volume         `yaml:"volumes"`
	TopologySpreadConstraints     []struct {
		TopologyKey   string   `yaml:"topologyKey"`
		LabelSelector selector `yaml:"labelSelector"`
	} `yaml:"topologySpreadConstraints"`
}

type volume struct {
	Name      string `yaml:"name"`
	ConfigMap *struct {
		Name  string `yaml:"name"`
		Items []struct {
			Key  string `yaml:"key"`
			Path string `yaml:"path"`
		} `yaml:"items"`
	} `yaml:"configMap"`
	HostPath map[string]any `yaml:"hostPath"`
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

type probe struct {
	HTTPGet *struct {
		Path   string `yaml:"path"`
		Port   any    `yaml:"port"`
		Scheme string `yaml:"scheme"`
	} `yaml:"httpGet"`
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
		SecretKeyRef *struct {
			Name     string `yaml:"name"`
			Key      string `yaml:"key"`
			Optional bool   `yaml:"optional"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env       []envVar         `yaml:"env"`
	EnvFrom   []map[string]any `yaml:"envFrom"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	StartupProbe    *probe           `yaml:"startupProbe"`
	LivenessProbe   *probe           `yaml:"livenessProbe"`
	ReadinessProbe  *probe           `yaml:"readinessProbe"`
	SecurityContext *securityContext `yaml:"securityContext"`
	Lifecycle       *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
			Exec *struct{} `yaml:"exec"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

// port resolves a probe's, Service's or policy's port (a number, or the name
// of one of c's ports) to one of c's container ports.
func (c *container) port(p any) (int, error) {
	switch p := p.(type) {
	case int:
		for _, cp := range c.Ports {
			if cp.ContainerPort == p {
				return p, nil
			}
		}
		return 0, fmt.Errorf("port %d is not a port of container %q", p, c.Name)
	case string:
		if n, err := strconv.Atoi(p); err == nil {
			return c.port(n)
		}
		for _, cp := range c.Ports {
			if cp.Name == p {
				return cp.ContainerPort, nil
			}
		}
		return 0, fmt.Errorf("port name %q is not a port of container %q", p, c.Name)
	default:
		return 0, fmt.Errorf("port %v (%T) is neither a number nor a name", p, p)
	}
}

// env returns c's variable name, or nil.
func (c *container) env(name string) *envVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

type service struct {
	Spec struct {
		Type     string            `yaml:"type"`
		Selector map[string]string `yaml:"selector"`
		Ports    []servicePort     `yaml:"ports"`
	} `yaml:"spec"`
}

type servicePort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort any    `yaml:"targetPort"`
}

// ---- the gateway's pods ------------------------------------------------------------

func TestGatewayDeployment(t *testing.T) {
	tree := loadKustomizeTree(t)
	for _, dir := range tree.overlays() {
		t.Run(path.Base(dir), func(t *testing.T) {
			r := render(t, dir)
			d, c := gatewayDeployment(t, r)
			spec := &d.Spec.Template.Spec
			podLabels := d.Spec.Template.Metadata.Labels

			if d.Spec.Replicas == nil || *d.Spec.Replicas != wantReplicas {
				t.Errorf("replicas = %s, want %d", fmtPtr(d.Spec.Replicas), wantReplicas)
			}
			if mu := fmt.Sprint(d.Spec.Strategy.RollingUpdate.MaxUnavailable); d.Spec.Strategy.Type != "RollingUpdate" || mu != "0" && mu != "0%" {
				t.Errorf("strategy %s with maxUnavailable %s; want RollingUpdate with maxUnavailable 0", d.Spec.Strategy.Type, mu)
			}
			if !selects(d.Spec.Selector.MatchLabels, podLabels) {
				t.Errorf("selector %v does not select the pod template's labels %v", d.Spec.Selector.MatchLabels, podLabels)
			}

			// A released image, not whatever "latest" is on each node.
			if img := c.Image; strings.HasSuffix(img, ":latest") || !strings.Contains(img, "@sha256:") && !strings.Contains(img[strings.LastIndex(img, "/")+1:], ":") {
				t.Errorf("image %q; pin a tag or digest (kustomization.yaml images:)", img)
			}

			// One port, named as the Service and probes refer to it.
			if len(c.Ports) != 1 || c.Ports[0].Name != gatewayPortName || c.Ports[0].ContainerPort == 0 {
				t.Fatalf("container ports %+v; want one, named %q", c.Ports, gatewayPortName)
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
				if got, err := c.port(p.pr.HTTPGet.Port); err != nil || got != port {
					t.Errorf("%s: port %v resolves to %d (%v), want the container port %d", p.name, p.pr.HTTPGet.Port, got, err, port)
				}
				if s := p.pr.HTTPGet.Scheme; s != "" && s != "HTTP" {
					t.Errorf("%s: scheme %q; the gateway serves plain HTTP", p.name, s)
				}
			}

			if c.Resources.Requests["cpu"] == "" {
				t.Error("no cpu request; the HPA's utilization target is a share of it")
			}
			// GOMEMLIMIT, if set, leaves headroom below the memory limit
			// for the stdio children in the same container.
			if e := c.env("GOMEMLIMIT"); e != nil {
				soft, err := parseGoMemLimit(e.Value)
				if err != nil {
					t.Error(err)
				}
				limit, err := parseQuantity(c.Resources.Limits["memory"])
				if err != nil || soft*1000 >= limit {
					t.Errorf("GOMEMLIMIT %s is not below the memory limit %q (%v)", e.Value, c.Resources.Limits["memory"], err)
				}
			}

			// The pod outlives its shutdown: preStop, then cmd/gateway's
			// drain, then its stdio children's staged stop.
			preStop := 0
			if l := c.Lifecycle; l != nil && l.PreStop != nil {
				ps := l.PreStop
				if ps.Exec != nil {
					t.Error("preStop exec: the distroless image has no shell or sleep; use preStop.sleep")
				}
				if ps.Sleep != nil {
					preStop = ps.Sleep.Seconds
				} else {
					t.Error("preStop: want sleep (or no preStop)")
				}
			}
			if preStop > 15 {
				t.Errorf("preStop sleeps %ds; a few seconds let the endpoint removal propagate", preStop)
			}
			need := preStop + gatewayDrainSeconds + stdioStopSeconds
			if g := spec.TerminationGracePeriodSeconds; g == nil || *g <= need {
				t.Errorf("terminationGracePeriodSeconds = %s; want more than %ds (preStop %ds + drain %ds + stdio stop %ds)",
					fmtPtr(g), need, preStop, gatewayDrainSeconds, stdioStopSeconds)
			}

			if len(spec.TopologySpreadConstraints) == 0 {
				t.Error("no topologySpreadConstraints: replicas may share a node or zone")
			}
			keys := map[string]bool{}
			for i, tsc := range spec.TopologySpreadConstraints {
				keys[tsc.TopologyKey] = true
				if !selects(tsc.LabelSelector.MatchLabels, podLabels) {
					t.Errorf("topologySpreadConstraints[%d] does not select the gateway's pods", i)
				}
			}
			for _, k := range []string{"kubernetes.io/hostname", "topology.kubernetes.io/zone"} {
				if !keys[k] {
					t.Errorf("no topologySpreadConstraint on %s", k)
				}
			}

			// The ConfigMap is where --config points.
			mountedConfig(t, r, d, c)
		})
	}
}

// TestPodSecurity holds every pod an overlay runs to the restricted Pod
// Security Standard, which the namespace enforces (the API server would
// refuse the pods otherwise), plus this project's own rules: read-only root
// filesystem, resources, no service account token.
func TestPodSecurity(t *testing.T) {
	df := parseDockerfile(t)
	tree := loadKustomizeTree(t)
	for _, dir := range tree.overlays() {
		t.Run(path.Base(dir), func(t *testing.T) {
			r := render(t, dir)
			deps := r.all("Deployment")
			for _, kind := range []string{"StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "ReplicaSet"} {
				if len(r.all(kind)) > 0 {
					t.Errorf("%s renders a %s, which this test does not check; extend TestPodSecurity", dir, kind)
				}
			}
			for _, o := range deps {
				var d deployment
				o.decode(t, &d)
				checkPodSecurity(t, o.String(), &d.Spec.Template.Spec)
			}

			// The gateway's pod runs as the image's user.
			d, c := gatewayDeployment(t, r)
			ctr, pod := c.SecurityContext, d.Spec.Template.Spec.SecurityContext
			if ctr == nil {
				ctr = &securityContext{}
			}
			if pod == nil {
				pod = &securityContext{}
			}
			uid := firstNonNil(ctr.RunAsUser, pod.RunAsUser)
			if u, _, _ := strings.Cut(df.final.user, ":"); uid == nil || strconv.Itoa(*uid) != u {
				t.Errorf("gateway runAsUser %v; want the Dockerfile's USER %q", uid, df.final.user)
			}
		})
	}
}

func checkPodSecurity(t *testing.T, what string, spec *podSpec) {
	t.Helper()
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Errorf("%s: uses host namespaces", what)
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			t.Errorf("%s: hostPath volume %q", what, v.Name)
		}
	}
	if a := spec.AutomountServiceAccountToken; a == nil || *a {
		t.Errorf("%s: automountServiceAccountToken is not false; nothing here talks to the Kubernetes API", what)
	}
	pod := spec.SecurityContext
	if pod == nil {
		pod = &securityContext{}
	}
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		at := fmt.Sprintf("%s container %q", what, c.Name)
		ctr := c.SecurityContext
		if ctr == nil {
			ctr = &securityContext{}
		}
		if v := firstNonNil(ctr.RunAsNonRoot, pod.RunAsNonRoot); v == nil || !*v {
			t.Errorf("%s: runAsNonRoot is not true", at)
		}
		if u := firstNonNil(ctr.RunAsUser, pod.RunAsUser); u == nil || *u == 0 {
			t.Errorf("%s: runAsUser is unset or 0; set the image's numeric non-root user", at)
		}
		if v := ctr.AllowPrivilegeEscalation; v == nil || *v {
			t.Errorf("%s: allowPrivilegeEscalation is not false", at)
		}
		if v := ctr.Privileged; v != nil && *v {
			t.Errorf("%s: privileged", at)
		}
		if ctr.Capabilities == nil || !slices.Contains(ctr.Capabilities.Drop, "ALL") || len(ctr.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities %+v; want drop [ALL] and nothing added", at, ctr.Capabilities)
		}
		if s := firstNonNil(ctr.SeccompProfile, pod.SeccompProfile); s == nil || s.Type != "RuntimeDefault" {
			t.Errorf("%s: seccompProfile %+v; want RuntimeDefault", at, s)
		}
		if v := ctr.ReadOnlyRootFilesystem; v == nil || !*v {
			t.Errorf("%s: readOnlyRootFilesystem is not true", at)
		}
		for _, r := range []string{"cpu", "memory"} {
			if _, err := parseQuantity(c.Resources.Requests[r]); err != nil {
				t.Errorf("%s: %s request: %v", at, r, err)
			}
		}
		req, _ := parseQuantity(c.Resources.Requests["memory"])
		if lim, err := parseQuantity(c.Resources.Limits["memory"]); err != nil || lim < req {
			t.Errorf("%s: memory limit %q is missing or below the request (%v)", at, c.Resources.Limits["memory"], err)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("%s: want liveness and readiness probes", at)
		}
		if strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
			t.Errorf("%s: image %q; pin a tag or digest", at, c.Image)
		}
	}
}

// ---- Service, PDB, HPA -----------------------------------------------------------

func TestServicePDBAndHPA(t *testing.T) {
	tree := loadKustomizeTree(t)
	for _, dir := range tree.overlays() {
		t.Run(path.Base(dir), func(t *testing.T) {
			r := render(t, dir)
			d, c := gatewayDeployment(t, r)
			podLabels := d.Spec.Template.Metadata.Labels

			var svc service
			r.must(t, "Service", gatewayName).decode(t, &svc)
			if svc.Spec.Type != "" && svc.Spec.Type != "ClusterIP" {
				t.Errorf("Service type %q; want ClusterIP (the ingress exposes it)", svc.Spec.Type)
			}
			if !selects(svc.Spec.Selector, podLabels) {
				t.Errorf("Service selector %v does not select the gateway's pods %v", svc.Spec.Selector, podLabels)
			}
			if len(svc.Spec.Ports) != 1 {
				t.Fatalf("Service ports %+v; want one", svc.Spec.Ports)
			}
			sp := svc.Spec.Ports[0]
			if sp.Name != gatewayPortName || sp.TargetPort != gatewayPortName {
				t.Errorf("Service port %q targetPort %v; want both %q, the container port's name", sp.Name, sp.TargetPort, gatewayPortName)
			}
			if got, err := c.port(sp.TargetPort); err != nil || got != c.Ports[0].ContainerPort {
				t.Errorf("Service targetPort %v resolves to %d (%v), want %d", sp.TargetPort, got, err, c.Ports[0].ContainerPort)
			}
			// Any Service that selects the gateway's pods reaches them on
			// its port (no stray selector catching them).
			for _, o := range r.all("Service") {
				var s service
				o.decode(t, &s)
				if o.Metadata.Name != gatewayName && selects(s.Spec.Selector, podLabels) {
					t.Errorf("%s also selects the gateway's pods", o)
				}
			}

			var pdb struct {
				Spec struct {
					MinAvailable   any      `yaml:"minAvailable"`
					MaxUnavailable any      `yaml:"maxUnavailable"`
					Selector       selector `yaml:"selector"`
				} `yaml:"spec"`
			}
			r.must(t, "PodDisruptionBudget", gatewayName).decode(t, &pdb)
			if !selects(pdb.Spec.Selector.MatchLabels, podLabels) {
				t.Errorf("PDB selector %v does not select the gateway's pods %v", pdb.Spec.Selector.MatchLabels, podLabels)
			}
			minA, isMin := pdb.Spec.MinAvailable.(int)
			maxU, isMax := pdb.Spec.MaxUnavailable.(int)
			switch {
			case isMax && pdb.Spec.MinAvailable == nil:
				if maxU != 1 {
					t.Errorf("PDB maxUnavailable %d; want 1", maxU)
				}
			case isMin && pdb.Spec.MaxUnavailable == nil:
				if minA < 1 || minA >= wantReplicas {
					t.Errorf("PDB minAvailable %d; want at least 1 and below replicas (%d), or drains block", minA, wantReplicas)
				}
			default:
				t.Errorf("PDB: want one of minAvailable or maxUnavailable as a number, got %v and %v", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
			}

			var hpa struct {
				Spec struct {
					ScaleTargetRef struct {
						APIVersion string `yaml:"apiVersion"`
						Kind       string `yaml:"kind"`
						Name       string `yaml:"name"`
					} `yaml:"scaleTargetRef"`
					MinReplicas int `yaml:"minReplicas"`
					MaxReplicas int `yaml:"maxReplicas"`
					Metrics     []struct {
						Type     string `yaml:"type"`
						Resource struct {
							Name   string `yaml:"name"`
							Target struct {
								Type               string `yaml:"type"`
								AverageUtilization int    `yaml:"averageUtilization"`
							} `yaml:"target"`
						} `yaml:"resource"`
					} `yaml:"metrics"`
				} `yaml:"spec"`
			}
			r.must(t, "HorizontalPodAutoscaler", gatewayName).decode(t, &hpa)
			if ref := hpa.Spec.ScaleTargetRef; ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != gatewayName {
				t.Errorf("HPA scaleTargetRef %+v; want apps/v1 Deployment %q", ref, gatewayName)
			}
			if d.Spec.Replicas != nil && hpa.Spec.MinReplicas != *d.Spec.Replicas {
				t.Errorf("HPA minReplicas %d, Deployment replicas %d; keep them equal, or each apply fights the HPA below its floor", hpa.Spec.MinReplicas, *d.Spec.Replicas)
			}
			if hpa.Spec.MaxReplicas <= hpa.Spec.MinReplicas {
				t.Errorf("HPA replicas %d..%d leave nothing to scale", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
			}
			cpu := false
			for _, m := range hpa.Spec.Metrics {
				u := m.Resource.Target.AverageUtilization
				cpu = cpu || m.Type == "Resource" && m.Resource.Name == "cpu" && m.Resource.Target.Type == "Utilization" && u > 0 && u <= 100
			}
			if !cpu {
				t.Errorf("HPA metrics %+v; want CPU utilization", hpa.Spec.Metrics)
			}
		})
	}
}

// ---- Ingress ------------------------------------------------------------------

// publicPaths are what clients must reach through the ingress: the MCP
// endpoints and the protected resource metadata (RFC 9728), at the root and
// in its path-inserted form for /mcp.
var publicPaths = []string{
	gateway.PathMCP, gateway.PathSSE, gateway.PathMessage,
	gateway.PathResourceMetadata, gateway.PathResourceMetadata + gateway.PathMCP,
}

// nginxStreaming are the ingress-nginx annotations that event streams need,
// and each one's least acceptable value.
var nginxStreaming = map[string]string{
	"nginx.ingress.kubernetes.io/proxy-buffering":         "off",
	"nginx.ingress.kubernetes.io/proxy-request-buffering": "off",
	"nginx.ingress.kubernetes.io/proxy-read-timeout":      "3600",
	"nginx.ingress.kubernetes.io/proxy-send-timeout":      "3600",
}

type ingress struct {
	Spec struct {
		IngressClassName string `yaml:"ingressClassName"`
		TLS              []struct {
			Hosts []string `yaml:"hosts"`
		} `yaml:"tls"`
		Rules []struct {
			Host string `yaml:"host"`
			HTTP struct {
				Paths []ingressPath `yaml:"paths"`
			} `yaml:"http"`
		} `yaml:"rules"`
	} `yaml:"spec"`
}

type ingressPath struct {
	Path     string `yaml:"path"`
	PathType string `yaml:"pathType"`
	Backend  struct {
		Service *struct {
			Name string `yaml:"name"`
			Port struct {
				Name   string `yaml:"name"`
				Number int    `yaml:"number"`
			} `yaml:"port"`
		} `yaml:"service"`
	} `yaml:"backend"`
}

// routes reports whether an ingress path of a type matches request path p.
func routes(pathType, rulePath, p string) bool {
	switch pathType {
	case "Exact":
		return p == rulePath
	case "Prefix", "ImplementationSpecific":
		prefix := strings.TrimSuffix(rulePath, "/")
		return p == prefix || strings.HasPrefix(p, prefix+"/")
	}
	return false
}

func TestIngress(t *testing.T) {
	tree := loadKustomizeTree(t)
	for _, dir := range tree.overlays() {
		t.Run(path.Base(dir), func(t *testing.T) {
			r := render(t, dir)
			o := r.get("Ingress", gatewayName)
			if o == nil {
				if path.Base(dir) == "production" {
					t.Fatal("the production overlay has no Ingress")
				}
				t.Skipf("%s has no Ingress", dir)
			}
			var ing ingress
			o.decode(t, &ing)
			publicURL, maxBody := ingressFacingConfig(t, r)
			var svc service
			r.must(t, "Service", gatewayName).decode(t, &svc)

			if ing.Spec.IngressClassName != "nginx" {
				t.Fatalf("ingressClassName %q; this test knows the annotations of ingress-nginx (\"nginx\") only", ing.Spec.IngressClassName)
			}
			ann := o.Metadata.Annotations
			for k, want := range nginxStreaming {
				got := ann[k]
				if n, err := strconv.Atoi(want); err == nil {
					if g, err := strconv.Atoi(got); err != nil || g < n {
						t.Errorf("annotation %s: %q; want at least %d seconds", k, got, n)
					}
				} else if got != want {
					t.Errorf("annotation %s: %q, want %q", k, got, want)
				}
			}
			// nginx's 413 would be an HTML page: the gateway's own limit
			// must be the one that bites.
			if bs, err := nginxSize(ann["nginx.ingress.kubernetes.io/proxy-body-size"]); err != nil || bs != 0 && bs <= maxBody {
				t.Errorf("annotation proxy-body-size %q; want above max_body_bytes (%d bytes) (%v)", ann["nginx.ingress.kubernetes.io/proxy-body-size"], maxBody, err)
			}

			pub, err := url.Parse(publicURL)
			if err != nil || pub.Host == "" {
				t.Fatalf("public_url %q: %v", publicURL, err)
			}
			if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != pub.Hostname() {
				var hosts []string
				for _, rule := range ing.Spec.Rules {
					hosts = append(hosts, rule.Host)
				}
				t.Fatalf("Ingress rule hosts %q; want one rule, for public_url's host %q", hosts, pub.Hostname())
			}
			if pub.Scheme == "https" {
				tls := false
				for _, t := range ing.Spec.TLS {
					tls = tls || slices.Contains(t.Hosts, pub.Hostname())
				}
				if !tls {
					t.Errorf("public_url is https, but the Ingress has no tls entry for %q", pub.Hostname())
				}
			}
			if pub.Path != "" && pub.Path != "/" {
				t.Errorf("public_url %q has a path; the Ingress routes the gateway's paths at the root", publicURL)
			}

			paths := ing.Spec.Rules[0].HTTP.Paths
			for _, p := range paths {
				b := p.Backend.Service
				if b == nil || b.Name != gatewayName {
					t.Errorf("path %s: backend %+v; want Service %q", p.Path, b, gatewayName)
					continue
				}
				if !slices.ContainsFunc(svc.Spec.Ports, func(sp servicePort) bool {
					return b.Port.Name != "" && sp.Name == b.Port.Name || b.Port.Number != 0 && sp.Port == b.Port.Number
				}) {
					t.Errorf("path %s: backend port %+v is not a port of Service %q", p.Path, b.Port, gatewayName)
				}
			}
			routed := func(p string) bool {
				return slices.ContainsFunc(paths, func(ip ingressPath) bool { return routes(ip.PathType, ip.Path, p) })
			}
			for _, p := range publicPaths {
				if !routed(p) {
					t.Errorf("%s is not routed by the Ingress; clients need it", p)
				}
			}
			// The probes answer without a token and /readyz lists the
			// upstreams: they are for the kubelet, not the internet.
			for _, p := range []string{gateway.PathHealth, gateway.PathReady} {
				if routed(p) {
					t.Errorf("%s is routed by the Ingress; keep it inside the cluster", p)
				}
			}
		})
	}
}

// ingressFacingConfig reads public_url and max_body_bytes from the config
// the gateway mounts. It reads the YAML itself rather than load the whole
// config, so that the Ingress is checked even while the config does not load
// (TestOverlayConfig reports that); an absent max_body_bytes is the
// gateway's default, as its loader applies it.
func ingressFacingConfig(t *testing.T, r *rendered) (publicURL string, maxBody int64) {
	t.Helper()
	d, c := gatewayDeployment(t, r)
	_, text := mountedConfig(t, r, d, c)
	env := containerEnv(t, c, false)
	publicURL = expandedConfigValue(t, text, env, "public_url")
	if v := expandedConfigValue(t, text, env, "max_body_bytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("max_body_bytes %q: %v", v, err)
		}
		return publicURL, n
	}
	minimal := "upstreams: [{name: x, transport: stdio, command: x}]"
	cfg, err := gateway.ParseConfig([]byte(minimal), "/", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("a minimal config does not load: %v", err)
	}
	return publicURL, cfg.MaxBodyBytes
}

// nginxSize parses an nginx size ("1m", "512k", "1048576") into bytes; 0
// means unlimited.
func nginxSize(v string) (int64, error) {
	mult := int64(1)
	if n := len(v); n > 0 {
		switch v[n-1] {
		case 'k', 'K':
			mult, v = 1<<10, v[:n-1]
		case 'm', 'M':
			mult, v = 1<<20, v[:n-1]
		case 'g', 'G':
			mult, v = 1<<30, v[:n-1]
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q is not a number with an optional k, m or g", v)
	}
	return n * mult, nil
}

// ---- Redis ------------------------------------------------------------------

// TestRedis follows the session store's URL from the config the gateway
// mounts to the Redis the overlay runs, if it runs one: the Service exists on
// that port, selects a Redis pod that listens there and takes its password
// from the same Secret key the URL's password comes from, and a
// NetworkPolicy lets the gateway's pods (and only those) in.
func TestRedis(t *testing.T) {
	tree := loadKustomizeTree(t)
	for _, dir := range tree.overlays() {
		t.Run(path.Base(dir), func(t *testing.T) {
			r := render(t, dir)
			d, gc := gatewayDeployment(t, r)
			_, text := mountedConfig(t, r, d, gc)
			env := containerEnv(t, gc, true)
			raw := expandedConfigValue(t, text, env, "session_store", "redis", "url")
			if raw == "" {
				t.Fatal("the gateway's config has no session_store.redis.url; replicas need a shared session store")
			}
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("session_store.redis.url does not parse: %v", err)
			}
			if strings.Contains(u.Hostname(), ".") {
				t.Skipf("Redis at %s is outside this overlay", u.Hostname())
			}

			// The URL's password is the value of one of the gateway's
			// variables; which Secret key it comes from.
			pw, _ := u.User.Password()
			var pwRef *envVar
			for i := range gc.Env {
				if e := &gc.Env[i]; pw != "" && env.vars[e.Name] == pw {
					pwRef = e
				}
			}
			if pwRef == nil || pwRef.ValueFrom == nil || pwRef.ValueFrom.SecretKeyRef == nil {
				t.Fatal("session_store.redis.url has no password from a Secret; a Redis in the cluster needs one")
			}

			svcObj := r.must(t, "Service", u.Hostname())
			var svc service
			svcObj.decode(t, &svc)
			port := 6379
			if u.Port() != "" {
				port, _ = strconv.Atoi(u.Port())
			}
			var sp *servicePort
			for i := range svc.Spec.Ports {
				if svc.Spec.Ports[i].Port == port {
					sp = &svc.Spec.Ports[i]
				}
			}
			if sp == nil {
				t.Fatalf("Service %q has no port %d", u.Hostname(), port)
			}
			var redis *deployment
			for _, o := range r.all("Deployment") {
				var rd deployment
				o.decode(t, &rd)
				if selects(svc.Spec.Selector, rd.Spec.Template.Metadata.Labels) {
					redis = &rd
				}
			}
			if redis == nil {
				t.Fatalf("Service %q selects no Deployment's pods", u.Hostname())
			}
			if n := redis.Spec.Replicas; n == nil || *n != 1 || redis.Spec.Strategy.Type != "Recreate" {
				t.Errorf("Redis replicas %s, strategy %q; a single unreplicated Redis must run once: 1 and Recreate", fmtPtr(n), redis.Spec.Strategy.Type)
			}
			rc := &redis.Spec.Template.Spec.Containers[0]
			if _, err := rc.port(sp.TargetPort); err != nil {
				t.Errorf("Service %q targetPort: %v", u.Hostname(), err)
			}
			args := slices.Concat(rc.Command, rc.Args)
			i := slices.Index(args, "--requirepass")
			if i < 0 || i+1 >= len(args) {
				t.Fatalf("Redis args %q have no --requirepass", args)
			}
			name, ok := strings.CutPrefix(args[i+1], "$(")
			name, ok2 := strings.CutSuffix(name, ")")
			e := rc.env(name)
			if !ok || !ok2 || e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
				t.Fatalf("Redis --requirepass %q is not $(VAR) of a variable from a Secret", args[i+1])
			}
			if got, want := *e.ValueFrom.SecretKeyRef, *pwRef.ValueFrom.SecretKeyRef; got.Name != want.Name || got.Key != want.Key || got.Optional || want.Optional {
				t.Errorf("Redis's password is Secret %s key %s, the gateway's %s key %s; want the same, required", got.Name, got.Key, want.Name, want.Key)
			}

			// Only the gateway reaches Redis.
			allowed := false
			for _, o := range r.all("NetworkPolicy") {
				var np struct {
					Spec struct {
						PodSelector selector `yaml:"podSelector"`
						Ingress     []struct {
							From []struct {
								PodSelector *selector      `yaml:"podSelector"`
								Namespace   map[string]any `yaml:"namespaceSelector"`
								IPBlock     map[string]any `yaml:"ipBlock"`
							} `yaml:"from"`
							Ports []struct {
								Port any `yaml:"port"`
							} `yaml:"ports"`
						} `yaml:"ingress"`
					} `yaml:"spec"`
				}
				o.decode(t, &np)
				if !selects(np.Spec.PodSelector.MatchLabels, redis.Spec.Template.Metadata.Labels) {
					continue
				}
				for _, rule := range np.Spec.Ingress {
					for _, f := range rule.From {
						if f.PodSelector == nil || f.Namespace != nil || f.IPBlock != nil || !selects(f.PodSelector.MatchLabels, d.Spec.Template.Metadata.Labels) {
							t.Errorf("%s admits more than the gateway's pods: podSelector %v, namespaceSelector %v, ipBlock %v", o, f.PodSelector, f.Namespace, f.IPBlock)
						}
					}
					for _, p := range rule.Ports {
						if got, err := rc.port(p.Port); err == nil && got == mustPort(t, rc, sp.TargetPort) {
							allowed = len(rule.From) > 0
						}
					}
				}
			}
			if !allowed {
				t.Error("no NetworkPolicy limits Redis to the gateway's pods on its port")
			}
		})
	}
}

// fmtPtr formats an optional field: its value, or "unset".
func fmtPtr[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func mustPort(t *testing.T, c *container, p any) int {
	t.Helper()
	n, err := c.port(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
