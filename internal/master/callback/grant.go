package callback

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/daemon"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/master/callbackstate"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
	"github.com/nodejoin/nodejoin/internal/txn"
)

// Options are callback-grant's settings.
type Options struct {
	User                string // the restricted account
	First, Last         int    // the port range
	ClientAliveInterval int    // seconds; sshd reaps a dead node's session after Interval × CountMax
	ClientAliveCountMax int
	// UserAdd and UserDel make and remove the account; the name is appended.
	UserAdd, UserDel daemon.Command
	// Pull is join-service's grant (join-service(8), "The machine
	// callback"): a node's first key wins (another is ErrKeyTaken), a slot
	// grants one node, and only the keys file and the record change: the
	// account and sshd's block must be there already (ErrNotEnabled), as
	// callback-grant puts them, so that a network daemon runs no useradd
	// and no sshd reload.
	Pull bool
}

// Refusals of a pull grant.
var (
	ErrKeyTaken   = errors.New("callback key taken")
	ErrNotEnabled = errors.New("the machine callback is not set up on this master")
)

// DefaultOptions are the defaults of callback-grant's flags.
func DefaultOptions() Options {
	return Options{User: "nodejoin-callback", First: 22000, Last: 22999, ClientAliveInterval: 15, ClientAliveCountMax: 3,
		// "*", not useradd's "!": with UsePAM no, sshd refuses every login,
		// keys included, to an account whose password field starts with "!"
		// (auth.c, LOCKED_PASSWD_PREFIX); "*" matches no password either.
		UserAdd: daemon.Builtin("useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/usr/sbin/nologin", "--password", "*", "--comment", "nodejoin machine callback"),
		UserDel: daemon.Builtin("userdel")}
}

// Files callback-grant writes, as node paths under the SSH config dir.
const (
	KeysFile = "nodejoin-callback.authorized_keys"
	DropIn   = "sshd_config.d/nodejoin-callback.conf"
	begin    = "# BEGIN nodejoin callback-grant: the machine callback's account (callback-grant(8))\n"
	end      = "# END nodejoin callback-grant\n"
)

// Request is callback-grant's input.
type Request struct {
	Node      string `json:"node"`
	PublicKey string `json:"public_key"`
	Port      any    `json:"port,omitempty"` // "any" or a number (the schema checked)
	// Slot is the join-service slot asking (Options.Pull); not read from
	// callback-grant's input.
	Slot string `json:"-"`
}

// Result is callback-grant's output.
type Result struct {
	joindoc.Result
	Node string `json:"node"`
	Port int    `json:"port,omitempty"`
	User string `json:"user"`
	// UserCreated and UserRemoved say what happened to the account.
	UserCreated bool `json:"user_created,omitempty"`
	UserRemoved bool `json:"user_removed,omitempty"`
}

// CheckKey checks a callback public key line and returns it as "type base64".
func CheckKey(line string) (string, error) {
	pub, err := sshkeys.ParsePublicLine(line)
	if err != nil {
		return "", err
	}
	f := strings.Fields(line)
	if f[0] != pub.Type() {
		return "", errors.New("the line has authorized_keys options; callback-grant writes its own")
	}
	kind, err := sshkeys.KindOf(pub)
	if err != nil {
		return "", err
	}
	if kind == sshkeys.DSA {
		return "", errors.New("a dsa key is not accepted; use ed25519")
	}
	if err := sshkeys.CheckBits(kind, sshkeys.Bits(pub)); err != nil {
		return "", err
	}
	return f[0] + " " + f[1], nil
}

