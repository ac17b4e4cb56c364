// Package deploy holds what operators deploy (container image definition,
// Kubernetes manifests, Prometheus rules, Grafana dashboard) and the tests
// that check them. It is its own module so that the Kubernetes API types
// the tests decode with stay out of the server's dependencies:
//
//	cd deploy && go test ./...
package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// manifests are the decoded objects of kubernetes/*.yaml.
type manifests struct {
	deployments []appsv1.Deployment
	services    []corev1.Service
	pdbs        []policyv1.PodDisruptionBudget
	configMaps  []corev1.ConfigMap
	secrets     []corev1.Secret
}

// decodeManifests decodes every document of kubernetes/*.yaml into its
// Kubernetes API type, refusing unknown or misspelt fields and kinds.
func decodeManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var m manifests
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			where := fmt.Sprintf("%s document %d", f, i+1)
			var head struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var err error
			switch head.APIVersion + " " + head.Kind {
			case "apps/v1 Deployment":
				var d appsv1.Deployment
				err = yaml.UnmarshalStrict([]byte(doc), &d)
				m.deployments = append(m.deployments, d)
			case "v1 Service":
				var s corev1.Service
				err = yaml.UnmarshalStrict([]byte(doc), &s)
				m.services = append(m.services, s)
			case "policy/v1 PodDisruptionBudget":
				var p policyv1.PodDisruptionBudget
				err = yaml.UnmarshalStrict([]byte(doc), &p)
				m.pdbs = append(m.pdbs, p)
			case "v1 ConfigMap":
				var c corev1.ConfigMap
				err = yaml.UnmarshalStrict([]byte(doc), &c)
				m.configMaps = append(m.configMaps, c)
			case "v1 Secret":
				var s corev1.Secret
				err = yaml.UnmarshalStrict([]byte(doc), &s)
				m.secrets = append(m.secrets, s)
			default:
				t.Fatalf("%s: unexpected %s %s", where, head.APIVersion, head.Kind)
			}
			if err != nil {
				t.Fatalf("%s (%s): %v", where, head.Kind, err)
			}
		}
	}
	return m
}

func stripComments(doc string) string {
	var out []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestManifests decodes the manifests strictly and checks what a broken
// rollout would reveal too late: probes on the admin port (/readyz
// readiness, /healthz liveness), a termination grace that covers the
// preStop sleep, mtmd's shutdown grace and its shutdown timeout, a
// non-root read-only container, selectors and port names that match, a
// PodDisruptionBudget that leaves an instance up, and every ConfigMap or
// Secret the pod names defined or listed as created per environment.
func TestManifests(t *testing.T) {
	m := decodeManifests(t)
	if len(m.deployments) != 1 || len(m.services) != 1 || len(m.pdbs) != 1 {
		t.Fatalf("want one Deployment, Service and PodDisruptionBudget; got %d, %d, %d", len(m.deployments), len(m.services), len(m.pdbs))
	}
	d, svc, pdb := m.deployments[0], m.services[0], m.pdbs[0]
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}

	config := map[string]string{}
	for _, cm := range m.configMaps {
		for k, v := range cm.Data {
			config[k] = v
		}
	}
	if got := config["MTM_ADMIN_ADDR"]; !strings.HasSuffix(got, fmt.Sprintf(":%d", ports["admin"])) {
		t.Errorf("MTM_ADMIN_ADDR %q does not listen on the admin port %d", got, ports["admin"])
	}
	if got := config["MTM_ADDR"]; !strings.HasSuffix(got, fmt.Sprintf(":%d", ports["api"])) {
		t.Errorf("MTM_ADDR %q does not listen on the api port %d", got, ports["api"])
	}

	for name, probe := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		want := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}[name]
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "admin" {
			t.Errorf("%s probe = %+v, want GET %s on the admin port", name, probe, want)
		}
	}

	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("no preStop sleep")
	}
	grace, err1 := time.ParseDuration(config["MTM_SHUTDOWN_GRACE"])
	timeout, err2 := time.ParseDuration(config["MTM_SHUTDOWN_TIMEOUT"])
	if err1 != nil || err2 != nil {
		t.Fatalf("MTM_SHUTDOWN_GRACE/MTM_SHUTDOWN_TIMEOUT: %v %v", err1, err2)
	}
	need := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second + grace + timeout
	if pod.TerminationGracePeriodSeconds == nil || time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second <= need {
		t.Errorf("terminationGracePeriodSeconds %v does not cover preStop %ds + grace %s + timeout %s (SIGKILL would cut in-flight calls)",
			pod.TerminationGracePeriodSeconds, c.Lifecycle.PreStop.Sleep.Seconds, grace, timeout)
	}

	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("the pod may run as root")
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Error("the container is not read-only, unprivileged and without capabilities")
	}
	dataMounted := false
	for _, vm := range c.VolumeMounts {
		dataMounted = dataMounted || (vm.MountPath == config["MTM_DATA_DIR"] && !vm.ReadOnly)
	}
	if !dataMounted {
		t.Errorf("MTM_DATA_DIR %q is not a writable volume (the root file system is read-only)", config["MTM_DATA_DIR"])
	}

	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Error("fewer than two instances")
	}
	labels := d.Spec.Template.Labels
	matches := func(sel map[string]string) bool {
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !matches(d.Spec.Selector.MatchLabels) || !matches(svc.Spec.Selector) || pdb.Spec.Selector == nil || !matches(pdb.Spec.Selector.MatchLabels) {
		t.Error("Deployment, Service and PodDisruptionBudget selectors do not all match the pods")
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 || pdb.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
		t.Errorf("PodDisruptionBudget minAvailable %v must keep one instance and still let a node drain", pdb.Spec.MinAvailable)
	}
	for _, p := range svc.Spec.Ports {
		if _, ok := ports[p.TargetPort.String()]; !ok {
			t.Errorf("Service port %s targets %q, not a container port", p.Name, p.TargetPort.String())
		}
	}

	defined := map[string]bool{}
	for _, cm := range m.configMaps {
		defined["ConfigMap "+cm.Name] = true
	}
	for _, s := range m.secrets {
		defined["Secret "+s.Name] = true
	}
	header, _ := os.ReadFile("kubernetes/mtmd.yaml")
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil && !defined["ConfigMap "+ef.ConfigMapRef.Name]:
			t.Errorf("envFrom ConfigMap %s is not defined", ef.ConfigMapRef.Name)
		case ef.SecretRef != nil && !defined["Secret "+ef.SecretRef.Name]:
			t.Errorf("envFrom Secret %s is not defined", ef.SecretRef.Name)
		}
	}
	for _, v := range pod.Volumes {
		if v.Secret != nil && !defined["Secret "+v.Secret.SecretName] && !bytes.Contains(header, []byte("#   "+v.Secret.SecretName+" ")) {
			t.Errorf("volume %s uses Secret %s, neither defined nor listed in mtmd.yaml's header", v.Name, v.Secret.SecretName)
		}
	}
	if url := m.secrets[0].StringData["MTM_REDIS_URL"]; strings.Count(url, ",") < 2 {
		t.Errorf("MTM_REDIS_URL %q does not seed a Redis Cluster", url)
	}
}

