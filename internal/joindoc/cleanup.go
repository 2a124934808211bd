package joindoc

import (
	"io"

	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/schemas"
)

// Cleanup is node-cleanup's document: the cluster the node leaves.
type Cleanup struct {
	ClusterName string `json:"cluster_name"`
}

// DecodeCleanup reads and checks node-cleanup's document.
func DecodeCleanup(r io.Reader) (*Cleanup, error) {
	var d Cleanup
	if err := jsondoc.Decode(r, schemas.Get(schemas.NodeCleanup), &d); err != nil {
		return nil, err
	}
	return &d, nil
}
