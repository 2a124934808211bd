package slotstore

import (
	"context"
	"strings"
)

// Config names a store as join-service's flags do.
type Config struct {
	// Store is "" for the embedded store in Dir, or
	// etcd://host:port,...[/prefix] for an etcd cluster.
	Store string
	Dir   string
	// The etcd client's TLS files.
	CAFile, CertFile, KeyFile string
}

// Open opens the store that c names.
func Open(ctx context.Context, c Config, o Options) (*Store, error) {
	if c.Store == "" || !strings.HasPrefix(c.Store, "etcd:") {
		if c.Store != "" {
			_, err := ParseEtcdURL(c.Store) // says what is wrong with it
			return nil, err
		}
		b, err := OpenBolt(c.Dir)
		if err != nil {
			return nil, err
		}
		return New(b, o), nil
	}
	ec, err := ParseEtcdURL(c.Store)
	if err != nil {
		return nil, err
	}
	ec.CAFile, ec.CertFile, ec.KeyFile = c.CAFile, c.CertFile, c.KeyFile
	b, err := OpenEtcd(ctx, ec)
	if err != nil {
		return nil, err
	}
	return New(b, o), nil
}
