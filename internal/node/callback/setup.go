package callback

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"text/template"

	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/daemon"
	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
	"github.com/nodejoin/nodejoin/internal/txn"
	"github.com/nodejoin/nodejoin/schemas"
)

// Node paths of the callback's files.
const (
	Dir          = "/etc/nodejoin/callback"
	KeyFile      = Dir + "/id_ed25519"
	KnownHosts   = Dir + "/known_hosts"
	SettingsFile = Dir + "/callback.json"
	UnitName     = "nodejoin-callback.service"
	UnitFile     = "/etc/systemd/system/" + UnitName
	// PackagedUnit is the unit nodejoin-node ships (dist/systemd), which
	// runs callback-setup --run; where it is installed, callback-setup
	// writes no unit of its own (doc/packaging.md).
	PackagedUnit = "/usr/lib/systemd/system/" + UnitName
)

// Setup is callback-setup's input.
type Setup struct {
	MasterHost          string          `json:"master_host"`
	MasterPort          int             `json:"master_port,omitempty"`
	MasterHostKeys      []string        `json:"master_host_keys"`
	CallbackUser        string          `json:"callback_user"`
	RemotePort          int             `json:"remote_port"`
	LocalPort           int             `json:"local_port,omitempty"`
	Key                 json.RawMessage `json:"key"`
	ServerAliveInterval int             `json:"server_alive_interval,omitempty"`
	ServerAliveCountMax int             `json:"server_alive_count_max,omitempty"`
}

