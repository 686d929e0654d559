package rpc

import (
	"bytes"

	"github.com/taskwire/taskwire"
)

// MaxDepth is how deeply the value of one param may nest objects and
// arrays: {"a":{"b":1}} is 2 levels. Deeper values (which no task needs,
// and which some JSON decoders cannot read back) are refused with -32602
// naming the param.
const MaxDepth = 64

// checkDepth refuses params whose value nests deeper than MaxDepth. params
// is a valid JSON object.
func checkDepth(params []byte) *taskwire.Error {
	var tooDeep *taskwire.Error
	_ = eachMember(params, func(key, val []byte) error {
		if depthOver(val, MaxDepth) {
			tooDeep = taskwire.InvalidParams("%s: nested deeper than %d levels of objects and arrays",
				bytes.Trim(key, `"`), MaxDepth)
			return errSyntax // stop
		}
		return nil
	})
	return tooDeep
}

// depthOver reports whether the valid JSON value v nests objects and
// arrays more than limit levels deep. Strings are skipped whole, so a
// large string result costs one search for its closing quote.
func depthOver(v []byte, limit int) bool {
	depth := 0
	for j := 0; j < len(v); {
		switch v[j] {
		case '"':
			end, err := stringEnd(v, j)
			if err != nil {
				return false
			}
			j = end
			continue
		case '{', '[':
			if depth++; depth > limit {
				return true
			}
		case '}', ']':
			depth--
		}
		j++
	}
	return false
}
