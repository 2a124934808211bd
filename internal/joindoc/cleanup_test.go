package joindoc

import (
	"bytes"
	"errors"
	"testing"

	"github.com/nodejoin/nodejoin/internal/problem"
)

func FuzzDecodeCleanup(f *testing.F) {
	f.Add([]byte(`{"cluster_name": "c1.example.org"}`))
	f.Add([]byte(`{"cluster_name": "c1.example.org", "force": true}`))
	f.Add([]byte(`{"cluster_name": "bad name"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := DecodeCleanup(bytes.NewReader(data))
		var rej *problem.RejectedError
		if err != nil && !errors.As(err, &rej) {
			t.Fatalf("not a rejection: %v", err)
		}
		if err == nil && d.ClusterName == "" {
			t.Fatal("accepted without a cluster name")
		}
	})
}
