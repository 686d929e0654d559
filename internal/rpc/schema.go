package rpc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/invopop/jsonschema"
	compiler "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/taskwire/taskwire"
)

// The params of a method are described once, by the Go type P and its
// `jsonschema` tags. Register reflects P into a JSON Schema (invopop),
// compiles it (santhosh-tekuri) to validate every request, and publishes
// the same schema in rpc.discover.

var (
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	wireTimeType    = reflect.TypeFor[taskwire.Time]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

// reflectSchema returns the JSON Schema of t: every struct inline, unknown
// members rejected, members without omitempty required.
func reflectSchema(t reflect.Type) *jsonschema.Schema {
	r := &jsonschema.Reflector{
		Anonymous:      true,
		DoNotReference: true,
		Mapper: func(t reflect.Type) *jsonschema.Schema {
			if t == wireTimeType {
				return &jsonschema.Schema{Type: "string", Format: "date-time"}
			}
			return nil
		},
	}
	return r.ReflectFromType(t)
}

// compileSchema compiles s with format assertions on.
func compileSchema(name string, s *jsonschema.Schema) (*compiler.Schema, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	doc, err := compiler.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	c := compiler.NewCompiler()
	c.AssertFormat()
	url := "urn:taskwire:params:" + name
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
}

// check says what the schema validator is given for a member.
type check int

const (
	// checkValue: the value itself.
	checkValue check = iota
	// checkNone: null, because the schema accepts any value; a 1 GiB
	// result is never decoded.
	checkNone
	// checkShape: an empty value of the same JSON type ({} for any
	// object), because the schema only constrains the type.
	checkShape
)

// objectPlan says how to validate and decode the members of a JSON object
// into a struct type, one member at a time.
type objectPlan struct {
	fields map[string]*fieldPlan
}

// fieldPlan is one member of an objectPlan.
type fieldPlan struct {
	index int
	typ   reflect.Type
	check check
	// object is set for a struct (or pointer to struct) field: an object
	// value is validated and decoded member by member, so the
	// json.RawMessage fields inside it are not copied either.
	object *objectPlan
}

// planObject returns the plan of struct type t, whose schema is s. It
// panics on what member-by-member decoding cannot do as encoding/json
// would: embedded fields and the ",string" option.
func planObject(t reflect.Type, s *jsonschema.Schema) *objectPlan {
	p := &objectPlan{fields: map[string]*fieldPlan{}}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous {
			panic(fmt.Sprintf("rpc: params type %s: embedded field %s is not supported", t, f.Name))
		}
		if strings.Contains(","+opts+",", ",string,") {
			panic(fmt.Sprintf("rpc: params type %s: field %s: the ,string option is not supported", t, f.Name))
		}
		if name == "" {
			name = f.Name
		}
		var prop *jsonschema.Schema
		if s != nil && s.Properties != nil {
			prop, _ = s.Properties.Get(name)
		}
		fp := &fieldPlan{index: i, typ: f.Type}
		switch st := structType(f.Type); {
		case f.Type == rawMessageType:
			fp.check = checkFor(prop)
		case st != nil && prop != nil && prop.Properties != nil:
			fp.object = planObject(st, prop)
		}
		p.fields[name] = fp
	}
	return p
}

// structType returns the struct type that t is, or points to, when
// encoding/json decodes it field by field; else nil.
func structType(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	return t
}

// checkFor returns what the validator needs to see of a json.RawMessage
// member whose schema is s.
func checkFor(s *jsonschema.Schema) check {
	if s == nil {
		return checkNone
	}
	b, err := json.Marshal(s)
	if err != nil || string(b) == "true" || string(b) == "{}" {
		return checkNone
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil || !typeOnly(m) {
		return checkValue
	}
	return checkShape
}

// typeOnly reports whether schema m asserts nothing but the JSON type of a
// value, with type, oneOf and anyOf.
func typeOnly(m map[string]any) bool {
	for k, v := range m {
		switch k {
		case "type", "title", "description", "default", "examples", "$comment", "deprecated", "readOnly", "writeOnly":
		case "oneOf", "anyOf":
			subs, ok := v.([]any)
			if !ok {
				return false
			}
			for _, sub := range subs {
				sm, ok := sub.(map[string]any)
				if !ok || !typeOnly(sm) {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}
