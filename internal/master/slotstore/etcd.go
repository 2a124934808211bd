package slotstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultEtcdPrefix is the key prefix when the store URL names none.
const DefaultEtcdPrefix = "/nodejoin/slotstore/"

// EtcdConfig says how to reach an etcd cluster.
type EtcdConfig struct {
	Endpoints []string // host:port, one per member
	// Prefix is put before every key, so that several clusters can share
	// one etcd; it ends with "/".
	Prefix string
	// TLS: the CA that signed the members' certificates, and the client's
	// certificate and key when the members ask for one. Any of them set
	// means TLS.
	CAFile, CertFile, KeyFile string
	DialTimeout               time.Duration // 0: 5s
	RequestTimeout            time.Duration // one request, 0: 5s
}

// ParseEtcdURL reads etcd://host:port,host:port[/prefix]. IPv6 hosts are in
// brackets.
func ParseEtcdURL(s string) (EtcdConfig, error) {
	rest, ok := strings.CutPrefix(s, "etcd://")
	if !ok {
		return EtcdConfig{}, fmt.Errorf("%w: store %q: want etcd://host:port,...[/prefix]", ErrInvalid, clip(s))
	}
	hosts, path, _ := strings.Cut(rest, "/")
	cfg := EtcdConfig{Prefix: DefaultEtcdPrefix}
	if path != "" {
		cfg.Prefix = "/" + strings.TrimSuffix(path, "/") + "/"
	}
	for _, h := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" {
			return EtcdConfig{}, fmt.Errorf("%w: store %q: member %q: want host:port", ErrInvalid, clip(s), clip(h))
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return EtcdConfig{}, fmt.Errorf("%w: store %q: member %q: port must be 1 to 65535", ErrInvalid, clip(s), clip(h))
		}
		cfg.Endpoints = append(cfg.Endpoints, h)
	}
	return cfg, nil
}

// Etcd is the backend for several join-service replicas: one etcd cluster,
// commits as etcd transactions comparing mod revisions, expiry by leases.
type Etcd struct {
	cli     *clientv3.Client
	prefix  string
	timeout time.Duration
	name    string
}

// OpenEtcd connects to the cluster and checks that a member answers.
func OpenEtcd(ctx context.Context, cfg EtcdConfig) (*Etcd, error) {
	name := "etcd://" + strings.Join(cfg.Endpoints, ",")
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("%w: %s: no member", ErrInvalid, name)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultEtcdPrefix
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("%w: %s: key prefix %q must end with /", ErrInvalid, name, cfg.Prefix)
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	tc, err := etcdTLS(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	scheme := "http://"
	if tc != nil {
		scheme = "https://"
	}
	eps := make([]string, len(cfg.Endpoints))
	for i, e := range cfg.Endpoints {
		eps[i] = scheme + e
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		TLS:         tc,
		DialTimeout: cfg.DialTimeout,
		// A dead member's connection is noticed in seconds, not minutes.
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		Logger:               zap.NewNop(), // errors reach the caller; the client's own chatter would not say more
		Context:              context.WithoutCancel(ctx),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	e := &Etcd{cli: cli, prefix: cfg.Prefix, timeout: cfg.RequestTimeout, name: name}
	cctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := cli.Get(cctx, cfg.Prefix+slotPrefix, clientv3.WithCountOnly()); err != nil {
		_ = cli.Close() // the error below says more
		return nil, fmt.Errorf("%s: no member answered within %s: %w", name, cfg.DialTimeout, err)
	}
	return e, nil
}

func etcdTLS(cfg EtcdConfig) (*tls.Config, error) {
	if cfg.CAFile == "" && cfg.CertFile == "" && cfg.KeyFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the CA: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", cfg.CAFile)
		}
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, fmt.Errorf("%w: a client certificate needs its key and the reverse", ErrInvalid)
	}
	if cfg.CertFile != "" {
		c, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading the client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

// Close closes the client.
func (e *Etcd) Close() error { return e.cli.Close() }

// fail sorts an error into a refusal (nothing done) and ErrUnavailable (a
// request whose outcome is unknown: no leader, a member gone, a timeout).
func (e *Etcd) fail(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %s: %w", e.name, what, ctx.Err())
	}
	code := codes.Unknown
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	} else if st, ok := status.FromError(err); ok {
		code = st.Code()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		code == codes.Unavailable, code == codes.DeadlineExceeded, code == codes.Canceled,
		code == codes.Unknown, code == codes.Aborted:
		return fmt.Errorf("%w: %s: %s: %w", ErrUnavailable, e.name, what, err)
	}
	return fmt.Errorf("%s: %s: %w", e.name, what, err)
}

