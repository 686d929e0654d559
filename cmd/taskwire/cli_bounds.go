package main

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// The bounds of a flag that becomes a param are read from the jsonschema
// tag of that param in the root package's params types, the tag the
// server validates every request against: a value out of them is a bad
// command line, found before any call.

// schemaTag returns the values of the keys of the jsonschema tag of the
// member named member of the params type P. A member that is not there
// is a mistake in this package, so it panics.
func schemaTag[P any](member string) map[string][]string {
	t := reflect.TypeFor[P]()
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != member {
			continue
		}
		keys := map[string][]string{}
		for kv := range strings.SplitSeq(f.Tag.Get("jsonschema"), ",") {
			k, v, _ := strings.Cut(kv, "=")
			keys[k] = append(keys[k], v)
		}
		return keys
	}
	panic(fmt.Sprintf("%s has no member %q", t, member))
}

// intBounds returns the minimum and maximum of an integer member of P.
func intBounds[P any](member string) (lo, hi int64) {
	tag := schemaTag[P](member)
	if len(tag["minimum"]) != 1 || len(tag["maximum"]) != 1 {
		panic(fmt.Sprintf("member %q has no minimum and maximum", member))
	}
	lo, errLo := strconv.ParseInt(tag["minimum"][0], 10, 64)
	hi, errHi := strconv.ParseInt(tag["maximum"][0], 10, 64)
	if errLo != nil || errHi != nil {
		panic(fmt.Sprintf("member %q: bounds %v", member, tag))
	}
	return lo, hi
}

// intRange returns the bounds of an integer member of P as "lo..hi", for
// the help of a flag.
func intRange[P any](member string) string {
	lo, hi := intBounds[P](member)
	return fmt.Sprintf("%d..%d", lo, hi)
}

// checkInt refuses the value v of --flag when it is outside the bounds
// of the member of P it is sent as.
func checkInt[P any](flag, member string, v int) error {
	lo, hi := intBounds[P](member)
	if int64(v) < lo || int64(v) > hi {
		return usageError("--%s must be between %d and %d, not %d", flag, lo, hi, v)
	}
	return nil
}

// checkMillis refuses the duration d of --flag when it is outside the
// bounds of the member of P it is sent as, in milliseconds.
func checkMillis[P any](flag, member string, d time.Duration) error {
	lo, hi := intBounds[P](member)
	if d < time.Duration(lo)*time.Millisecond || d > time.Duration(hi)*time.Millisecond {
		return usageError("--%s must be between %s and %s, not %s", flag,
			time.Duration(lo)*time.Millisecond, time.Duration(hi)*time.Millisecond, d)
	}
	return nil
}

// checkEnum refuses the value v of --flag when it is not one of the enum
// of the member of P it is sent as.
func checkEnum[P any](flag, member, v string) error {
	enum := schemaTag[P](member)["enum"]
	for _, e := range enum {
		if v == e {
			return nil
		}
	}
	return usageError("--%s must be %s or %s, not %q", flag,
		strings.Join(enum[:len(enum)-1], ", "), enum[len(enum)-1], v)
}
