package health

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

// The argocd-cm key Argo CD reads the health script from (util/settings: resource.customizations.
// health.<group>_<kind>, the group and kind joined by "_").
const healthKey = "resource.customizations.health.pvtapi.io_PrivateApiConnectivityCheck"

// argoVariants are the folders holding a health.lua, its argocd-cm.yaml and its health_test.yaml.
var argoVariants = []string{"docs/argocd", "docs/argocd/ready-only"}

// argoTests is Argo CD's health_test.yaml (util/lua/health_test.go TestStructure).
type argoTests struct {
	Tests []struct {
		InputPath    string       `json:"inputPath"`
		HealthStatus HealthStatus `json:"healthStatus"`
	} `json:"tests"`
}

func readArgoTests(t *testing.T, dir string) argoTests {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tests argoTests
	if err := yaml.UnmarshalStrict(raw, &tests); err != nil {
		t.Fatalf("%s/health_test.yaml: %v", dir, err)
	}
	if len(tests.Tests) == 0 {
		t.Fatalf("%s/health_test.yaml: no tests", dir)
	}
	return tests
}

// scriptFromConfigMap returns the health script of an argocd-cm.yaml, checking that it needs no
// open libraries (an argocd-cm customization runs without them unless useOpenLibs says so).
func scriptFromConfigMap(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   map[string]any    `json:"metadata"`
		Data       map[string]string `json:"data"`
	}
	if err := yaml.UnmarshalStrict(raw, &cm); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" || cm.Metadata["name"] != "argocd-cm" {
		t.Fatalf("%s: not the argocd-cm ConfigMap: %s %s %v", path, cm.APIVersion, cm.Kind, cm.Metadata["name"])
	}
	for k := range cm.Data {
		if k != healthKey {
			t.Errorf("%s: unexpected key %q (only %q)", path, k, healthKey)
		}
	}
	script, ok := cm.Data[healthKey]
	if !ok {
		t.Fatalf("%s: no %s", path, healthKey)
	}
	return script
}

// checkCase runs script on the object and compares the result with want, exactly.
func checkCase(script, objPath string, n Numbers, openLibs bool, want HealthStatus) error {
	obj, err := LoadObject(objPath, n)
	if err != nil {
		return err
	}
	got, err := ExecuteHealthLua(obj, script, openLibs, nil)
	if err != nil {
		return fmt.Errorf("script failed: %w", err)
	}
	if *got != want {
		return fmt.Errorf("got  %s %q\nwant %s %q", got.Status, got.Message, want.Status, want.Message)
	}
	return nil
}

// TestArgoCDHealth runs every case of each variant's health_test.yaml through the script as the
// argocd-cm holds it, with the object's numbers as the controller sees them and as Argo CD's
// test harness reads them, with and without the Lua standard libraries.
func TestArgoCDHealth(t *testing.T) {
	root := RepoRoot()
	for _, variant := range argoVariants {
		dir := filepath.Join(root, variant)
		file, err := os.ReadFile(filepath.Join(dir, "health.lua"))
		if err != nil {
			t.Fatal(err)
		}
		script := scriptFromConfigMap(t, filepath.Join(dir, "argocd-cm.yaml"))
		if script != string(file) {
			t.Fatalf("%s/argocd-cm.yaml: the script differs from health.lua", variant)
		}
		for _, tc := range readArgoTests(t, dir).Tests {
			for _, n := range []Numbers{LiveNumbers, YAMLNumbers} {
				for _, openLibs := range []bool{false, true} {
					name := fmt.Sprintf("%s/%s/%s/openLibs=%v", variant, strings.TrimSuffix(filepath.Base(tc.InputPath), ".yaml"), n, openLibs)
					t.Run(name, func(t *testing.T) {
						if err := checkCase(script, filepath.Join(dir, tc.InputPath), n, openLibs, tc.HealthStatus); err != nil {
							t.Error(err)
						}
					})
				}
			}
		}
	}
}

// TestArgoCDEveryObjectHasACase: each testdata object is a case of every variant.
func TestArgoCDEveryObjectHasACase(t *testing.T) {
	root := RepoRoot()
	objects, err := filepath.Glob(filepath.Join(root, "docs/argocd/testdata/*.yaml"))
	if err != nil || len(objects) < 8 {
		t.Fatalf("testdata: %d objects, %v", len(objects), err)
	}
	for _, variant := range argoVariants {
		dir := filepath.Join(root, variant)
		seen := map[string]int{}
		for _, tc := range readArgoTests(t, dir).Tests {
			seen[filepath.Clean(filepath.Join(dir, tc.InputPath))]++
		}
		for _, o := range objects {
			if seen[o] != 1 {
				t.Errorf("%s/health_test.yaml: %s is a case %d times (want 1)", variant, filepath.Base(o), seen[o])
			}
		}
		if len(seen) != len(objects) {
			t.Errorf("%s/health_test.yaml: %d inputs, %d objects in testdata", variant, len(seen), len(objects))
		}
	}
}

