package joindoc

import (
	"io"

	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/schemas"
)

// SsconfUpdate is what the master sends a node daemon (PUT /ssconf) when
// the cluster's ssconf changes, e.g. after nodes joined.
type SsconfUpdate struct {
	ClusterName string            `json:"cluster_name"`
	Ssconf      map[string]string `json:"ssconf"`
}

// DecodeSsconfUpdate reads and checks an ssconf update.
func DecodeSsconfUpdate(r io.Reader) (*SsconfUpdate, error) {
	var d SsconfUpdate
	if err := jsondoc.Decode(r, schemas.Get(schemas.SsconfUpdate), &d); err != nil {
		return nil, err
	}
	return &d, nil
}