// pendingFlags are variables the manifests may set for flags that a change
// not merged yet adds to mtmd. Once mtmd knows one, the test says to take
// it off this list.
var pendingFlags []string

// TestEnvironmentNamesAreFlags runs `mtmd --help` from the module root:
// every variable the ConfigMap and Secrets set is one of mtmd's (a
// misspelt one would be ignored silently).
func TestEnvironmentNamesAreFlags(t *testing.T) {
	m := decodeManifests(t)
	cmd := exec.Command("go", "run", "./cmd/mtmd", "--help")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mtmd --help: %v\n%s", err, out)
	}
	known := map[string]bool{}
	for _, name := range regexp.MustCompile(`\((MTM_[A-Z0-9_]+)\)`).FindAllStringSubmatch(string(out), -1) {
		known[name[1]] = true
	}
	if len(known) < 10 {
		t.Fatalf("mtmd --help lists %d variables:\n%s", len(known), out)
	}
	var names []string
	for _, cm := range m.configMaps {
		for k := range cm.Data {
			names = append(names, k)
		}
	}
	for _, s := range m.secrets {
		for k := range s.StringData {
			names = append(names, k)
		}
	}
	for _, n := range names {
		switch {
		case known[n] && slices.Contains(pendingFlags, n):
			t.Errorf("mtmd now knows %s: take it off pendingFlags", n)
		case !known[n] && !slices.Contains(pendingFlags, n):
			t.Errorf("the manifests set %s, which mtmd does not read", n)
		}
	}
}

// promtool returns the path of promtool or ends the test with a hint.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found in PATH: apt-get install prometheus (Debian) provides it")
	}
	return p
}

// TestAlertRules checks the Prometheus rules and runs their unit tests.
func TestAlertRules(t *testing.T) {
	p := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", "prometheus/alerts.yaml"},
		{"test", "rules", "prometheus/alerts_test.yaml"},
	} {
		out, err := exec.Command(p, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestDashboardQueries checks that every query of the Grafana dashboard
// is valid PromQL (promtool checks it as a recording rule) and reads mtm
// metrics.
func TestDashboardQueries(t *testing.T) {
	p := promtool(t)
	raw, err := os.ReadFile("grafana/mtmd.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil || dash.UID == "" {
		t.Fatalf("grafana/mtmd.json: %v (uid %q)", err, dash.UID)
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, panel := range dash.Panels {
		for _, target := range panel.Targets {
			if !strings.Contains(target.Expr, "mtm") {
				t.Errorf("panel %q reads no mtm metric: %s", panel.Title, target.Expr)
			}
			expr := strings.ReplaceAll(target.Expr, "$instance", ".*")
			q, _ := json.Marshal(expr)
			fmt.Fprintf(&rules, "      - record: dashboard:query%d\n        expr: %s\n", n, q)
			n++
		}
	}
	if n < 10 {
		t.Fatalf("the dashboard has %d queries", n)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(p, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("dashboard queries are not valid PromQL: %v\n%s", err, out)
	}
}
