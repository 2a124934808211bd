package cloudconfig

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// The node's side of the rendering.
const (
	// stageDir holds the token (and, when installing from join-service,
	// the downloaded programs) from bootcmd to the end of the join. It is
	// made 0700 by the first bootcmd, which cloud-init runs before
	// write_files in its init stage: write_files creates a file with the
	// process's umask, writes it, and only then chmods it
	// (cloudinit/util.py write_file), so a secret is private at every
	// instant only inside a directory already closed to others. /run is a
	// tmpfs: a boot that dies before the removal leaves nothing on disk.
	stageDir = "/run/nodejoin-cloud"
	// TokenFile is where the token lands, read by node-join --token-file.
	TokenFile = stageDir + "/join.token"
	sumsFile  = stageDir + "/SHA256SUMS"
	// callbackFile is callback-setup's document, which may hold the
	// callback key's private half.
	callbackFile = stageDir + "/callback.json"
	// binDir is where the programs from join-service go: root's PATH, not
	// a package's directory.
	binDir = "/usr/local/sbin"
	// MaxUserData is the most user-data rendered: the seed's 64 KiB. What
	// is larger goes in the slot's config (config_exec).
	MaxUserData = 64 << 10
	// defaultPackage is the node programs' Debian package.
	defaultPackage = "nodejoin-node"
)

// NodeFile is one program join-service serves, with its SHA-256 (hex).
type NodeFile struct {
	Name   string
	SHA256 string
}

// Facts are what the rendering learns outside the document: the slot's
// state from join-service and the programs it serves.
type Facts struct {
	Slot  Slot
	Files []NodeFile // install from join-service: every program it serves
}

// Rendered is the user-data and what the operator should be told.
type Rendered struct {
	UserData []byte
	Warnings []string
}

// cloudConfig is the subset of cloud-init's keys rendered, in the order
// cloud-init runs them (its module order, Debian's /etc/cloud/cloud.cfg):
// bootcmd and write_files in the init stage, apt and runcmd's script in the
// config stage, packages, the script and phone_home in the final stage.
type cloudConfig struct {
	Bootcmd        []any             `yaml:"bootcmd"`
	WriteFiles     []writeFile       `yaml:"write_files"`
	SSHDeleteKeys  bool              `yaml:"ssh_deletekeys"`
	SSHGenKeyTypes []string          `yaml:"ssh_genkeytypes,omitempty"`
	SSHKeys        map[string]string `yaml:"ssh_keys,omitempty"`
	Apt            *apt              `yaml:"apt,omitempty"`
	PackageUpdate  bool              `yaml:"package_update,omitempty"`
	PackageUpgrade bool              `yaml:"package_upgrade,omitempty"`
	Packages       []string          `yaml:"packages,omitempty"`
	Runcmd         []any             `yaml:"runcmd"`
	PhoneHome      *phoneHome        `yaml:"phone_home,omitempty"`
}

type writeFile struct {
	Path        string `yaml:"path"`
	Content     string `yaml:"content"`
	Owner       string `yaml:"owner"`
	Permissions string `yaml:"permissions"`
	Defer       bool   `yaml:"defer,omitempty"`
}

type apt struct {
	Sources map[string]aptSource `yaml:"sources"`
}

type aptSource struct {
	Source string `yaml:"source"`
	Key    string `yaml:"key,omitempty"`
}

type phoneHome struct {
	URL   string   `yaml:"url"`
	Post  []string `yaml:"post"`
	Tries int      `yaml:"tries"`
}

// defaultPost is what phone_home posts when the document does not say:
// every key cloud-init 22.4 knows but DSA's.
var defaultPost = []string{"pub_key_rsa", "pub_key_ecdsa", "pub_key_ed25519", "instance_id", "hostname", "fqdn"}

