// Package nodeconf is the node's own configuration: where it keeps things
// and how it restarts its daemons, read at run time from
// /etc/nodejoin/node.json (under --root). Ganeti fixes these at build time;
// a node here may differ from the master and from other nodes.
package nodeconf

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/daemon"
	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/schemas"
)

// Files in the data directory, as Ganeti's pathutils names them.
const (
	ServerPEM  = "server.pem"      // the cluster certificate and key (node daemon certificate)
	ClientPEM  = "client.pem"      // this machine's client certificate
	HMACKey    = "hmac.key"        // the cluster's shared secret (confd)
	KnownHosts = "known_hosts"     // the cluster's SSH host keys under the cluster name
	PubKeys    = "ganeti_pub_keys" // the nodes' root public keys (master only)
)

// CertificateRenewal is, in the state directory, the window of a rotation
// of the cluster certificate as node-daemon-setup was given it
// (joindoc.CertificateRenewal): until its end the node daemon also accepts
// clients of the previous cluster certificate.
const CertificateRenewal = "certificate-renewal.json"

// DefaultNodeDaemonPort is Ganeti's noded port (constants.DEFAULT_NODED_PORT).
const DefaultNodeDaemonPort = 1811

// File is where the configuration lives on a node.
const File = "/etc/nodejoin/node.json"

// Config is the node configuration with defaults filled in. Paths are node
// paths (as seen with --root /); Path maps them under the root.
type Config struct {
	Root                     string         `json:"-"`
	DataDir                  string         `json:"data_dir"`
	SSHConfigDir             string         `json:"ssh_config_dir"`
	SSHLoginUser             string         `json:"ssh_login_user"`
	LockDir                  string         `json:"lock_dir"`
	StateDir                 string         `json:"state_dir"`
	RunDir                   string         `json:"run_dir"`
	LogDir                   string         `json:"log_dir"`
	SSHDCheckCommand         daemon.Command `json:"sshd_check_command"`
	SSHDRestartCommand       daemon.Command `json:"sshd_restart_command"`
	NodeDaemonRestartCommand Commands       `json:"node_daemon_restart_command"` // default: see fill
	NodeDaemonStopCommand    Commands       `json:"node_daemon_stop_command"`    // node-cleanup's; default: see fill
	NodeDaemonPort           int            `json:"node_daemon_port"`
	// SSHQueryKeyCommand lists the key types the node's OpenSSH supports,
	// one per line (ssh -Q key): asked before a DSA key is used.
	SSHQueryKeyCommand daemon.Command `json:"ssh_query_key_command"`
	// ClientKeyType and ClientKeyBits are the key of a new client.pem.
	ClientKeyType string `json:"client_key_type"`
	ClientKeyBits int    `json:"client_key_bits"`
	// NodeAddInstall, on a master, makes node-add put the node-side
	// programs onto the nodes it joins (node-add --install) unless told
	// --install=false: a master whose nodes start bare says so once.
	NodeAddInstall bool `json:"node_add_install"`
	// ganeti is the daemon-util found, as a node path; "" where Ganeti is
	// not installed.
	ganeti string
	// clientKeyDefault: node.json names no client key, and the default
	// is not Ganeti's (see fill).
	clientKeyDefault bool
}

// Commands is a sequence of commands, each an argument list, run in order
// until one fails. In node.json it is one command or a list of them.
type Commands []daemon.Command

// UnmarshalJSON takes one command (["a", "b"]) or several ([["a"], ["b"]]).
func (c *Commands) UnmarshalJSON(data []byte) error {
	var one daemon.Command
	if err := json.Unmarshal(data, &one); err == nil {
		*c = Commands{one}
		return nil
	}
	var many []daemon.Command
	if err := json.Unmarshal(data, &many); err != nil {
		return errors.New("a command is a list of strings, or a list of such lists")
	}
	*c = many
	return nil
}

// daemonUtils are where Ganeti's packages put daemon-util (PKGLIBDIR):
// Debian's and upstream's /usr/lib/ganeti (a symbolic link into the active
// version, /usr/lib/ganeti/3.0/usr/lib/ganeti/daemon-util for Debian's
// 3.0), EL's /usr/lib64/ganeti, a source install's /usr/local/lib/ganeti.
var daemonUtils = []string{"/usr/lib/ganeti/daemon-util", "/usr/lib64/ganeti/daemon-util", "/usr/local/lib/ganeti/daemon-util"}

// ganetiRestart is Ganeti's own node daemon (re)start
// (lib/tools/node_daemon_setup.py): stop every Ganeti daemon, then start
// ganeti-noded and ganeti-mond (ENABLE_MOND, as Debian builds it). Ganeti
// runs them as one shell line and sees only the last status; here each one
// must succeed.
func ganetiRestart(daemonUtil string) Commands {
	return Commands{
		daemon.Builtin(daemonUtil, "stop-all"),
		daemon.Builtin(daemonUtil, "start", "ganeti-noded"),
		daemon.Builtin(daemonUtil, "start", "ganeti-mond"),
	}
}

