package rpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	compiler "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/taskwire/taskwire"
)

// Bounds on the numbers given to the schema validator, which computes with
// exact rationals: 1e-999999 costs it tens of milliseconds, a million
// digits seconds. No param needs more than a float64 holds.
const (
	maxNumberLen      = 100
	maxNumberExponent = 300
)

// member is one member of a params object; val aliases the body.
type member struct {
	name string
	val  []byte
}

// splitMembers returns the members of the object obj, in order.
func splitMembers(obj []byte) ([]member, error) {
	var ms []member
	err := eachMember(obj, func(k, v []byte) error {
		name, err := unquote(k)
		ms = append(ms, member{name, v})
		return err
	})
	return ms, err
}

// instance returns the value the schema validator checks for the params
// object made of ms: members are decoded into any, except those whose
// schema needs less (see check). Unknown members become null (the schema
// rejects them by name) and a member given twice is an error.
func (p *objectPlan) instance(ms []member, path string) (map[string]any, error) {
	inst := make(map[string]any, len(ms))
	for _, m := range ms {
		at := joinPath(path, m.name)
		if _, dup := inst[m.name]; dup {
			return nil, taskwire.InvalidParams("%s: given twice", at)
		}
		var x any
		var err error
		switch f := p.fields[m.name]; {
		case f == nil || f.check == checkNone:
		case f.object != nil && m.val[0] == '{':
			var nested []member
			if nested, err = splitMembers(m.val); err == nil {
				x, err = f.object.instance(nested, at)
			}
		case f.check == checkShape:
			x, err = shapeOf(m.val)
		default:
			x, err = valueOf(m.val)
		}
		if re := (*rangeError)(nil); errors.As(err, &re) {
			return nil, re.at(at)
		}
		if err != nil {
			return nil, err
		}
		inst[m.name] = x
	}
	return inst, nil
}

// shapeOf returns an empty value of the JSON type of v (numbers as they are:
// integer and number are different types).
func shapeOf(v []byte) (any, error) {
	switch v[0] {
	case '{':
		return map[string]any{}, nil
	case '[':
		return []any{}, nil
	case '"':
		return "", nil
	}
	return valueOf(v)
}

// rangeError reports a number too large to validate. Its path is built as
// the error unwinds, innermost segment first, so that decoding a deeply
// nested value builds no path at all.
type rangeError struct {
	number string
	path   []string
}

func (e *rangeError) Error() string { return "number " + e.number + " is out of range" }

// at returns the -32602 of the error inside the member at path.
func (e *rangeError) at(path string) *taskwire.Error {
	var sb strings.Builder
	sb.WriteString(path)
	for _, seg := range slices.Backward(e.path) {
		sb.WriteString(seg)
	}
	return taskwire.InvalidParams("%s: number %s is out of range", sb.String(), clip(e.number))
}

// valueOf decodes the JSON value v as the schema validator takes it.
func valueOf(v []byte) (any, error) {
	switch v[0] {
	case '{':
		m := map[string]any{}
		err := eachMember(v, func(k, e []byte) error {
			name, err := unquote(k)
			if err != nil {
				return err
			}
			m[name], err = valueOf(e)
			return inside(err, "."+name)
		})
		return m, err
	case '[':
		a := []any{}
		err := eachElement(v, func(e []byte) error {
			x, err := valueOf(e)
			a = append(a, x)
			return inside(err, "["+strconv.Itoa(len(a)-1)+"]")
		})
		return a, err
	case '"':
		return unquote(v)
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 'n':
		return nil, nil
	}
	if !numberInBounds(v) {
		return nil, &rangeError{number: string(v)}
	}
	return json.Number(v), nil
}

// inside adds the path segment seg to err when it is a *rangeError.
func inside(err error, seg string) error {
	var re *rangeError
	if errors.As(err, &re) {
		re.path = append(re.path, seg)
	}
	return err
}

