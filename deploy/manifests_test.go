package deploy

// The Kubernetes tree as files: kustomizations, what they reference, and the
// objects an overlay renders to.

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// kustomization is the part of a kustomization.yaml this test follows.
// Everything else is left to kustomize itself, which renders every overlay.
type kustomization struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Resources  []string `yaml:"resources"`
	Components []string `yaml:"components"`
	Generators []struct {
		Name     string   `yaml:"name"`
		Behavior string   `yaml:"behavior"`
		Files    []string `yaml:"files"`
		Envs     []string `yaml:"envs"`
	} `yaml:"configMapGenerator"`
	SecretGenerators []struct {
		Files []string `yaml:"files"`
		Envs  []string `yaml:"envs"`
	} `yaml:"secretGenerator"`
	Patches []struct {
		Path string `yaml:"path"`
	} `yaml:"patches"`
}

// kustomizeTree is every kustomization under kubeDir, by directory (slash
// separated, relative to this package).
type kustomizeTree struct {
	dirs map[string]*kustomization
	// uses maps every file a kustomization references to how it is used:
	// "resource", "generator" or "patch".
	uses map[string]string
}

func loadKustomizeTree(t *testing.T) *kustomizeTree {
	t.Helper()
	tree := &kustomizeTree{dirs: map[string]*kustomization{}, uses: map[string]string{}}
	err := filepath.WalkDir(kubeDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "kustomization.yaml" {
			return err
		}
		var k kustomization
		dec := yaml.NewDecoder(bytes.NewReader(readFile(t, p)))
		if err := dec.Decode(&k); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		tree.dirs[filepath.ToSlash(filepath.Dir(p))] = &k
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.dirs) == 0 {
		t.Fatalf("no kustomization.yaml under %s", kubeDir)
	}
	return tree
}

// refs lists what the kustomization in dir references, as paths relative to
// this package, each with its use. Problems (missing files, a component
// that is not a Component, ...) are reported on t.
func (tree *kustomizeTree) refs(t *testing.T, dir string) (dirs []string) {
	t.Helper()
	k := tree.dirs[dir]
	switch {
	case k.Kind == "Kustomization" && k.APIVersion == "kustomize.config.k8s.io/v1beta1":
	case k.Kind == "Component" && k.APIVersion == "kustomize.config.k8s.io/v1alpha1":
	default:
		t.Errorf("%s/kustomization.yaml: %s %s; want Kustomization (kustomize.config.k8s.io/v1beta1) or Component (v1alpha1)", dir, k.APIVersion, k.Kind)
	}
	file := func(ref, use string) {
		if strings.Contains(ref, "://") {
			t.Errorf("%s/kustomization.yaml: remote %s %q; keep everything in the repository", dir, use, ref)
			return
		}
		p := path.Join(dir, ref)
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			t.Errorf("%s/kustomization.yaml: %s %q does not exist", dir, use, ref)
		case fi.IsDir() && use == "resource":
			if tree.dirs[p] == nil {
				t.Errorf("%s/kustomization.yaml: resource directory %q has no kustomization.yaml", dir, ref)
			} else if tree.dirs[p].Kind == "Component" {
				t.Errorf("%s/kustomization.yaml: %q is a Component; list it under components:", dir, ref)
			}
			dirs = append(dirs, p)
		case fi.IsDir():
			t.Errorf("%s/kustomization.yaml: %s %q is a directory", dir, use, ref)
		default:
			tree.uses[p] = use
		}
	}
	for _, r := range k.Resources {
		file(r, "resource")
	}
	for _, c := range k.Components {
		p := path.Join(dir, c)
		if ck := tree.dirs[p]; ck == nil || ck.Kind != "Component" {
			t.Errorf("%s/kustomization.yaml: component %q is not a directory with a kind: Component kustomization.yaml", dir, c)
			continue
		}
		dirs = append(dirs, p)
	}
	for _, g := range k.Generators {
		for _, f := range append(g.Files, g.Envs...) {
			_, src, ok := strings.Cut(f, "=") // key=path, or just path
			if !ok {
				src = f
			}
			file(src, "generator")
		}
	}
	for _, g := range k.SecretGenerators {
		if len(g.Files)+len(g.Envs) > 0 {
			t.Errorf("%s/kustomization.yaml: secretGenerator from files; secrets stay out of the repository (see %s)", dir, secretsExample)
		}
	}
	for _, p := range k.Patches {
		if p.Path != "" {
			file(p.Path, "patch")
		}
	}
	return dirs
}