// Get implements Backend (a linearizable read).
func (e *Etcd) Get(ctx context.Context, key string) (Item, error) {
	rctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	resp, err := e.cli.Get(rctx, e.prefix+key)
	if err != nil {
		return Item{Key: key}, e.fail(ctx, "reading "+key, err)
	}
	if len(resp.Kvs) == 0 {
		return Item{Key: key}, nil
	}
	kv := resp.Kvs[0]
	return Item{Key: key, Value: kv.Value, Rev: kv.ModRevision}, nil
}

// List implements Backend.
func (e *Etcd) List(ctx context.Context, prefix string) ([]Item, error) {
	rctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	resp, err := e.cli.Get(rctx, e.prefix+prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, e.fail(ctx, "listing "+prefix, err)
	}
	out := make([]Item, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		out[i] = Item{Key: strings.TrimPrefix(string(kv.Key), e.prefix), Value: kv.Value, Rev: kv.ModRevision}
	}
	return out, nil
}

// Commit implements Backend: one transaction comparing each op's mod
// revision (0: absent), so that it applies whole or not at all.
func (e *Etcd) Commit(ctx context.Context, ops ...Op) error {
	rctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	var ttl time.Duration
	for _, op := range ops {
		ttl = max(ttl, op.TTL)
	}
	var lease clientv3.LeaseID
	if ttl > 0 {
		// A lease never used (the commit conflicts) lapses by itself.
		g, err := e.cli.Grant(rctx, int64((ttl+time.Second-1)/time.Second))
		if err != nil {
			return e.fail(ctx, "granting a lease", err)
		}
		lease = g.ID
	}
	var cmps []clientv3.Cmp
	var thens []clientv3.Op
	for _, op := range ops {
		k := e.prefix + op.Key
		if op.Rev != AnyRev {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", op.Rev))
		}
		switch {
		case op.Delete:
			thens = append(thens, clientv3.OpDelete(k))
		case op.TTL > 0:
			thens = append(thens, clientv3.OpPut(k, string(op.Value), clientv3.WithLease(lease)))
		case op.KeepLease:
			thens = append(thens, clientv3.OpPut(k, string(op.Value), clientv3.WithIgnoreLease()))
		default:
			thens = append(thens, clientv3.OpPut(k, string(op.Value)))
		}
	}
	resp, err := e.cli.Txn(rctx).If(cmps...).Then(thens...).Commit()
	if err != nil {
		return e.fail(ctx, "committing "+ops[0].Key, err)
	}
	if !resp.Succeeded {
		if lease != 0 {
			_, _ = e.cli.Revoke(rctx, lease) // else it lapses by itself
		}
		return ErrConflict
	}
	return nil
}

// Watch implements Backend with an etcd watch from the revision after rev.
func (e *Etcd) Watch(ctx context.Context, key string, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range e.cli.Watch(wctx, e.prefix+key, clientv3.WithRev(rev+1)) {
		if resp.CompactRevision != 0 {
			return nil // history compacted: the caller reads the key again
		}
		if err := resp.Err(); err != nil {
			return e.fail(ctx, "watching "+key, err)
		}
		if len(resp.Events) > 0 {
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("%w: %s: watching %s: closed", ErrUnavailable, e.name, key)
}
