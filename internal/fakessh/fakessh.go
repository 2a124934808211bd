// Package fakessh is a fake ssh(1) for unit tests: the test binary itself,
// run through a symlink named "ssh" at the front of PATH (see Install and
// Main). It understands the options
// sshrun passes and acts out one scenario, read from files in $FAKESSH_DIR:
//
//	mode         ok | unreachable | noroute | timedout | hang | authfail
//	hostkeys     the "server's" host keys, "type base64" lines, preferred first
//	bin/         the "remote" programs (run locally with sh -c)
//	connections  one line appended per master (TCP) connection: the host,
//	             or "host via address" for -o HostName=address
//	cmdlines     the command line of every ssh process, one per line
//
// Host keys are checked as ssh does: the UserKnownHostsFile lines plus the
// KnownHostsCommand's output, for the HostKeyAlias. `-O forward -L
// socket:host:port` makes the master proxy the socket to host:port on this
// machine, as a stream-local forward over the connection would.

package fakessh

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

// HostKey is a public key as known_hosts writes it.
type HostKey struct{ Type, Base64 string }

// Fingerprint is ssh-keygen's SHA256 fingerprint.
func (k HostKey) Fingerprint() string {
	blob, _ := base64.StdEncoding.DecodeString(k.Base64)
	return sshkeys.FingerprintBlob(blob)
}

// IsFake says whether this process was started as the fake ssh; a test
// binary's TestMain then calls os.Exit(Main()).
func IsFake() bool { return filepath.Base(os.Args[0]) == "ssh" }

// Fake is one scenario's directory.
type Fake struct{ Dir string }

