package cloudconfig

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"go.yaml.in/yaml/v3"
)

// cloudInitSchema is cloud-init 22.4.2's schema of #cloud-config, as Debian
// ships it (cloudinit/NOTICE: Apache-2.0). It is draft-04; 22.4.2 has no
// top-level additionalProperties, so a misspelt top-level key passes it:
// render.go emits only keys the tests name.
//
//go:embed cloudinit/schema-cloud-config-v1.json
var cloudInitSchema []byte

const cloudInitSchemaID = "https://raw.githubusercontent.com/canonical/cloud-init/22.4.2/cloudinit/config/schemas/schema-cloud-config-v1.json"

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft4
	if err := c.AddResource(cloudInitSchemaID, bytes.NewReader(cloudInitSchema)); err != nil {
		return nil, err
	}
	return c.Compile(cloudInitSchemaID)
})

// Validate checks user-data against cloud-init's schema as cloud-init
// schema --config-file does: the "#cloud-config" header, YAML, then the
// schema. Each problem is a line "pointer: message".
func Validate(userData []byte) error {
	if !bytes.HasPrefix(userData, []byte("#cloud-config\n")) {
		return errors.New("the user-data does not start with #cloud-config")
	}
	var doc any
	if err := yaml.Unmarshal(userData, &doc); err != nil {
		return fmt.Errorf("the user-data is not YAML: %w", err)
	}
	// The validator wants JSON's types: a round trip through encoding/json.
	j, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("the user-data's YAML has no JSON form: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	s, err := compiled()
	if err != nil {
		return fmt.Errorf("compiling cloud-init's schema: %w", err)
	}
	if err := s.Validate(v); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return err
		}
		var lines []string
		var walk func(e *jsonschema.ValidationError)
		walk = func(e *jsonschema.ValidationError) {
			if len(e.Causes) == 0 {
				lines = append(lines, e.InstanceLocation+": "+e.Message)
			}
			for _, c := range e.Causes {
				walk(c)
			}
		}
		walk(ve)
		sort.Strings(lines)
		return errors.New(strings.Join(lines, "\n"))
	}
	return nil
}
