package rpc

import (
	"context"
	"errors"
	"reflect"

	"github.com/invopop/jsonschema"

	"github.com/taskwire/taskwire"
)

// Method is one JSON-RPC method a Server serves: its name, the schema of
// its params and result, and the function that runs it. Make one with
// Register.
type Method struct {
	name    string
	summary string
	params  *paramsType
	result  *jsonschema.Schema
	// call decodes and validates the raw params object and runs the
	// method.
	call func(ctx context.Context, params []byte, checkUTF8 bool) (any, error)
}

// validator is implemented by params types with rules that span fields.
type validator interface{ Validate() error }

// Register returns the method name, which runs fn with its params decoded
// into a *P. P must be a struct: its fields are the named params, its
// `json` tags their names (a field without omitempty is required) and its
// `jsonschema` tags their bounds. Before fn runs, the params are checked
// against that schema and then, if *P has a Validate() error method, by it;
// any failure is a -32602 naming the field, fn is not called. The schemas
// of P and R are those rpc.discover publishes.
//
// A json.RawMessage field of P holds a sub-slice of the request body, not a
// copy: fn must not modify it. Register panics if P is not a struct, uses
// embedded fields or the ",string" option, or its schema does not compile.
func Register[P, R any](name, summary string, fn func(ctx context.Context, p *P) (R, error)) Method {
	pt := newParamsType(name, reflect.TypeFor[P]())
	return Method{
		name:    name,
		summary: summary,
		params:  pt,
		result:  reflectSchema(reflect.TypeFor[R]()),
		call: func(ctx context.Context, params []byte, checkUTF8 bool) (any, error) {
			p := new(P)
			if err := pt.decode(params, checkUTF8, reflect.ValueOf(p).Elem()); err != nil {
				return nil, err
			}
			if err := validate(p); err != nil {
				return nil, err
			}
			return fn(ctx, p)
		},
	}
}

// validate runs the Validate method of params p, when it has one; its
// error is a -32602.
func validate(p any) *taskwire.Error {
	v, ok := p.(validator)
	if !ok {
		return nil
	}
	err := v.Validate()
	if err == nil {
		return nil
	}
	var rpcErr *taskwire.Error
	if errors.As(err, &rpcErr) {
		return rpcErr
	}
	return taskwire.InvalidParams("%v", err)
}