// Render renders the user-data for in, checks it against cloud-init's
// schema and refuses it above MaxUserData.
func Render(in *Input, tok joinapi.Token, f Facts) (*Rendered, error) {
	if err := f.Slot.Check(tok.UUID, in); err != nil {
		return nil, err
	}
	var warn []string
	cc := cloudConfig{SSHDeleteKeys: true}
	// The first boot command closes the directory before write_files puts
	// the token in it; install(1) also tightens one that exists.
	cc.Bootcmd = append(cc.Bootcmd, command{"install", "-d", "-m", "0700", "-o", "root", "-g", "root", stageDir})
	for _, c := range in.Scripts.Boot {
		cc.Bootcmd = append(cc.Bootcmd, command(c))
	}
	cc.WriteFiles = append(cc.WriteFiles, writeFile{Path: TokenFile, Content: tok.Text() + "\n", Owner: "root:root", Permissions: "0600"})

	if len(in.HostKeys) == 0 {
		cc.SSHGenKeyTypes = []string{"ed25519", "ecdsa", "rsa"}
	} else {
		cc.SSHKeys = map[string]string{}
		var kinds []string
		for kind, kp := range in.HostKeys {
			cc.SSHKeys[kind+"_private"] = ensureNewline(kp.Private)
			cc.SSHKeys[kind+"_public"] = strings.TrimSpace(kp.Public)
			kinds = append(kinds, kind)
		}
		sort.Strings(kinds)
		warn = append(warn, "ssh_host_keys: the private host keys ("+strings.Join(kinds, ", ")+") travel in the user-data: "+
			"every process on the machine that can reach the metadata service can read them, and so can whoever "+
			"reads the cloud's metadata; node-join replaces them with the cluster's host keys")
	}

	sources := map[string]aptSource{}
	for name, s := range in.AptSources {
		sources[name] = aptSource(s)
	}
	node, callbackSetup := "node-join", "callback-setup"
	var install []any
	switch in.Install.From {
	case FromApt:
		pkg := in.Install.Package
		if pkg == "" {
			pkg = defaultPackage
		}
		if _, ok := sources[pkg]; ok {
			return nil, problem.Reject("/apt_sources/"+pkg, "the name is the node package's source's")
		}
		sources[pkg] = aptSource{Source: in.Install.Source, Key: in.Install.Key}
		cc.Packages = append(cc.Packages, pkg)
		node, callbackSetup = "/usr/bin/node-join", "/usr/bin/callback-setup"
	case FromJoinService:
		var err error
		if install, err = fromJoinService(tok, f.Files, len(in.Callback) > 0, &cc); err != nil {
			return nil, err
		}
		node, callbackSetup = binDir+"/node-join", binDir+"/callback-setup"
	}
	if len(sources) > 0 {
		cc.Apt = &apt{Sources: sources}
	}
	cc.Packages = append(cc.Packages, in.Packages...)
	for _, t := range in.Tasks {
		cc.Packages = append(cc.Packages, "task-"+t)
	}
	if len(cc.Packages) > 0 {
		cc.PackageUpdate = true
	}
	cc.PackageUpgrade = in.Updates

	private := privateFiles(in.WriteFiles, &cc)

	// runcmd is one shell script (cloud-init's shellify: a list is quoted
	// word by word, a string is a line as it is): it stops at the first
	// failure, and removes the staging directory, token and all, however
	// it ends.
	cc.Runcmd = []any{"set -eu", "trap 'rm -rf " + stageDir + "' EXIT"}
	cc.Runcmd = append(cc.Runcmd, private...)
	for _, c := range in.Scripts.BeforeJoin {
		cc.Runcmd = append(cc.Runcmd, command(c))
	}
	cc.Runcmd = append(cc.Runcmd, install...)
	if len(in.Callback) > 0 {
		w, err := callbackDoc(in.Callback, &cc)
		if err != nil {
			return nil, err
		}
		warn = append(warn, w...)
		// The document on standard input: a fixed path, so a shell line.
		cc.Runcmd = append(cc.Runcmd, callbackSetup+" < "+callbackFile)
	}
	join := command{node, "--token-file", TokenFile}
	if in.NodeName != "" {
		join = append(join, "--node-name", in.NodeName)
	}
	if in.Timeout != "" {
		join = append(join, "--timeout", in.Timeout)
	}
	if len(in.ConfigExec) > 0 {
		join = append(join, "--exec", in.ConfigExec[0])
		if len(in.ConfigExec) > 1 {
			join = append(append(join, "--"), in.ConfigExec[1:]...)
		}
	}
	cc.Runcmd = append(cc.Runcmd, join, command{"rm", "-rf", stageDir})
	for _, c := range in.Scripts.AfterJoin {
		cc.Runcmd = append(cc.Runcmd, command(c))
	}

	if ph := in.PhoneHome; ph != nil {
		out := &phoneHome{URL: ph.URL, Post: ph.Post, Tries: ph.Tries}
		if len(out.Post) == 0 {
			out.Post = defaultPost
		}
		// cloud-init 22.2 failed without tries (canonical/cloud-init#3985).
		if out.Tries == 0 {
			out.Tries = 10
		}
		cc.PhoneHome = out
	}

	var buf bytes.Buffer
	buf.WriteString("#cloud-config\n")
	fmt.Fprintf(&buf, "# render-cloud-config: joins slot %s at first boot.\n", tok.UUID)
	buf.WriteString("# It holds the slot's one-time secret: keep it as private as the secret.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&cc); err != nil {
		return nil, fmt.Errorf("encoding the user-data: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	out := buf.Bytes()
	if err := Validate(out); err != nil {
		return nil, fmt.Errorf("the rendered user-data fails cloud-init's schema (a bug): %w", err)
	}
	if len(out) > MaxUserData {
		return nil, problem.Reject("/", "the user-data would be %d bytes, more than %d (64 KiB)", len(out), MaxUserData).
			WithHint("put what is large (files, scripts) in the slot's config with join-service slot set-config, " +
				"and give config_exec: node-join hands it to that program after joining")
	}
	return &Rendered{UserData: out, Warnings: warn}, nil
}

// privateFiles renders the operator's files. A file others may read is a
// write_files entry as given. A private one (permissions without o+r) is
// not: write_files would create it with the umask and chmod it only after
// writing. It is staged inside the closed directory, and runcmd's first
// commands install(1) it in place, which creates the file 0600 (O_EXCL),
// then chowns and chmods it: never readable by others. Such a file lands in
// the final stage, after the packages, as with defer.
func privateFiles(files []File, cc *cloudConfig) []any {
	var cmds []any
	for i, f := range files {
		owner, perms := f.Owner, f.Permissions
		if owner == "" {
			owner = "root:root"
		}
		if perms == "" {
			perms = "0644"
		}
		if m, _ := strconv.ParseUint(perms, 8, 32); m&0o004 != 0 {
			cc.WriteFiles = append(cc.WriteFiles, writeFile{Path: f.Path, Content: f.Content, Owner: owner, Permissions: perms, Defer: f.Defer})
			continue
		}
		staged := fmt.Sprintf("%s/files/%d", stageDir, i)
		cc.WriteFiles = append(cc.WriteFiles, writeFile{Path: staged, Content: f.Content, Owner: "root:root", Permissions: "0600"})
		user, group, ok := strings.Cut(owner, ":")
		if !ok {
			group = "root"
		}
		cmds = append(cmds, command{"install", "-D", "-m", perms, "-o", user, "-g", group, staged, f.Path})
	}
	return cmds
}

// fromJoinService downloads each program from join-service with curl,
// trusting the server by the token's pins (curl --pinnedpubkey, checked
// before anything is sent; --insecure only drops the CA and name checks,
// which the cluster's self-signed certificate cannot pass), then checks
// every file against its SHA-256 before installing any.
func fromJoinService(tok joinapi.Token, all []NodeFile, callback bool, cc *cloudConfig) ([]any, error) {
	if len(all) == 0 {
		return nil, problem.Reject("/install", "join-service serves no node programs").
			WithHint("copy node-join, prepare-node-join, node-daemon-setup and noded into its files directory (render-cloud-config --files-dir)")
	}
	var files []NodeFile
	for _, f := range all {
		if f.Name != "callback-setup" || callback {
			files = append(files, f)
		}
	}
	if callback && !hasFile(all, "callback-setup") {
		return nil, problem.Reject("/callback", "join-service serves no callback-setup").
			WithHint("copy callback-setup (the nodejoin-node package's) into its files directory beside node-join")
	}
	var pins []string
	for _, p := range tok.Pins {
		raw, err := hex.DecodeString(strings.TrimPrefix(p, "sha256:"))
		if err != nil {
			return nil, problem.Reject("/token", "pin %q is not hex", p)
		}
		pins = append(pins, "sha256//"+base64.StdEncoding.EncodeToString(raw))
	}
	base := "https://" + tok.Address()
	var sums strings.Builder
	var cmds []any
	var staged []string
	for _, f := range files {
		dst := stageDir + "/" + f.Name
		cmds = append(cmds, command{"curl", "--fail", "--silent", "--show-error", "--proto", "=https",
			"--insecure", "--pinnedpubkey", strings.Join(pins, ";"), "--retry", "10", "--retry-connrefused",
			"--max-time", "300", "--output", dst, base + joinapi.FilePath(f.Name)})
		fmt.Fprintf(&sums, "%s  %s\n", f.SHA256, dst)
		staged = append(staged, dst)
	}
	cc.WriteFiles = append(cc.WriteFiles, writeFile{Path: sumsFile, Content: sums.String(), Owner: "root:root", Permissions: "0644"})
	cmds = append(cmds, command{"sha256sum", "--check", "--strict", "--quiet", sumsFile})
	cmds = append(cmds, append(command{"install", "-m", "0755", "-o", "root", "-g", "root", "-t", binDir}, staged...))
	return cmds, nil
}

func hasFile(files []NodeFile, name string) bool {
	for _, f := range files {
		if f.Name == name {
			return true
		}
	}
	return false
}

// callbackDoc stages callback-setup's document in the closed directory: it
// may hold the callback key's private half.
func callbackDoc(doc json.RawMessage, cc *cloudConfig) ([]string, error) {
	var d struct {
		Key json.RawMessage `json:"key"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, problem.Reject("/callback", "%v", err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, doc); err != nil {
		return nil, problem.Reject("/callback", "%v", err)
	}
	cc.WriteFiles = append(cc.WriteFiles, writeFile{Path: callbackFile, Content: compact.String() + "\n", Owner: "root:root", Permissions: "0600"})
	if string(d.Key) == `"generate"` {
		return []string{"callback: the key is generated on the node, so the master has not granted it: " +
			"the tunnel is refused until callback-grant is given the key callback-setup prints (or give a granted key pair)"}, nil
	}
	return []string{"callback: the callback key's private half travels in the user-data (the metadata service); " +
		"it can open only the one forward callback-grant allowed"}, nil
}

// command is an argument list, written as a flow sequence so that each
// command reads as one line: [install, -d, -m, "0700", ...].
type command []string

func (c command) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, a := range c {
		var v yaml.Node
		if err := v.Encode(a); err != nil {
			return nil, err
		}
		n.Content = append(n.Content, &v)
	}
	return n, nil
}

func ensureNewline(s string) string {
	if strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}