// GanetiMasterd is the owner Ganeti gives hmac.key and server.pem
// (runtime.GetEnts: the user gnt-masterd and the group gnt-masterd, as
// Debian builds Ganeti), looked up in the root's /etc/passwd and /etc/group.
// ok is false where Ganeti is not installed or either entry is missing:
// the files then stay the running user's.
func (c *Config) GanetiMasterd() (uid, gid int, ok bool, err error) {
	if c.ganeti == "" {
		return 0, 0, false, nil
	}
	u, err := lookupPasswd(c.Path("/etc/passwd"), ganetiMasterd)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	gid, err = lookupGroup(c.Path("/etc/group"), ganetiMasterd)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	return u.UID, gid, true, nil
}

const ganetiMasterd = "gnt-masterd"

// detectGaneti returns the first of daemonUtils that exists under the root
// (a link counts: Debian's points into /etc/ganeti/lib, which the master
// sets up), or "".
func (c *Config) detectGaneti() string {
	for _, p := range daemonUtils {
		if _, err := os.Lstat(c.Path(p)); err == nil {
			return p
		}
	}
	return ""
}

// systemdRuns says whether systemd is the init system (sd_booted(3)); a
// variable so that tests can say either.
var systemdRuns = func() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// nodedUnits are where a package puts noded's unit (Debian's /usr/lib and
// the older /lib).
var nodedUnits = []string{"/usr/lib/systemd/system/noded.service", "/lib/systemd/system/noded.service"}

// nodedUnitInstalled reports noded's unit under the root.
func (c *Config) nodedUnitInstalled() bool {
	for _, p := range nodedUnits {
		if _, err := os.Stat(c.Path(p)); err == nil {
			return true
		}
	}
	return false
}

// Default returns the configuration of a node without node.json: Ganeti's
// layout, and the restart commands of the init system that runs.
func Default() *Config {
	restart := daemon.Builtin("service", "ssh", "restart")
	if systemdRuns() {
		// Debian's ssh.service reloads with sshd -t, then SIGHUP: sshd
		// re-executes and reads the new host keys; sessions stay up.
		restart = daemon.Builtin("systemctl", "reload-or-restart", "ssh")
	}
	return &Config{
		Root:                     "/",
		DataDir:                  "/var/lib/ganeti",
		SSHConfigDir:             "/etc/ssh",
		SSHLoginUser:             "root",
		LockDir:                  "/var/lock",
		StateDir:                 "/var/lib/nodejoin",
		RunDir:                   "/run/nodejoin",
		LogDir:                   "/var/log/nodejoin",
		SSHDCheckCommand:         daemon.Builtin("/usr/sbin/sshd", "-t"),
		SSHDRestartCommand:       restart,
		NodeDaemonRestartCommand: nil, // Load looks for Ganeti under the root
		NodeDaemonPort:           DefaultNodeDaemonPort,
		SSHQueryKeyCommand:       daemon.Builtin("ssh", "-Q", "key"),
		ClientKeyType:            "", // fill: Ganeti's rsa where Ganeti is installed, else ecdsa
	}
}

// Load reads root's node.json over the defaults; a missing file means all
// defaults. A bad file is rejected like a bad input (exit 3) with the file's
// path in front of each problem.
func Load(root string) (*Config, error) {
	if root == "" {
		root = "/"
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("--root %s: %w", root, err)
	}
	c := Default()
	c.Root = abs
	f, err := os.Open(c.Path(File))
	if errors.Is(err, fs.ErrNotExist) {
		return c, c.fill()
	}
	if err != nil {
		return nil, fmt.Errorf("reading node configuration: %w", err)
	}
	defer f.Close()
	if err := jsondoc.Decode(f, schemas.Get(schemas.NodeConfig), c); err != nil {
		return nil, jsondoc.InFile(err, File)
	}
	return c, c.fill()
}