// Install puts the fake ssh first on PATH for the test, acting out mode
// with the given host keys ("type base64"), and returns its directory.
func Install(t testing.TB, mode string, hostkeys ...HostKey) *Fake {
	t.Helper()
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "fakebin")
	for _, d := range []string{bin, filepath.Join(dir, "bin")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(exe, filepath.Join(bin, "ssh")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	t.Setenv("FAKESSH_DIR", dir)
	f := &Fake{Dir: dir}
	f.Write(t, "mode", mode)
	var lines []string
	for _, k := range hostkeys {
		lines = append(lines, k.Type+" "+k.Base64)
	}
	f.Write(t, "hostkeys", strings.Join(lines, "\n")+"\n")
	return f
}

// Write writes a scenario file.
func (f *Fake) Write(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.Dir, name), []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

// Program installs a "remote" program (a shell script body).
func (f *Fake) Program(t testing.TB, name, script string) {
	f.Write(t, filepath.Join("bin", name), "#!/bin/sh\n"+script)
}

// Connections is how many master (TCP) connections were made.
func (f *Fake) Connections() int {
	b, _ := os.ReadFile(filepath.Join(f.Dir, "connections"))
	return strings.Count(string(b), "\n")
}

// Cmdlines are the command lines of every ssh process, one per line.
func (f *Fake) Cmdlines() string {
	b, _ := os.ReadFile(filepath.Join(f.Dir, "cmdlines"))
	return string(b)
}

// Main acts out the scenario; its result is the process's exit status.
func Main() int {
	dir := os.Getenv("FAKESSH_DIR")
	cmdline, _ := os.ReadFile("/proc/self/cmdline")
	appendFile(filepath.Join(dir, "cmdlines"), strings.ReplaceAll(string(cmdline), "\x00", " ")+"\n")

	opts := map[string]string{}
	var flags = map[string]bool{}
	var ctl, ctlCmd, port, forward string
	args := os.Args[1:]
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch a {
		case "-M", "-N", "-T", "-G", "-n":
			flags[a] = true
		case "-S":
			i++
			ctl = args[i]
		case "-O":
			i++
			ctlCmd = args[i]
		case "-p":
			i++
			port = args[i]
		case "-l":
			i++
		case "-L":
			i++
			forward = args[i]
		case "-o":
			i++
			k, v, _ := strings.Cut(args[i], "=")
			if _, ok := opts[strings.ToLower(k)]; !ok {
				opts[strings.ToLower(k)] = v
			}
		case "--":
			rest = args[i+1:]
			i = len(args)
		default:
			rest = args[i:]
			i = len(args)
		}
	}
	if len(rest) == 0 {
		fmt.Fprintln(os.Stderr, "fake ssh: no host")
		return 255
	}
	host := rest[0]
	mode := strings.TrimSpace(readString(filepath.Join(dir, "mode")))

	hostname := host
	if opts["hostname"] != "" {
		hostname = opts["hostname"]
	}
	switch {
	case flags["-G"]:
		if port == "" {
			port = "22"
		}
		fmt.Printf("hostname %s\nport %s\nuserknownhostsfile %s\nglobalknownhostsfile /dev/null\n",
			hostname, port, filepath.Join(dir, "user_known_hosts"))
		if a := opts["hostkeyalias"]; a != "" {
			fmt.Printf("hostkeyalias %s\n", a)
		}
		return 0
	case ctlCmd == "forward":
		c, err := net.Dial("unix", ctl)
		if err != nil {
			fmt.Fprintf(os.Stderr, "Control socket connect(%s): %v\n", ctl, err)
			return 255
		}
		defer c.Close()
		fmt.Fprintln(c, "forward "+forward)
		reply, _ := bufio.NewReader(c).ReadString('\n')
		if strings.TrimSpace(reply) != "ok" {
			fmt.Fprintf(os.Stderr, "mux_client_forward: forwarding request failed: %s\n", strings.TrimSpace(reply))
			return 255
		}
		return 0
	case ctlCmd == "exit":
		c, err := net.Dial("unix", ctl)
		if err != nil {
			fmt.Fprintf(os.Stderr, "Control socket connect(%s): %v\n", ctl, err)
			return 255
		}
		fmt.Fprintln(c, "exit")
		c.Close()
		fmt.Fprintln(os.Stderr, "Exit request sent.")
		return 0
	case flags["-M"]:
		record := host
		if hostname != host {
			record += " via " + hostname
		}
		if port == "" {
			port = "22"
		}
		appendFile(filepath.Join(dir, "connections"), record+"\n")
		return fakeMaster(dir, mode, hostname, port, ctl, opts)
	}
	// A session over the master.
	c, err := net.Dial("unix", ctl)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Control socket connect(%s): %v\nkex_exchange_identification: Connection closed by remote host\n", ctl, err)
		return 255
	}
	fmt.Fprintln(c, "session")
	c.Close()
	cmd := exec.Command("/bin/sh", "-c", strings.Join(rest[1:], " "))
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(dir, "bin")+":"+os.Getenv("PATH"))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			return ee.ExitCode()
		}
		return 255
	}
	return 0
}

