package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/invopop/jsonschema"
	compiler "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/taskwire/taskwire"
)

// Decoding never copies a value it does not have to. The body is read once
// into one buffer and checked once with json.Valid (and utf8.Valid); then
// the scanner splits the request objects, and each params object, into
// sub-slices of that buffer. A json.RawMessage param (a task's result) is
// handed to the method as such a sub-slice, and the schema validator sees
// it as null, or as an empty value of its JSON type when its schema only
// constrains the type, so a 1 GiB result is neither copied nor decoded.

var (
	jsonNull    = []byte("null")
	emptyObject = []byte("{}")
)

// request is one JSON-RPC request object; its slices alias the body.
type request struct {
	// id is the raw id, nil when absent: the request is a notification.
	id     []byte
	method string
	// params is the raw params object or array, nil when absent.
	params []byte
}

// parseRequest splits the request object b. On error (an Invalid Request)
// req.id is the id to answer with: the request's, when it could be read,
// else nil. checkUTF8 says whether b may hold invalid UTF-8 (the body did).
func parseRequest(b []byte, checkUTF8 bool) (req request, _ *taskwire.Error) {
	if len(b) == 0 || b[0] != '{' {
		return req, invalidRequest("a request must be an object")
	}
	var version, method, id []byte
	var problem *taskwire.Error
	err := eachMember(b, func(k, v []byte) error {
		if checkUTF8 && !utf8.Valid(k) {
			problem = invalidRequest("a member name is not valid UTF-8")
			return nil
		}
		name, err := unquote(k)
		if err != nil {
			return err
		}
		var slot *[]byte
		switch name {
		case "jsonrpc":
			slot = &version
		case "method":
			slot = &method
		case "params":
			slot = &req.params
		case "id":
			slot = &id
		default:
			if problem == nil {
				problem = invalidRequest("unknown member %q", name)
			}
			return nil
		}
		if *slot != nil && problem == nil {
			problem = invalidRequest("member %q given twice", name)
		}
		*slot = v
		return nil
	})
	if err != nil {
		return req, invalidRequest("a request must be an object")
	}
	switch {
	case id == nil:
	case checkUTF8 && !utf8.Valid(id):
		return req, invalidRequest("id is not valid UTF-8")
	case id[0] == '"' || id[0] == '-' || id[0] >= '0' && id[0] <= '9':
		req.id = id
	case string(id) == "null":
		req.id = jsonNull
	default:
		return req, invalidRequest("id must be a string, a number or null")
	}
	if problem != nil {
		return req, problem
	}
	if v, err := unquote(version); err != nil || v != "2.0" {
		return req, invalidRequest(`jsonrpc must be "2.0"`)
	}
	if method == nil || method[0] != '"' {
		return req, invalidRequest("method must be a string")
	}
	if checkUTF8 && !utf8.Valid(method) {
		return req, invalidRequest("method is not valid UTF-8")
	}
	if req.method, err = unquote(method); err != nil {
		return req, invalidRequest("method must be a string")
	}
	if req.params != nil && req.params[0] != '{' && req.params[0] != '[' {
		return req, invalidRequest("params must be an object or an array")
	}
	return req, nil
}

// paramsType is what Register learns of a params type: its schema, as
// published by rpc.discover and compiled for validation, and the plan to
// decode it member by member.
type paramsType struct {
	schema   *jsonschema.Schema
	compiled *compiler.Schema
	plan     *objectPlan
}

// newParamsType describes the struct type t; it panics if t is not a
// struct or its schema does not compile.
func newParamsType(method string, t reflect.Type) *paramsType {
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("rpc: %s: params type %s is not a struct", method, t))
	}
	s := reflectSchema(t)
	compiled, err := compileSchema(method, s)
	if err != nil {
		panic(fmt.Sprintf("rpc: %s: params schema of %s: %v", method, t, err))
	}
	return &paramsType{schema: s, compiled: compiled, plan: planObject(t, s)}
}

// decode checks the params object obj against the schema and decodes it
// into dst, a settable struct value. Every error is a -32602 naming the
// field.
func (pt *paramsType) decode(obj []byte, checkUTF8 bool, dst reflect.Value) error {
	if checkUTF8 {
		if off := invalidUTF8(obj); off >= 0 {
			path, isKey := pathAt(obj, off)
			switch {
			case isKey && path == "":
				return taskwire.InvalidParams("a param name is not valid UTF-8")
			case isKey:
				return taskwire.InvalidParams("%s: a member name is not valid UTF-8", path)
			}
			return taskwire.InvalidParams("%s: is not valid UTF-8", path)
		}
	}
	ms, err := splitMembers(obj)
	if err != nil {
		return taskwire.InvalidParams("params must be an object of named params")
	}
	inst, err := pt.plan.instance(ms, "")
	if err != nil {
		return err
	}
	if err := pt.compiled.Validate(inst); err != nil {
		return schemaError(inst, err)
	}
	return pt.plan.decode(ms, dst, "")
}