// numberInBounds reports whether the number literal n is small enough to
// validate.
func numberInBounds(n []byte) bool {
	if len(n) > maxNumberLen {
		return false
	}
	i := strings.IndexAny(string(n), "eE")
	if i < 0 {
		return true
	}
	exp, err := strconv.Atoi(strings.TrimPrefix(string(n[i+1:]), "+"))
	return err == nil && exp >= -maxNumberExponent && exp <= maxNumberExponent
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// schemaError turns the schema validator's error for instance inst into a
// -32602 whose message names every field at fault.
func schemaError(inst any, err error) *taskwire.Error {
	var verr *compiler.ValidationError
	if !errors.As(err, &verr) {
		return taskwire.InvalidParams("%v", err)
	}
	var msgs []string
	describe(inst, verr, &msgs)
	slices.Sort(msgs)
	return taskwire.InvalidParams("%s", strings.Join(slices.Compact(msgs), "; "))
}

// describe appends the "field: what is wrong" of every leaf of e to msgs.
func describe(inst any, e *compiler.ValidationError, msgs *[]string) {
	at := renderPath(inst, e.InstanceLocation)
	field := func(name string) string {
		if at == "params" {
			return name
		}
		return at + "." + name
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.AllOf, *kind.Reference:
		for _, c := range e.Causes {
			describe(inst, c, msgs)
		}
		return
	case *kind.Required:
		for _, name := range k.Missing {
			*msgs = append(*msgs, field(name)+": is required")
		}
		return
	case *kind.AdditionalProperties:
		for _, name := range k.Properties {
			*msgs = append(*msgs, field(name)+": unknown param")
		}
		return
	case *kind.OneOf, *kind.AnyOf:
		if want, got, ok := typesWanted(e.Causes); ok {
			*msgs = append(*msgs, at+": must be "+typeList(want)+", got "+got)
			return
		}
	}
	*msgs = append(*msgs, at+": "+problem(e.ErrorKind))
}

// typesWanted merges the causes of a failed oneOf or anyOf when each of
// them is a type mismatch: the types wanted and the type got.
func typesWanted(causes []*compiler.ValidationError) (want []string, got string, ok bool) {
	for _, c := range causes {
		t, isType := c.ErrorKind.(*kind.Type)
		if !isType {
			return nil, "", false
		}
		want, got = append(want, t.Want...), t.Got
	}
	return want, got, len(want) > 0
}

// problem says in words what the error kind k found wrong.
func problem(k compiler.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return "must be " + typeList(k.Want) + ", got " + k.Got
	case *kind.MinLength:
		return fmt.Sprintf("must be at least %s long, got %d", count(k.Want, "character"), k.Got)
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %s long, got %d", count(k.Want, "character"), k.Got)
	case *kind.Pattern:
		return "does not match " + k.Want
	case *kind.Minimum:
		return "must be >= " + ratText(k.Want) + ", got " + ratText(k.Got)
	case *kind.Maximum:
		return "must be <= " + ratText(k.Want) + ", got " + ratText(k.Got)
	case *kind.ExclusiveMinimum:
		return "must be > " + ratText(k.Want) + ", got " + ratText(k.Got)
	case *kind.ExclusiveMaximum:
		return "must be < " + ratText(k.Want) + ", got " + ratText(k.Got)
	case *kind.MultipleOf:
		return "must be a multiple of " + ratText(k.Want) + ", got " + ratText(k.Got)
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = fmt.Sprint(w)
		}
		return "must be one of " + strings.Join(want, ", ") + ", got " + clip(fmt.Sprint(k.Got))
	case *kind.Const:
		return fmt.Sprintf("must be %v", k.Want)
	case *kind.Format:
		return "must be a valid " + k.Want
	case *kind.MinItems:
		return fmt.Sprintf("must have at least %s, got %d", count(k.Want, "item"), k.Got)
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %s, got %d", count(k.Want, "item"), k.Got)
	case *kind.UniqueItems:
		return fmt.Sprintf("must not repeat items, but items %d and %d are equal", k.Duplicates[0], k.Duplicates[1])
	case *kind.MinProperties:
		return fmt.Sprintf("must have at least %s, got %d", count(k.Want, "member"), k.Got)
	case *kind.MaxProperties:
		return fmt.Sprintf("must have at most %s, got %d", count(k.Want, "member"), k.Got)
	case *kind.DependentRequired:
		return "requires " + strings.Join(k.Missing, ", ")
	case *kind.OneOf:
		if len(k.Subschemas) > 0 {
			return "matches more than one allowed form"
		}
	case *kind.FalseSchema:
		return "is not allowed"
	}
	return "does not match the schema (" + strings.Join(k.KeywordPath(), "/") + ")"
}

// typeList writes JSON type names as a phrase: "an object or null".
func typeList(types []string) string {
	words := make([]string, len(types))
	for i, t := range types {
		switch t {
		case "null":
			words[i] = t
		case "object", "array", "integer":
			words[i] = "an " + t
		default:
			words[i] = "a " + t
		}
	}
	return strings.Join(words, " or ")
}

// count writes "1 item", "2 items".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// ratText writes r as JSON would: integers below 1e21 in full, other
// numbers in the shortest form.
func ratText(r *big.Rat) string {
	if r.IsInt() && r.Num().BitLen() < 64 {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// renderPath writes the instance location loc as a field path: keys joined
// with dots, array indexes in brackets; "params" for the params object.
func renderPath(inst any, loc []string) string {
	var sb strings.Builder
	for _, tok := range loc {
		if a, ok := inst.([]any); ok {
			sb.WriteString("[" + tok + "]")
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(a) {
				inst = a[i]
			}
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(tok)
		if m, ok := inst.(map[string]any); ok {
			inst = m[tok]
		}
	}
	if sb.Len() == 0 {
		return "params"
	}
	return sb.String()
}
