package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"golang.org/x/crypto/ssh"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/advert"
	"github.com/nodejoin/nodejoin/internal/advert/browse"
	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/node/joinclient"
	"github.com/nodejoin/nodejoin/internal/node/nodeadvert"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/txn"
)

// Node paths of a registration's own state.
const (
	// RegisterSecretFile keeps the request secret across runs, so that a
	// machine that restarts asks again as the same request.
	RegisterSecretFile = "/var/lib/nodejoin/register.secret" //nolint:gosec // G101: a path, not a credential
	// TrustedPinFile records the pin --accept-advertised-pin trusted.
	TrustedPinFile = "/var/lib/nodejoin/register.pin"
	hostPrivateKey = "/etc/ssh/ssh_host_ed25519_key"
)

// registerOpts are node-join's flags of auto-registration.
type registerOpts struct {
	register, discover, wait, acceptAdvertisedPin bool
	cluster, parent, role, browse, tokenFile      string
}

func (r *registerOpts) add(fs *pflag.FlagSet) {
	fs.BoolVar(&r.discover, "discover", false, "find the master by its advert (_nodejoin._tcp), advertise this machine, register, wait, join, then advertise it registered")
	fs.BoolVar(&r.register, "register", false, "ask the master (--server, or --discover) to register this machine instead of presenting a token")
	fs.BoolVar(&r.wait, "wait", false, "with --register: wait until the request is accepted, then fetch the documents and join")
	fs.BoolVar(&r.acceptAdvertisedPin, "accept-advertised-pin", false, "with --discover and no --ca-pin: trust the pin the master's advert carries (print and record it); for an install window only")
	fs.StringVar(&r.cluster, "cluster", "", "the cluster's `NAME` (with --discover: the master advert to take; default: the advert's)")
	fs.StringVar(&r.parent, "parent", "", "the machine that must be registered before this one (`NAME`; default: the master)")
	fs.StringVar(&r.role, "role", advert.RoleNode, "the `ROLE` this machine asks for")
	fs.StringVar(&r.browse, "browse", browse.Auto, "with --discover: browse through `HOW`: auto, avahi or mdns")
	fs.StringVar(&r.tokenFile, "register-token-file", "", "send the registration token in `FILE` (root's, 0600) with the request")
}

func (r *registerOpts) active() bool {
	return r.register || r.discover || r.wait || r.acceptAdvertisedPin || r.tokenFile != ""
}

// check refuses the flags that do not go together.
func (r *registerOpts) check(o *opts) error {
	switch {
	case !r.register && !r.discover:
		return problem.Usagef("--wait, --accept-advertised-pin and --register-token-file go with --register or --discover")
	case o.bootParam || o.tokenFile != "" || o.uuid != "" || o.secretFile != "":
		return problem.Usagef("--register and --discover take no token (--uuid, --secret-file, --boot-param, --token-file): the master issues the slot")
	case r.acceptAdvertisedPin && (!r.discover || len(o.pins) > 0):
		return problem.Usagef("--accept-advertised-pin goes with --discover and without --ca-pin")
	case !r.acceptAdvertisedPin && len(o.pins) == 0:
		return problem.Hint(problem.Usagef("--ca-pin: no pin of the master's certificate: no pin, no join"),
			"give --ca-pin sha256:<hex> (join-service slot add prints it in pins), or, inside an install window, --discover --accept-advertised-pin")
	case !r.discover && o.server == "":
		return problem.Usagef("--register needs --server HOST[:PORT] (or --discover)")
	case !r.discover && r.cluster == "":
		return problem.Usagef("--register needs --cluster NAME (--discover takes it from the master's advert)")
	case o.follow || o.exec != "":
		return problem.Usagef("--follow and --exec go with a token, not with --register")
	}
	for _, p := range o.pins {
		if _, err := joinapi.ParsePin(p); err != nil {
			return problem.Usagef("--ca-pin: %v", err)
		}
	}
	return nil
}

// registration is node-join's result with a registration's facts.
type registration struct {
	*result
	Registration struct {
		Server     string `json:"server"`
		State      string `json:"state"`
		Reason     string `json:"reason,omitempty"`
		TrustedPin string `json:"trusted_pin,omitempty"`
		Advertised bool   `json:"advertised"`
	} `json:"registration"`
}

