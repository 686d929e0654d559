package taskwire

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The enum of events.subscribe's types, which rpc.discover publishes and
// validation applies, lists exactly the event types.
func TestSubscribeTypesEnum(t *testing.T) {
	f, _ := reflect.TypeFor[SubscribeParams]().FieldByName("Types")
	var enum []EventType
	for part := range strings.SplitSeq(f.Tag.Get("jsonschema"), ",") {
		if v, ok := strings.CutPrefix(part, "enum="); ok {
			enum = append(enum, EventType(v))
		}
	}
	if !slices.Equal(enum, EventTypes) {
		t.Errorf("SubscribeParams.Types enum %v, want EventTypes %v", enum, EventTypes)
	}
}