// fill puts in the defaults that depend on other keys or on the node.
func (c *Config) fill() error {
	c.ganeti = c.detectGaneti()
	if c.NodeDaemonRestartCommand == nil {
		switch {
		case c.ganeti != "":
			// Run the daemon-util found, under the root too.
			c.NodeDaemonRestartCommand = ganetiRestart(c.Path(c.ganeti))
		case systemdRuns() && c.nodedUnitInstalled():
			// The unit owns the daemon: noded --restart would start a
			// second one outside it.
			c.NodeDaemonRestartCommand = Commands{daemon.Builtin("systemctl", "restart", "noded")}
		default:
			c.NodeDaemonRestartCommand = Commands{daemon.Builtin("noded", "--restart")}
		}
	}
	if c.NodeDaemonStopCommand == nil {
		// node-cleanup stops what the restart started, the same way
		// (Ganeti's node-cleanup: daemon-util stop-all).
		switch {
		case c.ganeti != "":
			c.NodeDaemonStopCommand = Commands{daemon.Builtin(c.Path(c.ganeti), "stop-all")}
		case systemdRuns() && c.nodedUnitInstalled():
			c.NodeDaemonStopCommand = Commands{daemon.Builtin("systemctl", "stop", "noded")}
		default:
			c.NodeDaemonStopCommand = Commands{daemon.Builtin("noded", "--stop")}
		}
	}
	if c.ClientKeyType == "" {
		// Ganeti's verify calls any key under 2048 bits weak, so a node
		// where Ganeti is installed gets Ganeti's RSA 2048, and so does a
		// node.json that sets only the size (an RSA size). Elsewhere no
		// Ganeti checks it, and a P-256 key (stronger than RSA 2048) is
		// made in microseconds where RSA 2048 takes 50-100 ms of CPU, the
		// largest part of a fresh node-daemon-setup run.
		c.ClientKeyType = certs.GanetiClientKey.Type
		if c.ganeti == "" && c.ClientKeyBits == 0 {
			c.ClientKeyType, c.clientKeyDefault = "ecdsa", true
		}
	}
	if c.ClientKeyBits == 0 {
		c.ClientKeyBits = certs.DefaultBits(c.ClientKeyType)
	}
	if err := c.ClientKey().Check(); err != nil {
		return problem.Reject(File+":/client_key_bits", "%v", err)
	}
	return nil
}

// ClientKey is the key a new client.pem gets.
func (c *Config) ClientKey() certs.KeySpec {
	return certs.KeySpec{Type: c.ClientKeyType, Bits: c.ClientKeyBits}
}

// ClientKeysKept are the keys an existing client.pem may have to be kept:
// ClientKey, and where node.json names no type and Ganeti is not installed,
// Ganeti's RSA 2048 as well (what earlier versions made everywhere), so
// that re-adding such a node does not replace a sound certificate.
func (c *Config) ClientKeysKept() []certs.KeySpec {
	keys := []certs.KeySpec{c.ClientKey()}
	if c.clientKeyDefault {
		keys = append(keys, certs.GanetiClientKey)
	}
	return keys
}

// Path maps a node path to where it is under the root.
func (c *Config) Path(p string) string {
	return filepath.Join(c.Root, p)
}

// User is the login user as this node knows it.
type User struct {
	Name     string
	UID, GID int
	Home     string // node path, e.g. /root
}

// LoginUser looks the login user up in the root's /etc/passwd, or in the
// system's user database when the root has none (a test or QA root): under
// --root the home directory is taken under the root too.
func (c *Config) LoginUser() (*User, error) {
	if u, err := lookupPasswd(c.Path("/etc/passwd"), c.SSHLoginUser); err == nil {
		return u, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	su, err := user.Lookup(c.SSHLoginUser)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve the home of user %q: %w", c.SSHLoginUser, err)
	}
	uid, _ := strconv.Atoi(su.Uid)
	gid, _ := strconv.Atoi(su.Gid)
	return &User{Name: su.Username, UID: uid, GID: gid, Home: su.HomeDir}, nil
}

// HasUser says whether the root's /etc/passwd has an account of that name
// (callback-grant's restricted account).
func (c *Config) HasUser(name string) (bool, error) {
	_, err := lookupPasswd(c.Path("/etc/passwd"), name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func lookupPasswd(path, name string) (*User, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 7 || fields[0] != name {
			continue
		}
		uid, err1 := strconv.Atoi(fields[2])
		gid, err2 := strconv.Atoi(fields[3])
		if err1 != nil || err2 != nil || !strings.HasPrefix(fields[5], "/") {
			return nil, fmt.Errorf("%s: the entry of user %q is malformed", path, name)
		}
		return &User{Name: name, UID: uid, GID: gid, Home: fields[5]}, nil
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return nil, fmt.Errorf("%s: no user %q: %w", path, name, fs.ErrNotExist)
}

func lookupGroup(path, name string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 3 || fields[0] != name {
			continue
		}
		gid, err := strconv.Atoi(fields[2])
		if err != nil {
			return 0, fmt.Errorf("%s: the entry of group %q is malformed", path, name)
		}
		return gid, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading %s: %w", path, err)
	}
	return 0, fmt.Errorf("%s: no group %q: %w", path, name, fs.ErrNotExist)
}

// FileWith returns root's node.json with key set to value and every other
// key kept as it is (a missing file is an empty object): for a program that
// records a setting the master decides, such as the node daemon's port.
func (c *Config) FileWith(key string, value any) ([]byte, error) {
	keys := map[string]json.RawMessage{}
	b, err := os.ReadFile(c.Path(File))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("reading node configuration: %w", err)
	default:
		// Load has checked the file against its schema already.
		if err := json.Unmarshal(b, &keys); err != nil {
			return nil, fmt.Errorf("%s: %w", File, err)
		}
	}
	v, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	keys[key] = v
	out, err := json.MarshalIndent(keys, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
