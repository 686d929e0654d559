package rpc

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/invopop/jsonschema"
)

// openRPCVersion is the version of the OpenRPC specification that
// rpc.discover follows.
const openRPCVersion = "1.2.6"

// The OpenRPC document, as much of it as taskwire fills.
type (
	openRPC struct {
		OpenRPC string          `json:"openrpc"`
		Info    openRPCInfo     `json:"info"`
		Methods []openRPCMethod `json:"methods"`
	}
	openRPCInfo struct {
		Title   string `json:"title"`
		Version string `json:"version"`
	}
	openRPCMethod struct {
		Name           string              `json:"name"`
		Summary        string              `json:"summary,omitempty"`
		ParamStructure string              `json:"paramStructure"`
		Params         []contentDescriptor `json:"params"`
		Result         contentDescriptor   `json:"result"`
	}
	contentDescriptor struct {
		Name     string             `json:"name"`
		Required bool               `json:"required,omitempty"`
		Schema   *jsonschema.Schema `json:"schema"`
	}
)

// discoverDocument returns the OpenRPC document of methods: each param a
// content descriptor with the very schema that validates it. The methods
// keep their order; rpc.discover itself is implied, as OpenRPC reserves
// the rpc. prefix.
func discoverDocument(methods []Method, version string) json.RawMessage {
	doc := openRPC{
		OpenRPC: openRPCVersion,
		Info:    openRPCInfo{Title: "taskwire", Version: version},
		Methods: make([]openRPCMethod, 0, len(methods)),
	}
	for _, m := range methods {
		om := openRPCMethod{
			Name:           m.name,
			Summary:        m.summary,
			ParamStructure: "by-name",
			Params:         []contentDescriptor{},
		}
		ps := m.params.schema
		if ps.Properties != nil {
			for name, s := range ps.Properties.FromOldest() {
				om.Params = append(om.Params, contentDescriptor{
					Name:     name,
					Required: slices.Contains(ps.Required, name),
					Schema:   s,
				})
			}
		}
		result := *m.result
		result.Version = ""
		om.Result = contentDescriptor{Name: "result", Schema: &result}
		doc.Methods = append(doc.Methods, om)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("rpc: rpc.discover document: %v", err))
	}
	return b
}
