package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/master/cluster"
	"github.com/nodejoin/nodejoin/internal/master/joinservice"
	"github.com/nodejoin/nodejoin/internal/master/registrar"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

// registerFlags are serve's flags of auto-registration.
type registerFlags struct {
	mode           string
	subnets        []string
	pendingTimeout time.Duration
	browse         string
}

func (f *registerFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.mode, "register-mode", string(registrar.Disabled), "auto-registration: `MODE` disabled (keep and list; register what the admin accepts), local-network or anything")
	fs.StringArrayVar(&f.subnets, "subnet", nil, "a `CIDR` local-network mode counts as local besides the interfaces' own subnets; repeatable")
	fs.DurationVar(&f.pendingTimeout, "pending-timeout", 10*time.Minute, "a request whose parent nobody knows is blocked after `D`")
	fs.StringVar(&f.browse, "browse", "auto", "how adverts are browsed: `HOW` auto (avahi if it runs, else the Go mDNS client), avahi, mdns or none")
}

func (f *registerFlags) check() ([]netip.Prefix, error) {
	if _, err := registrar.ParseMode(f.mode); err != nil {
		return nil, problem.Usagef("--register-mode: %v", err)
	}
	var out []netip.Prefix
	for _, s := range f.subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, problem.Usagef("--subnet: %q is not a CIDR prefix (10.0.0.0/24)", s)
		}
		out = append(out, p.Masked())
	}
	if f.pendingTimeout <= 0 {
		return nil, problem.Usagef("--pending-timeout: want a positive duration")
	}
	switch f.browse {
	case "auto", "avahi", "mdns", "none":
	default:
		return nil, problem.Usagef("--browse: %q: want auto, avahi, mdns or none", f.browse)
	}
	return out, nil
}

// start makes the registrar over the slot store's backend and runs it,
// and the browser, until ctx ends or stop is called; stop waits for both.
func (f *registerFlags) start(ctx context.Context, env *cli.Env, store *slotstore.Store, c *cluster.Cluster, audit *joinservice.Audit) (*registrar.Registrar, func(), error) {
	subnets, err := f.check()
	if err != nil {
		return nil, nil, err
	}
	mode, _ := registrar.ParseMode(f.mode)
	g, err := registrar.New(registrar.Options{Backend: store.Backend(), Slots: store, Master: c.Settings.MasterNode,
		Recorded: c.Recorded, ClusterHostKeys: func() []string { return clusterHostKeys(c, env) }, Mode: mode, Subnets: subnets, PendingTimeout: f.pendingTimeout,
		Log: env.Log, Audit: joinservice.RegistrarAudit(audit)})
	if err != nil {
		return nil, nil, err
	}
	if mode == registrar.Anything {
		msg := "auto-registration in mode anything: requests from any address are accepted while an install window is open, a pre-pinned host key or a token admits them"
		cli.PrintWarning(env.Stderr, "join-service", msg)
		audit.Log(joinservice.Event{Event: "mode", Outcome: joinservice.OutcomeOK, Reason: msg})
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { g.Run(ctx) })
	if f.browse != "none" {
		wg.Go(func() {
			if err := registrar.Browse(ctx, g, registrar.BrowseOptions{How: f.browse, Cluster: c.Settings.ClusterName, Log: env.Log}); err != nil && ctx.Err() == nil {
				env.Log.Warn("browsing adverts stopped", "err", err)
			}
		})
	}
	return g, func() { cancel(); wg.Wait() }, nil
}

const requestsUsage = `Usage: join-service requests list|accept NAME|reject NAME|forget NAME|expect NAME SHA256:...|token [flags]
       join-service install-window --for D [flags]

Auto-registration's records (one per machine name, from adverts and direct
requests) over the daemon's root-only admin socket.

  list                 stdout: the mode, the install window, the pre-pinned host
                       keys and every record (state, reason, both fingerprints of a
                       conflict, addresses, how it was accepted)
  accept NAME          register NAME (after its parent); a conflict accepted takes
                       the new host key, whose machine then asks again
  reject NAME          never register NAME (later adverts and requests change nothing)
  forget NAME          delete NAME's record (a rejected name may ask again; a
                       registered node stays in the cluster)
  expect NAME SHA256:... pre-pin NAME's host key: a request proving that key is
                       accepted in local-network and anything modes
  token --ttl D --uses N   a registration token, printed this once: a request that
                       carries it is accepted in local-network and anything modes
  install-window --for D   auto-accept in local-network and anything modes for D
                       from now (kept across restarts; --for 0 closes it)`