func fakeMaster(dir, mode, host, port, ctl string, opts map[string]string) int {
	switch mode {
	case "unreachable":
		fmt.Fprintf(os.Stderr, "ssh: connect to host %s port %s: Connection refused\n", host, port)
		return 255
	case "noroute":
		fmt.Fprintf(os.Stderr, "ssh: connect to host %s port %s: No route to host\n", host, port)
		return 255
	case "timedout":
		fmt.Fprintf(os.Stderr, "ssh: connect to host %s port %s: Connection timed out\n", host, port)
		return 255
	case "hang":
		time.Sleep(time.Hour)
		return 255
	}
	alias := opts["hostkeyalias"]
	if alias == "" {
		alias = host
	}
	var server []HostKey
	for _, l := range strings.Split(readString(filepath.Join(dir, "hostkeys")), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			server = append(server, HostKey{Type: f[0], Base64: f[1]})
		}
	}
	if a := opts["hostkeyalgorithms"]; a != "" {
		var keep []HostKey
		for _, k := range server {
			for _, alg := range strings.Split(a, ",") {
				if sshkeys.FamilyOf(alg) == sshkeys.FamilyOf(k.Type) {
					keep = append(keep, k)
					break
				}
			}
		}
		if len(keep) == 0 {
			fmt.Fprintf(os.Stderr, "Unable to negotiate with %s port %s: no matching host key type found. Their offer: %s\n", host, port, server[0].Type)
			return 255
		}
		server = keep
	}
	knownLines := strings.Split(readString(opts["userknownhostsfile"]), "\n")
	// ORDER: prefer a key type that known_hosts lists for the host.
	runHelper(opts["knownhostscommand"], "ORDER", HostKey{Type: "NONE", Base64: "NONE"})
	offered := server[0]
	for _, k := range server {
		if hasType(knownLines, alias, k.Type) {
			offered = k
			break
		}
	}
	lines := append(knownLines, strings.Split(runHelper(opts["knownhostscommand"], "HOSTNAME", offered), "\n")...)
	status := "unknown"
	for _, l := range lines {
		f := strings.Fields(l)
		revoked := len(f) > 0 && f[0] == "@revoked"
		if revoked {
			f = f[1:]
		}
		if len(f) < 3 || f[0] != alias {
			continue
		}
		switch {
		case f[1] == offered.Type && f[2] == offered.Base64 && revoked:
			status = "revoked"
		case f[1] == offered.Type && f[2] == offered.Base64 && status != "revoked":
			status = "ok"
		case f[1] == offered.Type && status == "unknown":
			status = "changed"
		}
	}
	switch status {
	case "changed":
		fmt.Fprintf(os.Stderr, "@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@@@@@@@\nHost key verification failed.\n")
		return 255
	case "unknown", "revoked":
		fmt.Fprintf(os.Stderr, "No %s host key is known for %s and you have requested strict checking.\nHost key verification failed.\n", offered.Type, alias)
		return 255
	}
	if mode == "authfail" {
		fmt.Fprintf(os.Stderr, "root@%s: Permission denied (publickey).\n", host)
		return 255
	}
	l, err := net.Listen("unix", ctl)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake ssh: control socket:", err)
		return 255
	}
	// SIGTERM ends the master as ssh's does ("Killed by signal 15", exit
	// 255), recorded in "terminated"; in mode "term-late" only a second
	// SIGTERM does, as OpenSSH 9.2's master sometimes misses the first.
	terms := make(chan os.Signal, 4)
	signal.Notify(terms, syscall.SIGTERM)
	go func() {
		if mode == "term-late" {
			<-terms
		}
		<-terms
		appendFile(filepath.Join(dir, "terminated"), "SIGTERM\n")
		l.Close()
		fmt.Fprintln(os.Stderr, "Killed by signal 15.")
		os.Exit(255)
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			return 255
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		if spec, ok := strings.CutPrefix(strings.TrimSpace(line), "forward "); ok {
			fmt.Fprintln(c, startForward(spec))
		}
		c.Close()
		if strings.TrimSpace(line) == "exit" {
			l.Close()
			return 0
		}
	}
}

// startForward listens on the socket of "socket:host:port" and proxies
// each connection to host:port; it returns "ok" or why not.
func startForward(spec string) string {
	i := strings.Index(spec, ":")
	if i < 0 {
		return "bad forward " + spec
	}
	sock, target := spec[:i], spec[i+1:]
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err.Error()
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return // as sshd refusing the channel: the socket closes
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c) }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	return "ok"
}

func hasType(lines []string, alias, typ string) bool {
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == alias && f[1] == typ {
			return true
		}
	}
	return false
}

// runHelper runs a KnownHostsCommand as ssh does: split on blanks with
// double quotes, expand the tokens, run without a shell.
func runHelper(template, invocation string, k HostKey) string {
	if template == "" {
		return ""
	}
	var argv []string
	var cur strings.Builder
	inq := false
	for _, r := range template {
		switch {
		case r == '"':
			inq = !inq
		case r == ' ' && !inq:
			if cur.Len() > 0 {
				argv = append(argv, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		argv = append(argv, cur.String())
	}
	fp := "NONE"
	if k.Base64 != "NONE" {
		fp = k.Fingerprint()
	}
	r := strings.NewReplacer("%I", invocation, "%t", k.Type, "%K", k.Base64, "%f", fp, "%%", "%")
	for i := range argv {
		argv[i] = r.Replace(argv[i])
	}
	out, err := exec.Command(argv[0], argv[1:]...).Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake ssh: KnownHostsCommand failed:", err)
		os.Exit(255)
	}
	return string(out)
}

func readString(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func appendFile(p, s string) {
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	f.WriteString(s)
	f.Close()
}