// decode stores the members ms of a params object into the struct value
// dst, each with encoding/json except json.RawMessage fields, which get
// the member's sub-slice of the body itself, and struct fields, which are
// decoded member by member too. The members have passed the schema, so
// each has a field.
func (p *objectPlan) decode(ms []member, dst reflect.Value, path string) error {
	for _, m := range ms {
		at := joinPath(path, m.name)
		f := p.fields[m.name]
		if f == nil {
			return taskwire.InvalidParams("%s: unknown param", at)
		}
		fv := dst.Field(f.index)
		switch {
		case f.typ == rawMessageType:
			// The full slice expression keeps an append by the method
			// from writing over the rest of the body.
			fv.SetBytes(m.val[:len(m.val):len(m.val)])
			continue
		case f.object != nil && m.val[0] == '{':
			nested, err := splitMembers(m.val)
			if err != nil {
				return decodeError(at, err)
			}
			if fv.Kind() == reflect.Pointer {
				fv.Set(reflect.New(fv.Type().Elem()))
				fv = fv.Elem()
			}
			if err := f.object.decode(nested, fv, at); err != nil {
				return err
			}
			continue
		}
		if integerKind(f.typ) && bytes.ContainsAny(m.val, ".eE") {
			if err := setInteger(fv, m.val); err != nil {
				return decodeError(at, err)
			}
			continue
		}
		if hasLoneSurrogate(m.val) {
			// encoding/json would make it U+FFFD: two different ids or
			// keys would become one.
			return taskwire.InvalidParams("%s: is not valid UTF-8 (an escaped lone surrogate)", at)
		}
		if err := json.Unmarshal(m.val, fv.Addr().Interface()); err != nil {
			return decodeError(at, err)
		}
	}
	return nil
}

// hasLoneSurrogate reports whether the JSON value v escapes half of a
// UTF-16 surrogate pair without the other half (`"\ud800"`), which
// encodes no character.
func hasLoneSurrogate(v []byte) bool {
	if bytes.IndexByte(v, '\\') < 0 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] != '\\' || i+1 >= len(v) {
			continue
		}
		if v[i+1] != 'u' {
			i++ // an escape of one character, \\ included
			continue
		}
		r, ok := escapedUnit(v, i)
		switch {
		case !ok || !utf16.IsSurrogate(r):
		case r >= 0xDC00:
			return true // a low half with no high half before it
		default:
			next, ok := escapedUnit(v, i+6)
			if !ok || next < 0xDC00 || next > 0xDFFF {
				return true
			}
			i += 6
		}
		i += 5
	}
	return false
}

// escapedUnit reads the UTF-16 unit of the escape \uXXXX at v[i:].
func escapedUnit(v []byte, i int) (rune, bool) {
	if i+6 > len(v) || v[i] != '\\' || v[i+1] != 'u' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(v[i+2:i+6]), 16, 16)
	return rune(n), err == nil
}

// integerKind reports whether t is an integer type or a pointer to one.
func integerKind(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// setInteger stores num, a JSON number with a fraction or an exponent, in
// fv, an integer field or a pointer to one. JSON Schema's integer, which
// the schema has checked, is any number whose fraction is zero (1.0 and
// 1e3 as much as 1); encoding/json refuses those for a Go integer. num is
// within float64's range (the schema's instance refused larger ones), so
// its exact value is small to compute.
func setInteger(fv reflect.Value, num []byte) error {
	t := fv.Type()
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	refuse := &json.UnmarshalTypeError{Value: "number " + string(num), Type: t}
	r, ok := new(big.Rat).SetString(string(num))
	if !ok || !r.IsInt() {
		return refuse
	}
	n, v := r.Num(), reflect.New(t).Elem()
	switch {
	case v.CanInt() && n.IsInt64() && !v.OverflowInt(n.Int64()):
		v.SetInt(n.Int64())
	case v.CanUint() && n.IsUint64() && !v.OverflowUint(n.Uint64()):
		v.SetUint(n.Uint64())
	default:
		return refuse
	}
	if fv.Kind() == reflect.Pointer {
		fv.Set(v.Addr())
		return nil
	}
	fv.Set(v)
	return nil
}

// decodeError is the -32602 of a value the schema accepted but the Go
// field cannot hold (1.0 or 1e30 for an int, a bad timestamp).
func decodeError(path string, err error) *taskwire.Error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return taskwire.InvalidParams("%s: %s cannot be stored as %s", path, clip(typeErr.Value), typeErr.Type)
	}
	return taskwire.InvalidParams("%s: %v", path, err)
}