// Grant gives req.Node its port. The planner runs under nodejoin's lock
// (apply.Run plans again once it holds it), so two grants never take the
// same port.
func Grant(ctx context.Context, cfg *nodeconf.Config, log *slog.Logger, o Options, req *Request, dryRun bool) (*Result, error) {
	key, err := CheckKey(req.PublicKey)
	if err != nil {
		return nil, problem.Reject("/public_key", "%v", err)
	}
	want := 0
	if n, ok := req.Port.(float64); ok {
		want = int(n)
	} else if n, ok := req.Port.(interface{ Int64() (int64, error) }); ok {
		v, _ := n.Int64()
		want = int(v)
	}
	if want != 0 && (want < o.First || want > o.Last) {
		return nil, problem.Reject("/port", "%d is outside the callback port range %d-%d", want, o.First, o.Last).
			WithHint("pass \"any\", or a port of the range (callback-grant --port-range)")
	}
	out := &Result{Node: req.Node, User: o.User}
	exists, err := cfg.HasUser(o.User)
	if err != nil {
		return nil, err
	}
	if o.Pull && !exists {
		return nil, fmt.Errorf("%w: no account %s (callback-grant makes it)", ErrNotEnabled, o.User)
	}
	planner := func() (*apply.Plan, error) {
		st, err := callbackstate.Read(cfg)
		if err != nil {
			return nil, err
		}
		if err := checkUser(st, o); err != nil {
			return nil, err
		}
		st.User = o.User
		if st.Lookup(req.Node) == nil && !st.Active() {
			st.UserCreated = !exists
		}
		if o.Pull {
			if err := pullAllowed(st, req.Node, req.Slot, key); err != nil {
				return nil, err
			}
		}
		port, err := allocate(st, o, req.Node, key, want)
		if err != nil {
			return nil, err
		}
		if g := st.Lookup(req.Node); g != nil && g.Slot == "" {
			g.Slot = req.Slot
		}
		out.Port = port
		p, err := plan(cfg, o, st)
		if err == nil && o.Pull && len(p.Steps) > 0 {
			// Only callback-grant changes sshd's configuration: a block in
			// place is kept as it is (its ClientAlive settings are
			// callback-grant's), a missing one is a refusal.
			if !blockInPlace(cfg, o.User) {
				return nil, fmt.Errorf("%w: sshd's Match block for %s is not in place (callback-grant --enable puts it)", ErrNotEnabled, o.User)
			}
			p.Items, p.Steps = withoutSSHD(cfg, p.Items), nil
		}
		return p, err
	}
	if !exists && !dryRun {
		// Made before the files, so that sshd -t and the first login find
		// it; taken away again if the files cannot be put in place.
		if err := daemon.Run(ctx, log, o.UserAdd.With(o.User)); err != nil {
			// Another grant may have made it meanwhile.
			if again, _ := cfg.HasUser(o.User); !again {
				return nil, fmt.Errorf("creating the callback user %s: %w", o.User, err)
			}
			exists = true
		} else {
			out.UserCreated = true
		}
	}
	return applyWithUser(ctx, cfg, log, o, planner, dryRun, out)
}

// Revoke takes node's grant away: its key line and port record; with the
// last grant, the sshd configuration, the keys file, the record and the
// account if callback-grant made it.
func Revoke(ctx context.Context, cfg *nodeconf.Config, log *slog.Logger, o Options, node string, dryRun bool) (*Result, error) {
	out := &Result{Node: node, User: o.User}
	removeUser := false
	planner := func() (*apply.Plan, error) {
		st, err := callbackstate.Read(cfg)
		if err != nil {
			return nil, err
		}
		if st.User != "" {
			out.User = st.User
		}
		var kept []callbackstate.Record
		for _, g := range st.Grants {
			if g.Node == node {
				out.Port = g.Port
			} else {
				kept = append(kept, g)
			}
		}
		removeUser = len(st.Grants) > 0 && len(kept) == 0 && st.UserCreated && !st.Enabled
		st.Grants = kept
		return plan(cfg, o, st)
	}
	res, err := apply.Run(ctx, cfg, log, planner, dryRun)
	if err != nil {
		return nil, err
	}
	out.Result = res
	if out.Port == 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("node %s has no callback grant; nothing to revoke", node))
		out.Result = res
	}
	if removeUser && !dryRun {
		if err := daemon.Run(ctx, log, o.UserDel.With(out.User)); err != nil {
			return nil, fmt.Errorf("removing the callback user %s: %w", out.User, err)
		}
		out.UserRemoved, out.Changed = true, true
	}
	return out, nil
}

