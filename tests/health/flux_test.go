package health

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var fluxFiles = []string{"kustomization-healthcheckexprs.yaml", "kustomization-healthcheckexprs-outages.yaml"}

// fluxExprs reads a Kustomization and returns its one health check for PrivateApiConnectivityCheck.
func fluxExprs(t *testing.T, path string) HealthCheckExprs {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			Wait             bool               `json:"wait"`
			HealthChecks     []map[string]any   `json:"healthChecks"`
			HealthCheckExprs []HealthCheckExprs `json:"healthCheckExprs"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if k.APIVersion != "kustomize.toolkit.fluxcd.io/v1" || k.Kind != "Kustomization" {
		t.Fatalf("%s: not a Flux Kustomization: %s %s", path, k.APIVersion, k.Kind)
	}
	if !k.Spec.Wait && len(k.Spec.HealthChecks) == 0 {
		t.Fatalf("%s: neither wait nor healthChecks: Flux would check no object", path)
	}
	if len(k.Spec.HealthCheckExprs) != 1 {
		t.Fatalf("%s: %d healthCheckExprs, want 1", path, len(k.Spec.HealthCheckExprs))
	}
	h := k.Spec.HealthCheckExprs[0]
	// Flux matches on the group of apiVersion and on kind.
	if !strings.HasPrefix(h.APIVersion, "pvtapi.io/") || h.Kind != "PrivateApiConnectivityCheck" {
		t.Fatalf("%s: health check for %s %s", path, h.APIVersion, h.Kind)
	}
	if h.Current == "" || h.InProgress == "" || h.Failed == "" {
		t.Fatalf("%s: current, inProgress and failed must all be set", path)
	}
	return h
}

type fluxTests struct {
	Tests []struct {
		InputPath string                `json:"inputPath"`
		Status    map[string]FluxStatus `json:"status"`
	} `json:"tests"`
}

// fluxOutcome is what Flux reports for obj: the status, or Unknown with the error.
func fluxOutcome(e *StatusEvaluator, obj map[string]any, generationCheck bool) (FluxStatus, error) {
	return e.Evaluate(context.Background(), obj, generationCheck)
}

// TestFluxHealthCheckExprs evaluates each file's expressions against every testdata object and
// compares with docs/flux/health_test.yaml: as Flux does (live numbers, its observedGeneration
// check first), and also without that check and with float numbers, which must agree.
func TestFluxHealthCheckExprs(t *testing.T) {
	root := RepoRoot()
	dir := filepath.Join(root, "docs/flux")
	raw, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tests fluxTests
	if err := yaml.UnmarshalStrict(raw, &tests); err != nil {
		t.Fatalf("health_test.yaml: %v", err)
	}
	evaluators := map[string]*StatusEvaluator{}
	for _, f := range fluxFiles {
		e, err := NewStatusEvaluator(fluxExprs(t, filepath.Join(dir, f)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		evaluators[f] = e
	}

	objects, _ := filepath.Glob(filepath.Join(root, "docs/argocd/testdata/*.yaml"))
	seen := map[string]bool{}
	for _, tc := range tests.Tests {
		path := filepath.Clean(filepath.Join(dir, tc.InputPath))
		seen[path] = true
		for _, f := range fluxFiles {
			want, ok := tc.Status[f]
			if !ok {
				t.Errorf("%s: no expected status for %s", tc.InputPath, f)
				continue
			}
			name := strings.TrimSuffix(f, ".yaml") + "/" + strings.TrimSuffix(filepath.Base(path), ".yaml")
			t.Run(name, func(t *testing.T) {
				for _, mode := range []struct {
					n               Numbers
					generationCheck bool
				}{{LiveNumbers, true}, {LiveNumbers, false}, {YAMLNumbers, true}, {YAMLNumbers, false}} {
					obj, err := LoadObject(path, mode.n)
					if err != nil {
						t.Fatal(err)
					}
					got, err := fluxOutcome(evaluators[f], obj, mode.generationCheck)
					if got != want {
						t.Errorf("%s, generation check %v: got %s (%v), want %s", mode.n, mode.generationCheck, got, err, want)
					}
					if got == Unknown && (err == nil || !strings.Contains(err.Error(), "no such attribute")) {
						t.Errorf("Unknown without the missing-field error: %v", err)
					}
					if got != Unknown && err != nil {
						t.Errorf("%s with an error: %v", got, err)
					}
				}
			})
		}
		for f := range tc.Status {
			if evaluators[f] == nil {
				t.Errorf("%s: expectation for unknown file %s", tc.InputPath, f)
			}
		}
	}
	for _, o := range objects {
		if !seen[o] {
			t.Errorf("health_test.yaml: no case for %s", filepath.Base(o))
		}
	}
	if len(seen) != len(objects) {
		t.Errorf("health_test.yaml: %d cases, %d objects", len(seen), len(objects))
	}
}

// TestFluxHarnessDetectsMismatch: the harness must tell the outcomes apart and behave like Flux
// on the observedGeneration check, on missing fields and on non-boolean expressions.
func TestFluxHarnessDetectsMismatch(t *testing.T) {
	root := RepoRoot()
	h := fluxExprs(t, filepath.Join(root, "docs/flux", fluxFiles[0]))
	e, err := NewStatusEvaluator(h)
	if err != nil {
		t.Fatal(err)
	}
	load := func(name string) map[string]any {
		obj, err := LoadObject(filepath.Join(root, "docs/argocd/testdata", name), LiveNumbers)
		if err != nil {
			t.Fatal(err)
		}
		return obj
	}
	healthy := load("healthy.yaml")
	if got, err := fluxOutcome(e, healthy, true); got != Current || err != nil {
		t.Fatalf("healthy: %s %v", got, err)
	}
	for _, wrong := range []FluxStatus{InProgress, Failed, Unknown} {
		if got, _ := fluxOutcome(e, healthy, true); got == wrong {
			t.Errorf("healthy reads as %s", wrong)
		}
	}
	// Flux's own check: a newer generation is InProgress before any expression runs, even with
	// expressions that would say Current.
	always, err := NewStatusEvaluator(HealthCheckExprs{Current: "true"})
	if err != nil {
		t.Fatal(err)
	}
	stale := load("spec-changed-not-observed.yaml")
	if got, _ := fluxOutcome(always, stale, true); got != InProgress {
		t.Errorf("observedGeneration check: %s", got)
	}
	if got, _ := fluxOutcome(always, stale, false); got != Current {
		t.Errorf("without the observedGeneration check: %s", got)
	}
	// A missing top-level field is an evaluation error (Flux: Unknown, polled until timeout),
	// and has() on it is one too, as Flux's documentation warns.
	bare := load("no-status.yaml")
	for _, expr := range []string{"status.conditions.size() > 0", "has(status.conditions)"} {
		x, err := NewStatusEvaluator(HealthCheckExprs{Current: expr})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := fluxOutcome(x, bare, true); got != Unknown || err == nil {
			t.Errorf("%s on an object without status: %s %v", expr, got, err)
		}
	}
	// Not a boolean: an error, like Flux's EvaluateBoolean.
	x, err := NewStatusEvaluator(HealthCheckExprs{Current: "metadata.name"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fluxOutcome(x, healthy, true); err == nil {
		t.Error("a string result is accepted as a health status")
	}
	// A syntax error is refused when the Kustomization is read, and current is required.
	if _, err := NewStatusEvaluator(HealthCheckExprs{Current: "status.conditions.exists(c,"}); err == nil {
		t.Error("a syntax error is accepted")
	}
	if _, err := NewStatusEvaluator(HealthCheckExprs{InProgress: "true"}); err == nil {
		t.Error("a health check without current is accepted")
	}
	// The extensions Flux enables are there (ext.Strings).
	y, err := NewStatusEvaluator(HealthCheckExprs{Current: "metadata.name.upperAscii() == 'ORDERS-API'"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fluxOutcome(y, healthy, true); got != Current {
		t.Errorf("ext.Strings: %s %v", got, err)
	}
}
