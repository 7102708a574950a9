package health

import (
	"context"
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
)

// FluxStatus is a kstatus status as Flux's health checks report it.
type FluxStatus string

const (
	Current    FluxStatus = "Current"
	InProgress FluxStatus = "InProgress"
	Failed     FluxStatus = "Failed"
	// Unknown: an expression could not be evaluated. cli-utils' generic status reader turns the
	// error into Unknown (errResourceToResourceStatus) and Flux keeps polling until the
	// Kustomization's timeout, then reports the error.
	Unknown FluxStatus = "Unknown"
)

// FluxExpression mirrors fluxcd/pkg/runtime/cel.Expression as the kustomize-controller's
// StatusEvaluator builds it: NewExpression without options, i.e. the expression is parsed, not
// type-checked, and no variable is declared: the object's top-level fields (apiVersion, kind,
// metadata, spec, status) are the variables, resolved at evaluation.
type FluxExpression struct {
	expr string
	prog cel.Program
}

// NewFluxExpression is fluxcd/pkg/runtime/cel.NewExpression(expr) (no options).
func NewFluxExpression(expr string) (*FluxExpression, error) {
	env, err := cel.NewEnv(
		cel.HomogeneousAggregateLiterals(),
		cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Sets(),
		ext.Encoders(),
	)
	if err != nil {
		return nil, fmt.Errorf("failed to create CEL environment: %w", err)
	}
	ast, issues := env.Parse(expr)
	if issues != nil {
		return nil, fmt.Errorf("failed to parse the CEL expression '%s': %s", expr, issues.String())
	}
	prog, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, fmt.Errorf("failed to create CEL program: %w", err)
	}
	return &FluxExpression{expr: expr, prog: prog}, nil
}

// EvaluateBoolean is runtime/cel.Expression.EvaluateBoolean.
func (e *FluxExpression) EvaluateBoolean(ctx context.Context, data map[string]any) (bool, error) {
	val, _, err := e.prog.ContextEval(ctx, data)
	if err != nil {
		return false, fmt.Errorf("failed to evaluate the CEL expression '%s': %w", e.expr, err)
	}
	result, ok := val.(types.Bool)
	if !ok {
		return false, fmt.Errorf("failed to evaluate CEL expression as boolean: '%s'", e.expr)
	}
	return bool(result), nil
}

// HealthCheckExprs is one entry of a Kustomization's spec.healthCheckExprs.
type HealthCheckExprs struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind,omitempty"`
	Current    string `json:"current"`
	InProgress string `json:"inProgress,omitempty"`
	Failed     string `json:"failed,omitempty"`
}

// StatusEvaluator mirrors fluxcd/pkg/runtime/cel.StatusEvaluator.
type StatusEvaluator struct {
	current, failed, inProgress *FluxExpression
}

// NewStatusEvaluator is runtime/cel.NewStatusEvaluator: current is required, the others optional.
func NewStatusEvaluator(h HealthCheckExprs) (*StatusEvaluator, error) {
	if h.Current == "" {
		return nil, fmt.Errorf("expression Current not specified")
	}
	s := &StatusEvaluator{}
	var err error
	if s.current, err = NewFluxExpression(h.Current); err != nil {
		return nil, fmt.Errorf("failed to parse the expression Current: %w", err)
	}
	if h.Failed != "" {
		if s.failed, err = NewFluxExpression(h.Failed); err != nil {
			return nil, fmt.Errorf("failed to parse the expression Failed: %w", err)
		}
	}
	if h.InProgress != "" {
		if s.inProgress, err = NewFluxExpression(h.InProgress); err != nil {
			return nil, fmt.Errorf("failed to parse the expression InProgress: %w", err)
		}
	}
	return s, nil
}

// Evaluate is runtime/cel.StatusEvaluator.Evaluate (RFC 0009): InProgress when
// status.observedGeneration (an int64) differs from metadata.generation (an int64); then the
// first true of inProgress, failed, current; InProgress when none is. An evaluation error is
// returned (see Unknown). generationCheck=false skips the built-in observedGeneration check, to
// show that the expressions alone give the same answer.
func (s *StatusEvaluator) Evaluate(ctx context.Context, obj map[string]any, generationCheck bool) (FluxStatus, error) {
	if generationCheck {
		if observed, ok := nestedInt64(obj, "status", "observedGeneration"); ok {
			if generation, ok := nestedInt64(obj, "metadata", "generation"); ok && observed != generation {
				return InProgress, nil
			}
		}
	}
	for _, e := range []struct {
		expr   *FluxExpression
		status FluxStatus
	}{
		{s.inProgress, InProgress},
		{s.failed, Failed},
		{s.current, Current},
	} {
		if e.expr == nil {
			continue
		}
		ok, err := e.expr.EvaluateBoolean(ctx, obj)
		if err != nil {
			return Unknown, err
		}
		if ok {
			return e.status, nil
		}
	}
	return InProgress, nil
}

// nestedInt64 is unstructured.NestedInt64 without the error: found only when the value is an
// int64 (a float64 from plain YAML decoding is not, and Flux then skips the check).
func nestedInt64(obj map[string]any, fields ...string) (int64, bool) {
	var cur any = obj
	for _, f := range fields {
		m, ok := cur.(map[string]any)
		if !ok {
			return 0, false
		}
		if cur, ok = m[f]; !ok {
			return 0, false
		}
	}
	i, ok := cur.(int64)
	return i, ok
}