// requestsCommands are requests' commands (install-window is a command of
// its own) and how many arguments each takes.
var requestsCommands = map[string]int{"list": 0, "accept": 1, "reject": 1, "forget": 1, "expect": 2, "token": 0, "install-window": 0}

// requestFlags are the flags of requests' commands.
type requestFlags struct {
	common
	ttl, window time.Duration
	uses        int
}

// requestsFlagSet is the flag set of requests' command cmd.
func requestsFlagSet(cmd string, f *requestFlags) *pflag.FlagSet {
	name := "join-service requests " + cmd
	if cmd == "install-window" {
		name = "join-service install-window"
	}
	fs := cli.NewFlagSet(name, requestsUsage, &f.Flags)
	f.register(fs)
	switch cmd {
	case "token":
		fs.DurationVar(&f.ttl, "ttl", time.Hour, "the token admits requests for `D`")
		fs.IntVar(&f.uses, "uses", 1, "the token admits `N` requests")
	case "install-window":
		fs.DurationVar(&f.window, "for", -1, "open the window for `D` (15m, 1h; 0 closes it)")
	}
	return fs
}

func requests(env *cli.Env, cmd string, args []string) error {
	var rf requestFlags
	fs := requestsFlagSet(cmd, &rf)
	f := &rf.common
	if err := cli.Parse(env, fs, &f.Flags, args); err != nil {
		return err
	}
	n, ok := requestsCommands[cmd]
	if !ok {
		return problem.Usagef("requests: unknown command %q: want list, accept, reject, forget, expect or token", cmd)
	}
	if fs.NArg() != n {
		return problem.Usagef("%s: want %d arguments, got %d", cmd, n, fs.NArg())
	}
	if cmd == "install-window" && rf.window < 0 {
		return problem.Usagef("install-window: --for D is required (0 closes the window)")
	}
	for i := range n {
		if i == 0 {
			if err := cluster.CheckName(fs.Arg(0)); err != nil {
				return problem.Usagef("%s: NAME: %v", cmd, err)
			}
		}
	}
	sock, err := f.socketPath()
	if err != nil {
		return err
	}
	cl := joinservice.NewAdminClient(sock)
	ctx := context.Background()
	var out any
	do := func(method, path string, q url.Values, body []byte, v any) error {
		if f.DryRun && method != http.MethodGet {
			out = map[string]any{"dry_run": true, "would": cmd, "args": fs.Args()}
			return nil
		}
		if err := cl.Do(ctx, method, path, q, body, v); err != nil {
			return adminErr(cmd, err)
		}
		out = v
		return nil
	}
	name := url.PathEscape(fs.Arg(0))
	switch cmd {
	case "list":
		err = do(http.MethodGet, joinservice.AdminRequests, nil, nil, &joinservice.RequestsAnswer{})
	case "accept":
		err = do(http.MethodPost, "/admin/v1/requests/"+name+"/accept", nil, nil, &joinservice.RequestView{})
	case "reject":
		err = do(http.MethodPost, "/admin/v1/requests/"+name+"/reject", nil, nil, &joinservice.RequestView{})
	case "forget":
		err = do(http.MethodDelete, "/admin/v1/requests/"+name, nil, nil, &joinservice.RequestView{})
	case "expect":
		body, _ := json.Marshal(joinservice.ExpectRequest{HostKey: fs.Arg(1)})
		err = do(http.MethodPut, "/admin/v1/expect/"+name, nil, body, &map[string]string{})
	case "token":
		err = do(http.MethodPost, joinservice.AdminTokens, url.Values{"ttl": {rf.ttl.String()}, "uses": {strconv.Itoa(rf.uses)}}, nil, &joinservice.TokenAnswer{})
	case "install-window":
		err = do(http.MethodPost, joinservice.AdminInstallWindow, url.Values{"for": {rf.window.String()}}, nil, &joinservice.WindowAnswer{})
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("writing the answer: %w", err)
	}
	return nil
}

// clusterHostKeys are the fingerprints of the master's host keys, which
// Ganeti gives every node it adds.
func clusterHostKeys(c *cluster.Cluster, env *cli.Env) []string {
	keys, err := cluster.ReadHostKeys(c.Config)
	if err != nil {
		env.Log.Warn("reading the cluster's host keys", "err", err)
		return nil
	}
	var out []string
	for _, k := range keys {
		if pub, err := sshkeys.ParsePublicLine(k.Public); err == nil {
			out = append(out, sshkeys.Fingerprint(pub))
		}
	}
	return out
}