func runRegister(env *cli.Env, f *cli.Flags, o *opts, r *registerOpts) error {
	if err := r.check(o); err != nil {
		return err
	}
	cfg, err := nodeconf.Load(o.root)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var out registration
	reg := &out.Registration

	// The master: --server with --ca-pin, or its advert.
	tok := joinapi.Token{Pins: o.pins}
	if r.discover && o.server == "" {
		m, err := discover(ctx, env, r, o.pins)
		if err != nil {
			return err
		}
		tok.Host, tok.Port = m.Addr, m.Port
		if r.cluster == "" {
			r.cluster = m.Advert.Cluster
		}
		if r.acceptAdvertisedPin {
			tok.Pins = []string{m.Advert.Pin}
			reg.TrustedPin = m.Advert.Pin
			cli.PrintWarning(env.Stderr, prog, "trusting the pin the master's advert carries, "+m.Advert.Pin+" (--accept-advertised-pin): check it against the master's")
		}
	} else {
		if tok.Host, tok.Port, err = joinclient.SplitServer(o.server); err != nil {
			return err
		}
		if r.cluster == "" {
			return problem.Usagef("--cluster NAME is needed with --server")
		}
	}
	reg.Server = tok.Address()
	hostFP, err := nodeadvert.HostKeyFingerprint(cfg)
	if err != nil {
		return err
	}
	self := advert.Advert{Role: r.role, Cluster: r.cluster, Name: o.nodeName, Parent: r.parent, HostKey: hostFP, State: advert.Ready}
	if err := self.Check(); err != nil {
		return err
	}
	if f.DryRun {
		cl := joinclient.New(tok, env.Log)
		if err := cl.CheckServer(ctx); err != nil {
			return problem.Reject(tok.Address(), "%v; nothing was sent to it", err)
		}
		return printJSON(env, map[string]any{"program": prog, "dry_run": true, "server": tok.Address(), "pinned": true,
			"advert": self.TXT(), "registered": false})
	}
	secret, err := requestSecret(ctx, env, cfg, reg.TrustedPin)
	if err != nil {
		return err
	}
	tok.Secret = secret
	if r.discover {
		if _, err := apply.Run(ctx, cfg, env.Log, nodeadvert.Planner(cfg, &self, 22), false); err != nil {
			return fmt.Errorf("advertising this machine: %w", err)
		}
		reg.Advertised = true
	}
	cl := joinclient.New(tok, env.Log)
	req, err := request(cfg, self, secret, r.tokenFile)
	if err != nil {
		return err
	}
	a, err := cl.Register(ctx, req)
	if err != nil {
		return err
	}
	env.Log.Info("registration requested", "server", tok.Address(), "state", a.State, "reason", a.Reason)
	if !r.wait && !r.discover {
		reg.State, reg.Reason = a.State, a.Reason
		return printJSON(env, map[string]any{"program": prog, "node_name": o.nodeName, "registration": reg})
	}
	if a.State == "registered" {
		// Registered before (the master recorded it; the slot is spent):
		// nothing to fetch again. The advert says so.
		reg.State = a.State
		if reg.Advertised {
			if err := advertiseRegistered(ctx, env, cfg, self); err != nil {
				return err
			}
		}
		return printJSON(env, map[string]any{"program": prog, "node_name": o.nodeName, "status": "registered before", "registration": reg})
	}
	for a.Slot == "" {
		switch a.State {
		case "rejected", "conflict":
			return problem.Reject("registration of "+o.nodeName, "the master's registrar says %s: %s", a.State, a.Reason).
				WithHint("ask the cluster's administrator: join-service requests list on the master shows why")
		}
		if a, err = cl.PollRegistration(ctx, o.nodeName, joinapi.MaxWait); err != nil {
			return err
		}
		env.Log.Info("registration", "state", a.State, "reason", a.Reason)
	}
	reg.State = a.State
	cl.UseSlot(a.Slot)
	res, err := join(ctx, env, cfg, cl, o)
	if err != nil {
		return err
	}
	out.result = res
	if reg.Advertised {
		if err := advertiseRegistered(ctx, env, cfg, self); err != nil {
			return fmt.Errorf("joined, but %w", err)
		}
	}
	reg.State = "registered"
	return printJSON(env, out)
}

// advertiseRegistered changes the machine's advert to registered.
func advertiseRegistered(ctx context.Context, env *cli.Env, cfg *nodeconf.Config, self advert.Advert) error {
	self.State = advert.Registered
	if err := nodeadvert.NextSecond(ctx, cfg); err != nil {
		return err
	}
	if _, err := apply.Run(ctx, cfg, env.Log, nodeadvert.Planner(cfg, &self, 22), false); err != nil {
		return fmt.Errorf("changing the advert to registered failed: %w", err)
	}
	return nil
}