// pullAllowed refuses a pull grant that would change another's: the
// node's grant with another key, or a second node for one slot.
func pullAllowed(st *callbackstate.State, node, slot, key string) error {
	for _, g := range st.Grants {
		switch {
		case g.Node == node && g.PublicKey != key:
			return fmt.Errorf("%w: node %s has a callback grant with another key", ErrKeyTaken, node)
		case slot != "" && g.Slot == slot && g.Node != node:
			return fmt.Errorf("%w: the slot has a callback grant for node %s", ErrKeyTaken, g.Node)
		}
	}
	return nil
}

func checkUser(st *callbackstate.State, o Options) error {
	if st.User != "" && st.User != o.User && len(st.Grants) > 0 {
		return problem.Reject("--user", "the callback user is %s, recorded with %d grants, not %s", st.User, len(st.Grants), o.User).
			WithHint("revoke every grant before changing the user")
	}
	return nil
}

// allocate records node's grant in st and returns its port: the port it
// holds, else the one asked for, else the lowest free one of the range.
func allocate(st *callbackstate.State, o Options, node, key string, want int) (int, error) {
	taken := map[int]string{}
	for _, g := range st.Grants {
		taken[g.Port] = g.Node
		if g.Node != node && g.PublicKey == key {
			return 0, problem.Reject("/public_key", "the key is node %s's callback key; each node has its own", g.Node)
		}
	}
	if g := st.Lookup(node); g != nil {
		if want != 0 && want != g.Port {
			return 0, problem.Reject("/port", "node %s holds port %d", node, g.Port).
				WithHint("revoke its grant first (callback-grant --revoke " + node + ")")
		}
		g.PublicKey = key
		return g.Port, nil
	}
	if want != 0 {
		if other, ok := taken[want]; ok {
			return 0, problem.Reject("/port", "port %d is granted to node %s", want, other)
		}
	} else {
		for p := o.First; p <= o.Last && want == 0; p++ {
			if _, ok := taken[p]; !ok {
				want = p
			}
		}
		if want == 0 {
			return 0, problem.Reject("/port", "every port of the range %d-%d is granted", o.First, o.Last).
				WithHint("widen the range with --port-range, or revoke a grant")
		}
	}
	st.Grants = append(st.Grants, callbackstate.Record{Node: node, Port: want, PublicKey: key})
	return want, nil
}

// plan is the master's files for the grants of st: none at all when it
// has none, so the last revoke leaves the files as before the first grant.
func plan(cfg *nodeconf.Config, o Options, st *callbackstate.State) (*apply.Plan, error) {
	uid, gid := os.Geteuid(), os.Getegid()
	file := func(np string, data []byte, mode fs.FileMode) txn.Item {
		return txn.Item{NodePath: np, Data: data, Mode: mode, UID: uid, GID: gid, Remove: data == nil}
	}
	keys := filepath.Join(cfg.SSHConfigDir, KeysFile)
	sshdPath, sshdOld, sshdNew, err := sshdFile(cfg, o, st, keys)
	if err != nil {
		return nil, err
	}
	var keyData, stateData []byte
	if st.Active() {
		var b strings.Builder
		for _, g := range st.Grants {
			fmt.Fprintf(&b, "restrict,port-forwarding,permitlisten=\"localhost:%d\",command=\"/bin/false\" %s callback:%s\n", g.Port, g.PublicKey, g.Node)
		}
		keyData, stateData = []byte(b.String()), st.Bytes()
	}
	items := []txn.Item{file(keys, keyData, 0o644)}
	sshd := file(sshdPath, sshdNew, 0o644)
	if sshdNew != nil && sshdOld != nil {
		sshd.KeepOwner = true
		if fi, err := os.Stat(cfg.Path(sshdPath)); err == nil {
			sshd.Mode = fi.Mode().Perm()
		}
	}
	items = append(items, sshd, file(callbackstate.Path(cfg), stateData, 0o644))
	p := &apply.Plan{Items: items}
	if string(sshdOld) != string(sshdNew) {
		// sshd reads authorized_keys at each login; only its configuration
		// needs the check and the reload.
		p.Steps = []apply.Step{{Daemon: "sshd", Check: cfg.SSHDCheckCommand, Restart: cfg.SSHDRestartCommand}}
	}
	return p, nil
}

