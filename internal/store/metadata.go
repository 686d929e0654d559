package store

import (
	"encoding/json"
	"fmt"
)

// MergeMetadata applies patch to old key by key: a key set to null is
// removed, any other value replaces the old one. A nil or null patch leaves
// old unchanged. The merged object must fit in limit bytes (ErrTooLarge); an
// empty merged object is returned as nil.
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
	out, err := json.Marshal(merged)
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, fmt.Errorf("metadata is %d bytes, over %d: %w", len(out), limit, ErrTooLarge)
	}
	return out, nil
}