// Decode reads and checks a callback-setup document.
func Decode(r io.Reader) (*Setup, error) {
	var d Setup
	if err := jsondoc.Decode(r, schemas.Get(schemas.CallbackSetup), &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// Settings are the tunnel's, kept in SettingsFile for --run.
type Settings struct {
	MasterHost          string `json:"master_host"`
	MasterPort          int    `json:"master_port"`
	CallbackUser        string `json:"callback_user"`
	RemotePort          int    `json:"remote_port"`
	LocalPort           int    `json:"local_port"`
	ServerAliveInterval int    `json:"server_alive_interval"`
	ServerAliveCountMax int    `json:"server_alive_count_max"`
}

// ReadSettings reads what callback-setup recorded under the root.
func ReadSettings(cfg *nodeconf.Config) (*Settings, error) {
	b, err := os.ReadFile(cfg.Path(SettingsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, problem.Hint(fmt.Errorf("%s: no callback is set up on this node", SettingsFile),
			"run callback-setup with the master's document first")
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", SettingsFile, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Settings
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", SettingsFile, err)
	}
	return &s, nil
}

// Args is the ssh command line of the tunnel; path maps a node path to
// the file ssh opens (the root's, under --root). No secret is on it: the
// key is named by its file.
func (s *Settings) Args(path func(string) string) []string {
	o := func(kv ...string) []string {
		var out []string
		for _, x := range kv {
			out = append(out, "-o", x)
		}
		return out
	}
	args := []string{"ssh", "-F", "none", "-N", "-T"}
	args = append(args, o(
		"BatchMode=yes",
		// Without it ssh stays up without the forward when a stale
		// session still holds the port; exiting lets the supervisor retry.
		"ExitOnForwardFailure=yes",
		"ServerAliveInterval="+strconv.Itoa(s.ServerAliveInterval),
		"ServerAliveCountMax="+strconv.Itoa(s.ServerAliveCountMax),
		"StrictHostKeyChecking=yes",
		"UserKnownHostsFile="+path(KnownHosts),
		"GlobalKnownHostsFile=none",
		"UpdateHostKeys=no",
		"IdentitiesOnly=yes",
		"IdentityFile="+path(KeyFile),
		"IdentityAgent=none",
		"PasswordAuthentication=no",
		"KbdInteractiveAuthentication=no",
		"ControlMaster=no",
		"ControlPath=none",
		"ForwardAgent=no",
		"ForwardX11=no",
		"ConnectTimeout=30",
	)...)
	return append(args, "-p", strconv.Itoa(s.MasterPort), "-l", s.CallbackUser,
		"-R", fmt.Sprintf("localhost:%d:localhost:%d", s.RemotePort, s.LocalPort), s.MasterHost)
}

//go:embed nodejoin-callback.service
var unitTemplate string

var unit = template.Must(template.New("unit").Parse(unitTemplate))

// Unit is the systemd unit of the tunnel, ssh found at sshPath.
func (s *Settings) Unit(sshPath string) []byte {
	args := s.Args(func(p string) string { return p })
	args[0] = sshPath
	var b bytes.Buffer
	_ = unit.Execute(&b, struct{ ExecStart string }{strings.Join(args, " ")}) // a fixed template of strings
	return b.Bytes()
}

// Systemd says whether systemd runs the node (as sd_booted(3) tells).
func Systemd(cfg *nodeconf.Config) bool {
	fi, err := os.Stat(cfg.Path("/run/systemd/system"))
	return err == nil && fi.IsDir()
}

// Planner returns callback-setup's planner. A key it generates is kept
// for the second plan (apply.Run plans again under the lock).
func Planner(cfg *nodeconf.Config, d *Setup, pub *string) apply.Planner {
	var generated []byte
	return func() (*apply.Plan, error) {
		s := Settings{MasterHost: d.MasterHost, MasterPort: or(d.MasterPort, 22), CallbackUser: d.CallbackUser,
			RemotePort: d.RemotePort, LocalPort: or(d.LocalPort, 22),
			ServerAliveInterval: or(d.ServerAliveInterval, 15), ServerAliveCountMax: or(d.ServerAliveCountMax, 3)}
		kh, err := knownHosts(s, d.MasterHostKeys)
		if err != nil {
			return nil, err
		}
		priv, pubLine, err := key(cfg, d.Key, &generated)
		if err != nil {
			return nil, err
		}
		*pub = strings.TrimSpace(string(pubLine))
		settings, _ := json.MarshalIndent(s, "", "  ")
		uid, gid := os.Geteuid(), os.Getegid()
		items, err := keyItems(cfg, priv, pubLine)
		if err != nil {
			return nil, err
		}
		f := func(np string, data []byte, mode fs.FileMode, secret bool) txn.Item {
			return txn.Item{NodePath: np, Data: data, Mode: mode, UID: uid, GID: gid, Secret: secret}
		}
		p := &apply.Plan{Items: append(items,
			f(KnownHosts, kh, 0o644, false),
			f(SettingsFile, append(settings, '\n'), 0o644, false))}
		if Systemd(cfg) && packaged(cfg) {
			// The package's unit; one an earlier callback-setup wrote in
			// /etc would override it, so it goes.
			p.Items = append(p.Items, txn.Item{NodePath: UnitFile, Remove: true})
			p.Steps = unitSteps
		} else if Systemd(cfg) {
			dirs, err := txn.MissingDirs(cfg.Root, path.Dir(UnitFile), 0o755, uid, gid)
			if err != nil {
				return nil, err
			}
			p.Items = append(append(p.Items, dirs...), f(UnitFile, s.Unit("/usr/bin/ssh"), 0o644, false))
			p.Steps = unitSteps
		}
		return p, nil
	}
}

// unitSteps make systemd run the tunnel's unit after a change.
var unitSteps = []apply.Step{
	{Daemon: "systemd", Restart: daemon.Builtin("systemctl", "daemon-reload")},
	{Daemon: UnitName, Restart: daemon.Builtin("systemctl", "enable", UnitName)},
	{Daemon: UnitName, Restart: daemon.Builtin("systemctl", "restart", UnitName)},
}

// packaged says whether the nodejoin-node package's unit is installed.
func packaged(cfg *nodeconf.Config) bool {
	fi, err := os.Stat(cfg.Path(PackagedUnit))
	return err == nil && fi.Mode().IsRegular()
}

func or(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// KeyPlanner plans the callback key only (callback-setup --key-only): a
// node makes its key first, so that the master can grant it a port.
func KeyPlanner(cfg *nodeconf.Config, pub *string) apply.Planner {
	var generated []byte
	return func() (*apply.Plan, error) {
		priv, pubLine, err := key(cfg, json.RawMessage(`"generate"`), &generated)
		if err != nil {
			return nil, err
		}
		*pub = strings.TrimSpace(string(pubLine))
		items, err := keyItems(cfg, priv, pubLine)
		return &apply.Plan{Items: items}, err
	}
}

// keyItems are the callback directory, its missing parents and the key.
func keyItems(cfg *nodeconf.Config, priv, pub []byte) ([]txn.Item, error) {
	uid, gid := os.Geteuid(), os.Getegid()
	dirs, err := txn.MissingDirs(cfg.Root, path.Dir(Dir), 0o755, uid, gid)
	if err != nil {
		return nil, err
	}
	return append(dirs,
		txn.Item{NodePath: Dir, Dir: true, Mode: 0o700, UID: uid, GID: gid},
		txn.Item{NodePath: KeyFile + ".pub", Data: pub, Mode: 0o644, UID: uid, GID: gid},
		txn.Item{NodePath: KeyFile, Data: priv, Mode: 0o600, UID: uid, GID: gid, Secret: true},
	), nil
}

// knownHosts pins the master's host keys under the name ssh looks up.
func knownHosts(s Settings, keys []string) ([]byte, error) {
	host := s.MasterHost
	if s.MasterPort != 22 {
		host = "[" + host + "]:" + strconv.Itoa(s.MasterPort)
	}
	var b strings.Builder
	for i, k := range keys {
		pub, err := sshkeys.ParsePublicLine(k)
		if err != nil {
			return nil, problem.Reject(fmt.Sprintf("/master_host_keys/%d", i), "%v", err)
		}
		f := strings.Fields(k)
		if f[0] != pub.Type() {
			return nil, problem.Reject(fmt.Sprintf("/master_host_keys/%d", i), "a host key line has no options")
		}
		fmt.Fprintf(&b, "%s %s %s\n", host, f[0], f[1])
	}
	return []byte(b.String()), nil
}

// key returns the callback key pair: the one given; else the node's own
// if it is a sound ed25519 pair; else one generated (once per run).
func key(cfg *nodeconf.Config, raw json.RawMessage, generated *[]byte) (priv, pub []byte, err error) {
	var given struct{ Private, Public string }
	if string(raw) != `"generate"` {
		if err := json.Unmarshal(raw, &given); err != nil {
			return nil, nil, problem.Reject("/key", "%v", err)
		}
		if _, err := sshkeys.ParsePair(sshkeys.Ed25519, given.Private, given.Public); err != nil {
			return nil, nil, problem.Reject("/key", "%v", err)
		}
		return []byte(given.Private), []byte(strings.TrimSpace(given.Public) + "\n"), nil
	}
	oldPriv, err1 := os.ReadFile(cfg.Path(KeyFile))
	oldPub, err2 := os.ReadFile(cfg.Path(KeyFile + ".pub"))
	if err1 == nil && err2 == nil {
		if _, err := sshkeys.ParsePair(sshkeys.Ed25519, string(oldPriv), string(oldPub)); err == nil {
			return oldPriv, oldPub, nil
		}
	}
	if *generated == nil {
		host, _ := os.Hostname()
		p, q, err := sshkeys.Generate(sshkeys.Ed25519, 0, "callback@"+host)
		if err != nil {
			return nil, nil, fmt.Errorf("generating the callback key: %w", err)
		}
		*generated = append(p, q...)
		return p, q, nil
	}
	// The same pair as the first plan: private PEM, then the .pub line.
	i := bytes.LastIndex(*generated, []byte("-----\n")) + len("-----\n")
	return (*generated)[:i], (*generated)[i:], nil
}
