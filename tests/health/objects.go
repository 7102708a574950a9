// Package health runs the Argo CD health check (Lua) and the Flux health check expressions (CEL)
// shipped in docs/argocd and docs/flux with the interpreters those tools use: gopher-lua, driven
// the way Argo CD's util/lua drives it, and cel-go, set up the way Flux's runtime/cel sets it up.
//
// Nothing here imports Argo CD or Flux (their modules pull in half of Kubernetes); the few
// functions that matter are mirrored, each with the upstream function it follows.
package health

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"sigs.k8s.io/yaml"
)

// Numbers says how an object's numbers reach the health check.
type Numbers int

const (
	// LiveNumbers: as the controllers see objects read from the API server: client-go's
	// unstructured JSON decoding turns integers into int64 and other numbers into float64.
	LiveNumbers Numbers = iota
	// YAMLNumbers: as Argo CD's own health test harness (util/lua/health_test.go getObj) reads a
	// testdata file: sigs.k8s.io/yaml into map[string]any, every number a float64.
	YAMLNumbers
)

func (n Numbers) String() string {
	if n == LiveNumbers {
		return "live-int64"
	}
	return "yaml-float64"
}

// RepoRoot is the root of the pvtapi repository (this file is tests/health/objects.go).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// LoadObject reads one Kubernetes object from a YAML file.
func LoadObject(path string, n Numbers) (map[string]any, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if n == YAMLNumbers {
		obj := map[string]any{}
		if err := yaml.Unmarshal(raw, &obj); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return obj, nil
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	obj, ok := liveNumbers(v).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: not an object", path)
	}
	return obj, nil
}

// liveNumbers follows k8s.io/apimachinery/pkg/util/json (convertMapNumbers and friends): a
// json.Number becomes an int64 when it is one, else a float64.
func liveNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = liveNumbers(x)
		}
		return t
	case []any:
		for i, x := range t {
			t[i] = liveNumbers(x)
		}
		return t
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	default:
		return v
	}
}
