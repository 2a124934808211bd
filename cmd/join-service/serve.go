package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/connlimit"
	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/joinservice"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
)

const serveUsage = `Usage: join-service serve [flags]

Serve the nodes' API over HTTPS with the cluster certificate (server.pem) on
--listen, and the admin API on the root-only unix socket; write one JSON line
per issue, fetch, assignment, report and refusal to the audit log. SIGTERM or
SIGINT stops it cleanly: requests in flight finish.`

type serveFlags struct {
	common
	listen         string
	advertise      string
	store          string
	etcdCA         string
	etcdCert       string
	etcdKey        string
	auditLog       string
	auditStderr    bool
	extraPins      []string
	connsPerClient int
	conns          int
	reg            registerFlags
	callback       callbackFlags // callback.go
}

// serveFlagSet is serve's flag set, its values in f.
func serveFlagSet(f *serveFlags) *pflag.FlagSet {
	fs := cli.NewFlagSet("join-service serve", serveUsage, &f.Flags)
	f.register(fs)
	fs.StringVar(&f.listen, "listen", ":"+strconv.Itoa(joinapi.DefaultPort), "listen on `ADDRESS:PORT`")
	fs.StringVar(&f.advertise, "advertise", "", "the `HOST[:PORT]` that tokens name for nodes to dial (default the master node's name and the --listen port)")
	fs.StringVar(&f.store, "store", "", "the slot store: `etcd://host:port,...[/prefix]` (default the embedded store in <state dir>/join-service)")
	fs.StringVar(&f.etcdCA, "etcd-ca", "", "the etcd members' CA certificate `FILE`")
	fs.StringVar(&f.etcdCert, "etcd-cert", "", "the etcd client certificate `FILE`")
	fs.StringVar(&f.etcdKey, "etcd-key", "", "the etcd client key `FILE`")
	fs.StringVar(&f.auditLog, "audit-log", "", "the audit log `FILE` (default <log dir>/join-service.audit.log; \"none\" for none)")
	fs.BoolVar(&f.auditStderr, "audit-stderr", false, "also write the audit log to standard error")
	fs.StringArrayVar(&f.extraPins, "extra-pin", nil, "another `sha256:HEX` pin that tokens carry (a rotation's next certificate); repeatable")
	fs.IntVar(&f.connsPerClient, "conns-per-client", connlimit.Default.ConnsPerClient, "open connections from one `N` address at most")
	fs.IntVar(&f.conns, "conns", connlimit.Default.Conns, "open connections in all at most `N`")
	f.reg.add(fs)
	f.callback.register(fs)
	return fs
}

func serve(env *cli.Env, args []string) error {
	var f serveFlags
	fs := serveFlagSet(&f)
	if err := cli.RefuseSecretFlag(args, givePrivately); err != nil {
		return err
	}
	if err := cli.Parse(env, fs, &f.Flags, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return problem.Usagef("serve: no arguments are expected, got %q", fs.Arg(0))
	}
	host, portText, err := net.SplitHostPort(f.listen)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil || port < 1 || port > 65535 || (host != "" && net.ParseIP(host) == nil) {
		return problem.Usagef("--listen: %q is not ADDRESS:PORT (an IP address or nothing, and a port)", f.listen)
	}
	if f.connsPerClient < 1 || f.conns < 1 {
		return problem.Usagef("--conns-per-client and --conns: at least 1")
	}
	if _, err := f.reg.check(); err != nil {
		return err
	}
	cbOpts, err := f.callback.options(fs.Changed)
	if err != nil {
		return err
	}
	cfg, err := nodeconf.Load(f.root)
	if err != nil {
		return err
	}
	c, err := cluster.Open(f.root)
	if err != nil {
		return problem.Hint(err, "join-service runs on the master: run cluster-init first")
	}
	advHost, advPort := c.Settings.MasterNode, port
	if f.advertise != "" {
		if advHost, advPort, err = splitAdvertise(f.advertise, port); err != nil {
			return problem.UsageError(err)
		}
	}
	for _, p := range f.extraPins {
		if _, err := joinapi.ParsePin(p); err != nil {
			return problem.Usagef("--extra-pin: %v", err)
		}
	}
	sock, err := f.socketPath()
	if err != nil {
		return err
	}
	if f.DryRun {
		fmt.Fprintf(env.Stdout, "would serve on %s (tokens name %s) with %s, admin socket %s, pin %s\n",
			f.listen, net.JoinHostPort(advHost, strconv.Itoa(advPort)), c.Path(nodeconf.ServerPEM), sock, joinapi.Pin(c.Server.Cert))
		return nil
	}

	var audits []io.Writer
	if f.auditLog != "none" {
		p := f.auditLog
		if p == "" {
			p = cfg.Path(filepath.Join(cfg.LogDir, "join-service.audit.log"))
		}
		af, err := openAudit(p)
		if err != nil {
			return err
		}
		defer af.Close()
		audits = append(audits, af)
	}
	if f.auditStderr {
		audits = append(audits, env.Stderr)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	store, err := slotstore.Open(ctx, slotstore.Config{Store: f.store, Dir: cfg.Path(filepath.Join(cfg.StateDir, "join-service")),
		CAFile: f.etcdCA, CertFile: f.etcdCert, KeyFile: f.etcdKey}, slotstore.Options{})
	if errors.Is(err, slotstore.ErrLocked) {
		return problem.Hint(err, "another join-service serves this master's embedded store: stop it first, or use --store etcd://... for several replicas")
	}
	if err != nil {
		return fmt.Errorf("opening the slot store: %w", err)
	}
	defer func() { _ = store.Close() }() // bbolt fsyncs every commit: nothing is left to flush
	audit := joinservice.NewAudit(audits...)
	reg, regDone, err := f.reg.start(ctx, env, store, c, audit)
	if err != nil {
		return err
	}
	defer regDone()
	svc, err := joinservice.New(joinservice.Options{Store: store, Root: f.root, Host: advHost, Port: advPort,
		ExtraPins: f.extraPins, Audit: audit, Log: env.Log,
		Limits: connlimit.Limits{ConnsPerClient: f.connsPerClient, Conns: f.conns}, Registrar: reg, Callback: cbOpts})
	if err != nil {
		return err
	}
	admin, err := joinservice.ListenAdmin(sock)
	if errors.Is(err, joinservice.ErrRunning) {
		return problem.Hint(err, "stop the running join-service first")
	}
	if err != nil {
		return err
	}
	defer admin.Close()
	api, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	return svc.Serve(ctx, api, admin)
}

// splitAdvertise reads HOST[:PORT] ([V6] in brackets).
func splitAdvertise(s string, port int) (string, int, error) {
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("--advertise: %q: %q is not a port", s, p)
		}
		return h, n, nil
	}
	h := s
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	if net.ParseIP(h) == nil {
		if err := cluster.CheckName(h); err != nil {
			return "", 0, fmt.Errorf("--advertise: %w", err)
		}
	}
	return h, port, nil
}

// openAudit opens the audit log for appending, 0640 (root and its group,
// as /var/log's syslog files), its directory 0750; a looser existing
// file is tightened. It holds slot ids and peers, never secrets.
func openAudit(p string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return nil, fmt.Errorf("creating the audit log's directory: %w", err)
	}
	af, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening the audit log: %w", err)
	}
	if fi, err := af.Stat(); err == nil && fi.Mode().Perm()&0o037 != 0 {
		if err := af.Chmod(0o640); err != nil {
			af.Close()
			return nil, fmt.Errorf("tightening the audit log's mode: %w", err)
		}
	}
	return af, nil
}