// discover browses until a master's advert of the cluster turns up whose
// pin is one of pins (or, with --accept-advertised-pin, any).
func discover(ctx context.Context, env *cli.Env, r *registerOpts, pins []string) (browse.Found, error) {
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got *browse.Found
	err := browse.Run(bctx, browse.Options{How: r.browse, Log: env.Log}, func(f browse.Found) {
		a := f.Advert
		switch {
		case got != nil, f.Removed, a.Role != advert.RoleMaster:
		case r.cluster != "" && a.Cluster != r.cluster:
			env.Log.Info("a master of another cluster", "cluster", a.Cluster, "address", f.Addr)
		case len(pins) > 0 && !slices.Contains(pins, a.Pin):
			cli.PrintWarning(env.Stderr, prog, fmt.Sprintf("a master advert at %s carries pin %s, which is no --ca-pin: ignored", f.Addr, a.Pin))
		default:
			got = &f
			cancel()
		}
	})
	if got != nil {
		env.Log.Info("found the master", "name", got.Advert.Name, "address", got.Addr, "port", got.Port)
		return *got, nil
	}
	if err == nil {
		err = ctx.Err()
	}
	return browse.Found{}, fmt.Errorf("no master advert (%s) found within --timeout: %w", advert.ServiceType, err)
}

// requestSecret is the request secret kept in RegisterSecretFile, made
// (256 random bits, 0600, through the transaction) on the first run; the
// pin --accept-advertised-pin trusted is recorded beside it.
func requestSecret(ctx context.Context, env *cli.Env, cfg *nodeconf.Config, trustedPin string) (string, error) {
	b, err := os.ReadFile(cfg.Path(RegisterSecretFile))
	switch {
	case err == nil && len(strings.TrimSpace(string(b))) >= 43 && trustedPin == "":
		return strings.TrimSpace(string(b)), nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("reading %s: %w", RegisterSecretFile, err)
	}
	secret := strings.TrimSpace(string(b))
	if len(secret) < 43 {
		r := make([]byte, 32)
		_, _ = rand.Read(r)
		secret = base64.RawURLEncoding.EncodeToString(r)
	}
	_, err = apply.Run(ctx, cfg, env.Log, func() (*apply.Plan, error) {
		uid, gid := os.Geteuid(), os.Getegid()
		dirs, err := txn.MissingDirs(cfg.Root, path.Dir(RegisterSecretFile), 0o755, uid, gid)
		if err != nil {
			return nil, err
		}
		items := append(dirs, txn.Item{NodePath: RegisterSecretFile,
			Data: []byte(secret + "\n"), Mode: 0o600, UID: uid, GID: gid, Secret: true})
		if trustedPin != "" {
			items = append(items, txn.Item{NodePath: TrustedPinFile,
				Data: []byte(trustedPin + "\n"), Mode: 0o644, UID: uid, GID: gid})
		}
		return &apply.Plan{Items: items}, nil
	}, false)
	if err != nil {
		return "", fmt.Errorf("keeping the request secret: %w", err)
	}
	return secret, nil
}

// request is the registration request: the host key, the hash of the
// secret, and the host key's signature of both where the key is readable.
func request(cfg *nodeconf.Config, self advert.Advert, secret, tokenFile string) (joinapi.RegisterRequest, error) {
	pub, err := nodeadvert.HostKey(cfg)
	if err != nil {
		return joinapi.RegisterRequest{}, err
	}
	h := joinapi.SecretHash(secret)
	req := joinapi.RegisterRequest{Name: self.Name, Role: self.Role, Cluster: self.Cluster, Parent: self.Parent,
		HostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))), RequestSecretHash: h}
	if b, err := os.ReadFile(cfg.Path(hostPrivateKey)); err == nil {
		if signer, err := ssh.ParsePrivateKey(b); err == nil && string(signer.PublicKey().Marshal()) == string(pub.Marshal()) {
			if req.Signature, err = joinapi.SignRegister(signer, self.Name, h); err != nil {
				return req, fmt.Errorf("signing the request with the host key: %w", err)
			}
		}
	}
	if tokenFile != "" {
		t, err := joinclient.ReadCredentialFile("--register-token-file", tokenFile)
		if err != nil {
			return req, err
		}
		req.Token = string(t)
	}
	return req, nil
}
