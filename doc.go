// Package taskwire holds the wire contract shared by the taskwire server and
// its Go SDK: the Task, the params and results of every JSON-RPC method, the
// event envelope and the error codes. It depends on the standard library only.
//
// Field names are camelCase on the wire. Struct tags named `jsonschema` carry
// the bounds of every param; the server generates its rpc.discover document
// from them and validates every request against that same document, so the
// bounds are written once, here.
package taskwire