// sshdFile returns where the Match block goes, and that file's content now
// and as wanted (nil: absent). A drop-in in sshd_config.d where
// sshd_config includes it (Debian's does), else a marked block at the end
// of sshd_config: a Match block lasts to the end of its file.
func sshdFile(cfg *nodeconf.Config, o Options, st *callbackstate.State, keys string) (path string, old, want []byte, err error) {
	main := filepath.Join(cfg.SSHConfigDir, "sshd_config")
	mainData, err := os.ReadFile(cfg.Path(main))
	if err != nil {
		return "", nil, nil, fmt.Errorf("reading %s: %w", main, err)
	}
	block := ""
	if st.Active() {
		block = matchBlock(o, st.User, keys)
	}
	dropIn := filepath.Join(cfg.SSHConfigDir, DropIn)
	if includesDropIns(mainData, cfg.SSHConfigDir) && !strings.Contains(string(mainData), begin) {
		if fi, err := os.Stat(cfg.Path(filepath.Dir(dropIn))); err == nil && fi.IsDir() {
			old, err := os.ReadFile(cfg.Path(dropIn))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return "", nil, nil, fmt.Errorf("reading %s: %w", dropIn, err)
			}
			if block == "" {
				return dropIn, old, nil, nil
			}
			return dropIn, old, []byte(block), nil
		}
	}
	s := string(mainData)
	if i := strings.Index(s, begin); i >= 0 {
		j := strings.Index(s[i:], end)
		if j < 0 {
			return "", nil, nil, problem.Reject(main, "the callback block has no end marker %q", strings.TrimSpace(end))
		}
		s = s[:i] + s[i+j+len(end):]
		if st.NewlineAdded && block == "" {
			s = strings.TrimSuffix(s, "\n")
		}
	} else if block != "" && s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
		st.NewlineAdded = true
	}
	if block != "" {
		s += block
	}
	return main, mainData, []byte(s), nil
}

// matchBlock restricts the callback account to remote forwards on
// localhost (each key's permitlisten names its one port); it opens no
// session (MaxSessions 0: no shell, no command), no local forward, no
// agent, X11, tunnel or socket forward, and sshd reaps a dead node's
// session, which would hold its port, after the ClientAlive probes.
func matchBlock(o Options, user, keys string) string {
	lines := []string{
		"Match User " + user,
		"AuthorizedKeysFile " + keys,
		"AuthenticationMethods publickey",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"AllowTcpForwarding remote",
		"PermitListen localhost:*",
		"PermitOpen none",
		"GatewayPorts no",
		"AllowAgentForwarding no",
		"AllowStreamLocalForwarding no",
		"X11Forwarding no",
		"PermitTTY no",
		"PermitTunnel no",
		"PermitUserRC no",
		"MaxSessions 0",
		"ForceCommand /bin/false",
		"ClientAliveInterval " + strconv.Itoa(o.ClientAliveInterval),
		"ClientAliveCountMax " + strconv.Itoa(o.ClientAliveCountMax),
	}
	return begin + lines[0] + "\n\t" + strings.Join(lines[1:], "\n\t") + "\n" + end
}

// includesDropIns says whether sshd_config has an Include of
// sshd_config.d/*.conf (absolute, or relative to the SSH config dir, as
// sshd resolves it) before any Match.
func includesDropIns(data []byte, dir string) bool {
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToLower(f[0]) {
		case "match":
			return false
		case "include":
			for _, pat := range f[1:] {
				if pat == "sshd_config.d/*.conf" || pat == filepath.Join(dir, "sshd_config.d/*.conf") {
					return true
				}
			}
		}
	}
	return false
}

