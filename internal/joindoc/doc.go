// Package joindoc holds the documents of a node join: the inputs of
// prepare-node-join and node-daemon-setup, with Ganeti's JSON keys, and the
// result both programs print. Decoding checks the schema first, then decodes
// strictly (internal/jsondoc); there is no way to decode without the schema.
package joindoc
