package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
)

// HealthStatus is gitops-engine's pkg/health.HealthStatus.
type HealthStatus struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

// InvalidHealthStatus is Argo CD's message for a script that returns an unknown status.
const InvalidHealthStatus = "Lua returned an invalid health status"

// ExecuteHealthLua runs a health script on obj as Argo CD does (util/lua/lua.go: runLua with
// ExecuteHealthLua). useOpenLibs is resource.customizations.useOpenLibs.<group_kind>: false for
// an argocd-cm customization unless that key says true (Argo CD's own test harness uses true).
//
// Mirrored: a state with the standard libraries skipped unless useOpenLibs, then package, base
// and table opened; a 1 s context; the global actionParams (empty for health) and the global obj
// (decodeValue); the script loaded and called with PCall; the value on top of the stack encoded
// by layeh.com/gopher-json (the module Argo CD uses) and decoded into HealthStatus; an empty
// table gives an empty status, an unknown status code gives Unknown. Not mirrored: Argo CD's
// "safe" os library (os.time/os.date, opened by name and preloaded for require); these scripts
// use no os function, and calling one here fails the test.
func ExecuteHealthLua(obj map[string]any, script string, useOpenLibs bool, extra map[string]lua.LGFunction) (*HealthStatus, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !useOpenLibs})
	defer l.Close()
	for _, pair := range []struct {
		n string
		f lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(pair.f), NRet: 0, Protect: true}, lua.LString(pair.n)); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("actionParams", l.CreateTable(0, 0))
	l.SetGlobal("obj", decodeValue(l, obj))
	for name, f := range extra {
		l.SetGlobal(name, l.NewFunction(f))
	}

	fn, err := l.LoadString(script)
	if err == nil {
		l.Push(fn)
		err = l.PCall(0, lua.MultRet, nil)
	}
	var apiErr *lua.ApiError
	if errors.As(err, &apiErr) && apiErr.Type == lua.ApiErrorRun {
		apiErr.StackTrace = ""
		err = apiErr
	}
	if err != nil {
		return nil, err
	}

	ret := l.Get(-1)
	switch ret.Type() {
	case lua.LTTable:
		js, err := luajson.Encode(ret)
		if err != nil {
			return nil, err
		}
		hs := &HealthStatus{}
		if err := json.Unmarshal(js, hs); err != nil {
			typeError := &json.UnmarshalTypeError{Value: "array", Type: reflect.TypeOf(hs)}
			if errors.As(err, &typeError) {
				return &HealthStatus{}, nil
			}
			return nil, err
		}
		switch hs.Status {
		case "Unknown", "Progressing", "Suspended", "Healthy", "Degraded", "Missing":
			return hs, nil
		}
		return &HealthStatus{Status: "Unknown", Message: InvalidHealthStatus}, nil
	case lua.LTNil:
		return &HealthStatus{}, nil
	}
	return nil, fmt.Errorf("expect table output from Lua script, not %s", ret.Type().String())
}

// decodeValue is Argo CD's util/lua decodeValue: maps → tables (string keys), arrays → tables
// with 1-based array parts, numbers → numbers, strings, booleans, null → nil.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch converted := value.(type) {
	case bool:
		return lua.LBool(converted)
	case float64:
		return lua.LNumber(converted)
	case string:
		return lua.LString(converted)
	case json.Number:
		return lua.LString(converted)
	case int:
		return lua.LNumber(converted)
	case int32:
		return lua.LNumber(converted)
	case int64:
		return lua.LNumber(converted)
	case []any:
		arr := l.CreateTable(len(converted), 0)
		for _, item := range converted {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(converted))
		for key, item := range converted {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	case nil:
		return lua.LNil
	}
	return lua.LNil
}