// Enable puts the account and sshd's block in place without a grant
// (callback-grant --enable), so that join-service can grant nodes
// (Options.Pull) by writing the keys file and the record only; they stay
// until Disable and the last revoke.
func Enable(ctx context.Context, cfg *nodeconf.Config, log *slog.Logger, o Options, dryRun bool) (*Result, error) {
	out := &Result{User: o.User}
	exists, err := cfg.HasUser(o.User)
	if err != nil {
		return nil, err
	}
	planner := func() (*apply.Plan, error) {
		st, err := callbackstate.Read(cfg)
		if err != nil {
			return nil, err
		}
		if err := checkUser(st, o); err != nil {
			return nil, err
		}
		if !st.Active() {
			st.UserCreated = !exists
		}
		st.User, st.Enabled = o.User, true
		return plan(cfg, o, st)
	}
	if !exists && !dryRun {
		if err := daemon.Run(ctx, log, o.UserAdd.With(o.User)); err != nil {
			return nil, fmt.Errorf("creating the callback user %s: %w", o.User, err)
		}
		out.UserCreated = true
	}
	return applyWithUser(ctx, cfg, log, o, planner, dryRun, out)
}

// applyWithUser runs planner and fills out from its result; if it fails,
// the callback account this run created (out.UserCreated) goes again.
func applyWithUser(ctx context.Context, cfg *nodeconf.Config, log *slog.Logger, o Options, planner apply.Planner, dryRun bool, out *Result) (*Result, error) {
	res, err := apply.Run(ctx, cfg, log, planner, dryRun)
	if err != nil {
		if out.UserCreated {
			if derr := daemon.Run(ctx, log, o.UserDel.With(o.User)); derr != nil {
				return nil, fmt.Errorf("%w; removing the callback user %s again: %w", err, o.User, derr)
			}
		}
		return nil, err
	}
	out.Result = res
	out.Changed = res.Changed || out.UserCreated
	return out, nil
}

// Disable undoes Enable: with no grant left, the master's files and the
// account go as with the last revoke.
func Disable(ctx context.Context, cfg *nodeconf.Config, log *slog.Logger, o Options, dryRun bool) (*Result, error) {
	st, err := callbackstate.Read(cfg)
	if err != nil {
		return nil, err
	}
	o.User = cmpOr(st.User, o.User)
	out := &Result{User: o.User}
	removeUser := false
	planner := func() (*apply.Plan, error) {
		st, err := callbackstate.Read(cfg)
		if err != nil {
			return nil, err
		}
		removeUser = st.Enabled && len(st.Grants) == 0 && st.UserCreated
		st.Enabled = false
		return plan(cfg, o, st)
	}
	res, err := apply.Run(ctx, cfg, log, planner, dryRun)
	if err != nil {
		return nil, err
	}
	out.Result = res
	if removeUser && !dryRun {
		if err := daemon.Run(ctx, log, o.UserDel.With(o.User)); err != nil {
			return nil, fmt.Errorf("removing the callback user %s: %w", o.User, err)
		}
		out.UserRemoved, out.Changed = true, true
	}
	return out, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ParseRange sets o's port range from "FIRST-LAST" (callback-grant's and
// join-service serve's --callback-port-range).
func ParseRange(s string, o *Options) error {
	a, b, ok := strings.Cut(s, "-")
	first, err1 := strconv.Atoi(a)
	last, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || first < 1024 || last > 65535 || first > last {
		return fmt.Errorf("%q is not FIRST-LAST within 1024-65535", s)
	}
	o.First, o.Last = first, last
	return nil
}

// blockInPlace says whether sshd's configuration has callback-grant's
// block for user, in the drop-in or at the end of sshd_config.
func blockInPlace(cfg *nodeconf.Config, user string) bool {
	for _, np := range []string{filepath.Join(cfg.SSHConfigDir, DropIn), filepath.Join(cfg.SSHConfigDir, "sshd_config")} {
		b, err := os.ReadFile(cfg.Path(np))
		if err != nil {
			continue
		}
		if i := strings.Index(string(b), begin); i >= 0 && strings.HasPrefix(string(b[i+len(begin):]), "Match User "+user+"\n") {
			return true
		}
	}
	return false
}

// withoutSSHD drops the sshd configuration's item from a plan.
func withoutSSHD(cfg *nodeconf.Config, items []txn.Item) []txn.Item {
	var out []txn.Item
	for _, it := range items {
		if it.NodePath != filepath.Join(cfg.SSHConfigDir, DropIn) && it.NodePath != filepath.Join(cfg.SSHConfigDir, "sshd_config") {
			out = append(out, it)
		}
	}
	return out
}