// overlays lists the kustomization directories under overlaysDir: the
// entry points, each a complete deployment.
func (tree *kustomizeTree) overlays() []string {
	var out []string
	for d := range tree.dirs {
		if strings.HasPrefix(d, overlaysDir+"/") {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

func TestKustomizeTree(t *testing.T) {
	tree := loadKustomizeTree(t)
	overlays := tree.overlays()
	if len(overlays) == 0 {
		t.Fatalf("no overlay under %s", overlaysDir)
	}
	if !slices.Contains(overlays, overlaysDir+"/production") {
		t.Errorf("no %s/production overlay", overlaysDir)
	}

	// Every kustomization is an overlay or is reached from one: a base or
	// component nobody includes is dead (and untested: only overlays are
	// rendered).
	reached := map[string]bool{}
	var visit func(d string)
	visit = func(d string) {
		if reached[d] {
			return
		}
		reached[d] = true
		for _, sub := range tree.refs(t, d) {
			visit(sub)
		}
	}
	for _, o := range overlays {
		if tree.dirs[o].Kind != "Kustomization" {
			t.Errorf("%s is a %s; an overlay is a Kustomization", o, tree.dirs[o].Kind)
		}
		visit(o)
	}
	for d := range tree.dirs {
		if !reached[d] {
			t.Errorf("%s is not included by any overlay under %s", d, overlaysDir)
		}
	}

	// Every YAML file parses, every resource document is an object, and
	// every file is used: a manifest no kustomization lists is never applied.
	err := filepath.WalkDir(kubeDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		p = filepath.ToSlash(p)
		ext := path.Ext(p)
		isYAML := ext == ".yaml" || ext == ".yml"
		use := tree.uses[p]
		switch {
		case d.Name() == "kustomization.yaml":
			return nil
		case p == secretsExample:
			return nil // documentation, checked by TestSecretsExample
		case use == "":
			t.Errorf("%s is not referenced by any kustomization.yaml", p)
		case ext == ".yml":
			t.Errorf("%s: name it .yaml, as the rest", p)
		}
		if !isYAML {
			return nil
		}
		docs, err := yamlDocs(readFile(t, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		if use != "resource" {
			return nil
		}
		if len(docs) == 0 {
			t.Errorf("%s: no objects", p)
		}
		for i, doc := range docs {
			var o object
			if err := doc.Decode(&o); err != nil || o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("%s: document %d needs apiVersion, kind and metadata.name (got %q, %q, %q; %v)", p, i, o.APIVersion, o.Kind, o.Metadata.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ---- rendering ---------------------------------------------------------------

// object is one Kubernetes object of a rendered overlay.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`

	node *yaml.Node
}

type meta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func (o *object) String() string { return o.Kind + "/" + o.Metadata.Name }

// decode decodes the whole object into v.
func (o *object) decode(t *testing.T, v any) {
	t.Helper()
	if err := o.node.Decode(v); err != nil {
		t.Fatalf("%s: %v", o, err)
	}
}

// rendered is what `kustomize build` makes of one overlay.
type rendered struct {
	dir  string
	objs []*object
}

// all returns the objects of one kind.
func (r *rendered) all(kind string) []*object {
	var out []*object
	for _, o := range r.objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// get returns the object of a kind and name, or nil.
func (r *rendered) get(kind, name string) *object {
	for _, o := range r.objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o
		}
	}
	return nil
}

// must returns the object of a kind and name, or fails.
func (r *rendered) must(t *testing.T, kind, name string) *object {
	t.Helper()
	o := r.get(kind, name)
	if o == nil {
		t.Fatalf("%s renders no %s %q", r.dir, kind, name)
	}
	return o
}

var renderCache struct {
	sync.Mutex
	byDir map[string]*rendered
}

// render runs kustomize on dir once per test binary.
func render(t *testing.T, dir string) *rendered {
	t.Helper()
	renderCache.Lock()
	defer renderCache.Unlock()
	if r := renderCache.byDir[dir]; r != nil {
		return r
	}
	name, args := kustomizeCommand(dir)
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	docs, err := yamlDocs(out)
	if err != nil {
		t.Fatalf("%s renders invalid YAML: %v", dir, err)
	}
	r := &rendered{dir: dir}
	for _, doc := range docs {
		o := &object{node: doc}
		if err := doc.Decode(o); err != nil {
			t.Fatalf("%s: rendered object: %v", dir, err)
		}
		r.objs = append(r.objs, o)
	}
	if renderCache.byDir == nil {
		renderCache.byDir = map[string]*rendered{}
	}
	renderCache.byDir[dir] = r
	return r
}

// kustomizeVersion is what `go run` builds when neither kustomize nor
// kubectl is installed: the one kubectl 1.32 embeds.
const kustomizeVersion = "v5.5.0"

// kustomizeCommand returns the command that renders dir: kustomize, or
// kubectl's built-in kustomize, or kustomize built from the Go module proxy.
func kustomizeCommand(dir string) (string, []string) {
	if _, err := exec.LookPath("kustomize"); err == nil {
		return "kustomize", []string{"build", dir}
	}
	if _, err := exec.LookPath("kubectl"); err == nil {
		return "kubectl", []string{"kustomize", dir}
	}
	return "go", []string{"run", "sigs.k8s.io/kustomize/kustomize/v5@" + kustomizeVersion, "build", dir}
}

func TestRenderedObjects(t *testing.T) {
	tree := loadKustomizeTree(t)
	for _, dir := range tree.overlays() {
		t.Run(path.Base(dir), func(t *testing.T) {
			r := render(t, dir)
			seen := map[string]bool{}
			var namespaces []*object
			for _, o := range r.objs {
				if seen[o.String()] {
					t.Errorf("%s is rendered twice", o)
				}
				seen[o.String()] = true
				if o.Kind == "Namespace" {
					namespaces = append(namespaces, o)
				} else if o.Metadata.Namespace != namespace {
					t.Errorf("%s is in namespace %q, want %q", o, o.Metadata.Namespace, namespace)
				}
			}
			// The namespace enforces the restricted Pod Security Standard,
			// which checkPodSecurity holds every pod to.
			if len(namespaces) != 1 || namespaces[0].Metadata.Name != namespace {
				t.Fatalf("want one Namespace %q, got %v", namespace, namespaces)
			}
			if l := namespaces[0].Metadata.Labels; l["pod-security.kubernetes.io/enforce"] != "restricted" {
				t.Errorf("Namespace labels %v; want pod-security.kubernetes.io/enforce: restricted", l)
			}
			for _, kind := range []string{"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"} {
				r.must(t, kind, gatewayName)
			}
			if len(r.all("Secret")) > 0 {
				t.Errorf("%s renders Secrets; secrets stay out of the repository (see %s)", dir, secretsExample)
			}
		})
	}
}

// gatewayDeployment returns the gateway's Deployment in r and its container.
func gatewayDeployment(t *testing.T, r *rendered) (*deployment, *container) {
	t.Helper()
	var d deployment
	r.must(t, "Deployment", gatewayName).decode(t, &d)
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("Deployment %s: want one container, got %d", gatewayName, len(cs))
	}
	return &d, &cs[0]
}

// mountedConfig returns the path --config names and the ConfigMap data it
// reads there, or fails saying why the two do not meet.
func mountedConfig(t *testing.T, r *rendered, d *deployment, c *container) (cfgPath, text string) {
	t.Helper()
	if len(c.Command) > 0 {
		t.Fatalf("container %q overrides the image's ENTRYPOINT with command %q; set args only", c.Name, c.Command)
	}
	cfgPath = configFlag(c.Args)
	if cfgPath == "" || !path.IsAbs(cfgPath) {
		t.Fatalf("container %q args %q: want --config with an absolute path", c.Name, c.Args)
	}
	for _, vm := range c.VolumeMounts {
		var key string
		switch mp := path.Clean(vm.MountPath); {
		case vm.SubPath == "" && path.Dir(cfgPath) == mp:
			key = path.Base(cfgPath)
		case vm.SubPath != "" && cfgPath == mp:
			key = vm.SubPath
		default:
			continue
		}
		var vol *volume
		for i := range d.Spec.Template.Spec.Volumes {
			if d.Spec.Template.Spec.Volumes[i].Name == vm.Name {
				vol = &d.Spec.Template.Spec.Volumes[i]
			}
		}
		if vol == nil || vol.ConfigMap == nil {
			t.Fatalf("--config %s is on volume %q, which is not a ConfigMap volume", cfgPath, vm.Name)
		}
		for _, it := range vol.ConfigMap.Items {
			if it.Path == key {
				key = it.Key
			}
		}
		var cm struct {
			Data map[string]string `yaml:"data"`
		}
		r.must(t, "ConfigMap", vol.ConfigMap.Name).decode(t, &cm)
		text, ok := cm.Data[key]
		if !ok {
			t.Fatalf("--config %s: ConfigMap %q has no key %q", cfgPath, vol.ConfigMap.Name, key)
		}
		return cfgPath, text
	}
	t.Fatalf("--config %s is not on any volume mount %+v", cfgPath, c.VolumeMounts)
	return "", ""
}
