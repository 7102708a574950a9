package health

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
)

// TestTestdataMatchesTheCRD checks every testdata object against the generated CRD's schema
// (crds/pvtapi.io_privateapiconnectivitychecks.yaml): known fields only, required fields present,
// types, enums, lengths, and condition types unique. When the status changes shape, this fails
// and the health checks get a second look.
func TestTestdataMatchesTheCRD(t *testing.T) {
	root := RepoRoot()
	crd, err := LoadObject(filepath.Join(root, "crds/pvtapi.io_privateapiconnectivitychecks.yaml"), LiveNumbers)
	if err != nil {
		t.Fatal(err)
	}
	spec := crd["spec"].(map[string]any)
	group := spec["group"].(string)
	kind := spec["names"].(map[string]any)["kind"].(string)
	version := spec["versions"].([]any)[0].(map[string]any)
	schema := version["schema"].(map[string]any)["openAPIV3Schema"].(map[string]any)
	apiVersion := group + "/" + version["name"].(string)

	objects, _ := filepath.Glob(filepath.Join(root, "docs/argocd/testdata/*.yaml"))
	if len(objects) == 0 {
		t.Fatal("no testdata")
	}
	for _, path := range objects {
		obj, err := LoadObject(path, LiveNumbers)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(path)
		if obj["apiVersion"] != apiVersion || obj["kind"] != kind {
			t.Errorf("%s: %v %v, want %s %s", name, obj["apiVersion"], obj["kind"], apiVersion, kind)
		}
		meta, _ := obj["metadata"].(map[string]any)
		if _, ok := meta["generation"].(int64); !ok || meta["name"] == nil || meta["namespace"] == nil {
			t.Errorf("%s: metadata needs name, namespace and an integer generation", name)
		}
		rest := map[string]any{}
		for k, v := range obj {
			if k != "apiVersion" && k != "kind" && k != "metadata" {
				rest[k] = v
			}
		}
		for _, problem := range validate(schema, rest, "") {
			t.Errorf("%s: %s", name, problem)
		}
	}
}

// validate checks value against a structural OpenAPI v3 schema as Kubernetes uses it.
func validate(s map[string]any, value any, path string) []string {
	if value == nil {
		if s["nullable"] == true {
			return nil
		}
		return []string{path + ": null"}
	}
	var out []string
	bad := func(format string, args ...any) { out = append(out, path+": "+fmt.Sprintf(format, args...)) }
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, value) {
		bad("%v is not one of %v", value, enum)
	}
	switch s["type"] {
	case "object":
		m, ok := value.(map[string]any)
		if !ok {
			bad("not an object")
			return out
		}
		props, _ := s["properties"].(map[string]any)
		if props == nil {
			return out // x-kubernetes-preserve-unknown-fields or a free map
		}
		for _, r := range asStrings(s["required"]) {
			if _, ok := m[r]; !ok {
				bad("%s is required", r)
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if s["x-kubernetes-preserve-unknown-fields"] != true {
					bad("unknown field %s", k)
				}
				continue
			}
			out = append(out, validate(ps, m[k], path+"."+k)...)
		}
	case "array":
		a, ok := value.([]any)
		if !ok {
			bad("not an array")
			return out
		}
		if max, ok := s["maxItems"].(int64); ok && int64(len(a)) > max {
			bad("%d items, at most %d", len(a), max)
		}
		items, _ := s["items"].(map[string]any)
		keys := asStrings(s["x-kubernetes-list-map-keys"])
		seen := map[string]bool{}
		for i, item := range a {
			out = append(out, validate(items, item, fmt.Sprintf("%s[%d]", path, i))...)
			if len(keys) > 0 {
				m, _ := item.(map[string]any)
				key := fmt.Sprint(m[keys[0]])
				if seen[key] {
					bad("duplicate %s %s", keys[0], key)
				}
				seen[key] = true
			}
		}
	case "string":
		str, ok := value.(string)
		if !ok {
			bad("not a string: %v", value)
		} else if max, ok := s["maxLength"].(int64); ok && int64(len([]rune(str))) > max {
			bad("longer than %d", max)
		}
	case "integer":
		if _, ok := value.(int64); !ok {
			bad("not an integer: %v", value)
		}
	case "number":
		switch value.(type) {
		case int64, float64:
		default:
			bad("not a number: %v", value)
		}
	case "boolean":
		if _, ok := value.(bool); !ok {
			bad("not a boolean: %v", value)
		}
	}
	return out
}

func asStrings(v any) []string {
	a, _ := v.([]any)
	out := make([]string, 0, len(a))
	for _, x := range a {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestSchemaCheckerRejects: the schema check must catch an unknown field, a wrong enum value, a
// missing required field and a duplicate condition type.
func TestSchemaCheckerRejects(t *testing.T) {
	root := RepoRoot()
	crd, err := LoadObject(filepath.Join(root, "crds/pvtapi.io_privateapiconnectivitychecks.yaml"), LiveNumbers)
	if err != nil {
		t.Fatal(err)
	}
	schema := crd["spec"].(map[string]any)["versions"].([]any)[0].(map[string]any)["schema"].(map[string]any)["openAPIV3Schema"].(map[string]any)
	raw, err := os.ReadFile(filepath.Join(root, "docs/argocd/testdata/healthy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(m map[string]any){
		"unknown field": func(m map[string]any) { m["status"].(map[string]any)["reachable"] = true },
		"bad enum":      func(m map[string]any) { m["status"].(map[string]any)["rootCause"] = "Fine" },
		"missing required": func(m map[string]any) {
			delete(m["status"].(map[string]any)["conditions"].([]any)[0].(map[string]any), "reason")
		},
		"duplicate type":     func(m map[string]any) { c := m["status"].(map[string]any)["conditions"].([]any); c[1] = c[0] },
		"integer as string":  func(m map[string]any) { m["status"].(map[string]any)["observedGeneration"] = "1" },
		"missing spec field": func(m map[string]any) { delete(m["spec"].(map[string]any), "endpoint") },
	} {
		tmp := filepath.Join(t.TempDir(), "x.yaml")
		if err := os.WriteFile(tmp, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		obj, err := LoadObject(tmp, LiveNumbers)
		if err != nil {
			t.Fatal(err)
		}
		mutate(obj)
		delete(obj, "apiVersion")
		delete(obj, "kind")
		delete(obj, "metadata")
		if problems := validate(schema, obj, ""); len(problems) == 0 {
			t.Errorf("%s: not detected", name)
		}
	}
}
