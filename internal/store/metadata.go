package store

import (
	"encoding/json"
	"fmt"

	"github.com/taskwire/taskwire"
)

// MergeMetadata applies patch to old key by key: a key set to null is
// removed, any other value replaces the old one. A nil or null patch leaves
// old unchanged. The merged object is compact, its keys sorted, its values
// as they were given (<, > and & are not escaped); it must fit in limit
// bytes once every needless escape is dropped too (taskwire.FitJSON), or
// the merge fails with ErrTooLarge. An empty merged object is returned as
// nil.
func MergeMetadata(old, patch json.RawMessage, limit int) (json.RawMessage, error) {
	if len(patch) == 0 || string(patch) == "null" {
		return old, nil
	}
	merged := map[string]json.RawMessage{}
	if len(old) > 0 && string(old) != "null" {
		if err := json.Unmarshal(old, &merged); err != nil {
			return nil, fmt.Errorf("stored metadata: %w", err)
		}
	}
	var changes map[string]json.RawMessage
	if err := json.Unmarshal(patch, &changes); err != nil {
		return nil, fmt.Errorf("metadata patch: %w", err)
	}
	for k, v := range changes {
		if string(v) == "null" {
			delete(merged, k)
			continue
		}
		merged[k] = v
	}
	if len(merged) == 0 {
		return nil, nil
	}
	enc, err := taskwire.MarshalJSON(merged)
	if err != nil {
		return nil, err
	}
	out, ok := taskwire.FitJSON(enc, limit)
	if !ok {
		return nil, fmt.Errorf("merged metadata is over %d bytes: %w", limit, ErrTooLarge)
	}
	return out, nil
}