// TestArgoCDEveryBranchIsCovered instruments each line that sets hs.status or hs.message with a
// counter, runs all cases, and fails for a line no case reaches.
func TestArgoCDEveryBranchIsCovered(t *testing.T) {
	root := RepoRoot()
	setter := regexp.MustCompile(`^(\s*)(hs\.(status|message) = .*)$`)
	for _, variant := range argoVariants {
		dir := filepath.Join(root, variant)
		raw, err := os.ReadFile(filepath.Join(dir, "health.lua"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(raw), "\n")
		sites := map[int]string{}
		for i, line := range lines {
			if m := setter.FindStringSubmatch(line); m != nil {
				lines[i] = fmt.Sprintf("%s__covered(%d) %s", m[1], i+1, m[2])
				sites[i+1] = strings.TrimSpace(line)
			}
		}
		if len(sites) < 6 {
			t.Fatalf("%s/health.lua: only %d hs assignments found", variant, len(sites))
		}
		instrumented := strings.Join(lines, "\n")
		hits := map[int]int{}
		cover := map[string]lua.LGFunction{"__covered": func(l *lua.LState) int {
			hits[l.CheckInt(1)]++
			return 0
		}}
		for _, tc := range readArgoTests(t, dir).Tests {
			obj, err := LoadObject(filepath.Join(dir, tc.InputPath), LiveNumbers)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ExecuteHealthLua(obj, instrumented, false, cover)
			if err != nil || *got != tc.HealthStatus {
				t.Fatalf("%s %s: the instrumented script answers differently: %v %v", variant, tc.InputPath, got, err)
			}
		}
		var missed []int
		for line := range sites {
			if hits[line] == 0 {
				missed = append(missed, line)
			}
		}
		sort.Ints(missed)
		for _, line := range missed {
			t.Errorf("%s/health.lua:%d is reached by no case: %s", variant, line, sites[line])
		}
	}
}

// TestArgoCDHarnessDetectsMismatch: the harness itself must fail on a wrong status or message,
// and must behave like Argo CD on invalid, failing and sandbox-breaking scripts.
func TestArgoCDHarnessDetectsMismatch(t *testing.T) {
	root := RepoRoot()
	script, err := os.ReadFile(filepath.Join(root, "docs/argocd/health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	healthy := filepath.Join(root, "docs/argocd/testdata/healthy.yaml")
	right := HealthStatus{Status: "Healthy", Message: "Healthy: abcde12345 answered 200 through PrivateDns"}
	if err := checkCase(string(script), healthy, LiveNumbers, false, right); err != nil {
		t.Fatalf("the right expectation fails: %v", err)
	}
	for _, wrong := range []HealthStatus{
		{Status: "Degraded", Message: right.Message},
		{Status: "Healthy", Message: right.Message + "."},
		{Status: "Healthy"},
	} {
		if err := checkCase(string(script), healthy, LiveNumbers, false, wrong); err == nil {
			t.Errorf("a wrong expectation %+v passes", wrong)
		}
	}

	obj, err := LoadObject(healthy, LiveNumbers)
	if err != nil {
		t.Fatal(err)
	}
	run := func(s string, openLibs bool) (*HealthStatus, error) { return ExecuteHealthLua(obj, s, openLibs, nil) }

	// An unknown status becomes Unknown, as in Argo CD.
	if got, err := run(`return {status = "Fine", message = "x"}`, false); err != nil || *got != (HealthStatus{"Unknown", InvalidHealthStatus}) {
		t.Errorf("invalid status: %v %v", got, err)
	}
	// An empty table is an empty status; a string is an error.
	if got, err := run(`return {}`, false); err != nil || *got != (HealthStatus{}) {
		t.Errorf("empty table: %v %v", got, err)
	}
	if _, err := run(`return "Healthy"`, false); err == nil {
		t.Error("a string return value is accepted")
	}
	// A runtime error is an error (Argo CD shows it as the resource's health error).
	if _, err := run(`return {status = obj.status.nothing.here}`, false); err == nil {
		t.Error("a runtime error is not reported")
	}
	// The sandbox: without useOpenLibs there is no string library.
	strScript := `return {status = "Healthy", message = string.format("%s", obj.kind)}`
	if _, err := run(strScript, false); err == nil {
		t.Error("string.format works without open libraries: the sandbox is not Argo CD's")
	}
	if got, err := run(strScript, true); err != nil || got.Message != "PrivateApiConnectivityCheck" {
		t.Errorf("string.format with open libraries: %v %v", got, err)
	}
	// The object's arrays are 1-based sequences, its numbers numbers.
	seq := `return {status = "Healthy", message = obj.status.conditions[1].type .. " " .. #obj.status.history .. " " .. obj.metadata.generation}`
	if got, err := run(seq, false); err != nil || got.Message != "Ready 12 1" {
		t.Errorf("conversion: %v %v", got, err)
	}
	// A script that never ends is stopped by the 1 s context.
	if _, err := run(`while true do end`, false); err == nil {
		t.Error("an endless script is not stopped")
	}
}
