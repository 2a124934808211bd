// Lab is `make lab`: a master and N nodes (qa/harness namespace hosts, each
// with its own sshd and the programs installed, as the demo has them) that
// stay up after the command, so that a person can try every program by hand.
//
//	lab up [--nodes N]       start a lab in the background (N nodes, default 2) and print its hosts
//	lab list                 print the hosts of the lab that is up
//	lab shell HOST           an interactive shell in HOST (master, node1, ...)
//	lab run HOST -- CMD...   run CMD in HOST; lab exits with its status
//	lab down                 tear the lab down, and any leftover of a killed one
//
// The lab lives in a background process (lab keep) that holds it as a test
// holds its lab: the hosts die with it, and Sweep removes what a killed one
// left. Every command takes --state DIR (default /run/nodejoin-lab), where
// that process records its pid and the hosts and writes its log. It needs
// root.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/nodejoin/nodejoin/internal/master/install"
	"github.com/nodejoin/nodejoin/qa/clusterlab"
	"github.com/nodejoin/nodejoin/qa/harness"
)

const usage = `usage: lab up [--nodes N] [--bare N] | lab list | lab shell HOST | lab run HOST -- CMD... | lab down
       (each takes --state DIR, default /run/nodejoin-lab)`

// state is what the keeping process records once its lab is up.
type state struct {
	PID    int    `json:"pid"` // the lab keep process
	Prefix string `json:"prefix"`
	Hosts  []host `json:"hosts"`
}

type host struct {
	Name        string `json:"name"`
	IP          string `json:"ip"`
	InitPID     int    `json:"init_pid"`
	Fingerprint string `json:"host_key_fingerprint"` // its sshd's ed25519 key, for node-add
}

// errUsage marks a usage error (exit 2).
var errUsage = errors.New(usage)

// exitError is a command's own exit status, passed on by lab run.
type exitError int

func (e exitError) Error() string { return "exit status " + strconv.Itoa(int(e)) }

func main() {
	err := run(os.Args[1:])
	var code exitError
	switch {
	case err == nil:
	case errors.As(err, &code):
		os.Exit(int(code))
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "lab: error: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	fs := pflag.NewFlagSet("lab "+args[0], pflag.ContinueOnError)
	stateDir := fs.String("state", "/run/nodejoin-lab", "keep the lab's pid, hosts and log in `DIR`")
	nodes := fs.Int("nodes", 2, "start `N` nodes besides master (up)")
	bare := fs.Int("bare", 0, "leave the node-side programs off the last `N` nodes, to try node-add --install (up)")
	fs.SetInterspersed(false) // lab run HOST -- CMD: CMD's flags are its own
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("lab: %w\n%w", err, errUsage)
	}
	rest := fs.Args()
	switch cmd := args[0]; {
	case cmd == "up" && len(rest) == 0 && *nodes >= 1 && *nodes <= 50 && *bare >= 0 && *bare <= *nodes:
		return up(*stateDir, *nodes, *bare)
	case cmd == "keep" && len(rest) == 0:
		return keep(*stateDir, *nodes, *bare)
	case cmd == "list" && len(rest) == 0:
		st, err := readState(*stateDir)
		if err != nil {
			return err
		}
		printHosts(st)
		return nil
	case cmd == "shell" && len(rest) == 1:
		return enter(*stateDir, rest[0], []string{"bash", "-i"})
	case cmd == "run" && len(rest) >= 2:
		argv := rest[1:]
		if argv[0] == "--" {
			argv = argv[1:]
		}
		if len(argv) == 0 {
			return errUsage
		}
		return enter(*stateDir, rest[0], argv)
	case cmd == "down" && len(rest) == 0:
		return down(*stateDir)
	}
	return errUsage
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }
func logPath(dir string) string   { return filepath.Join(dir, "lab.log") }

// readState returns the lab that is up, or an error saying none is.
func readState(dir string) (*state, error) {
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no lab is up (lab up starts one)", dir)
	}
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath(dir), err)
	}
	if !keeping(st.PID) {
		return nil, fmt.Errorf("%s: the lab's process %d is gone (lab down cleans up)", statePath(dir), st.PID)
	}
	return &st, nil
}

// keeping reports whether pid is a running lab keep process.
func keeping(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	return len(args) > 1 && args[1] == "keep"
}

// up starts lab keep detached and waits until it has recorded its lab.
func up(dir string, nodes, bare int) error {
	if st, err := readState(dir); err == nil {
		return fmt.Errorf("a lab is up already (pid %d, lab %s): lab down first", st.PID, st.Prefix)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	_ = os.Remove(statePath(dir)) // a dead keeper's
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(logPath(dir), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(self, "keep", "--nodes", strconv.Itoa(nodes), "--bare", strconv.Itoa(bare), "--state", dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session: the terminal's ^C and hang-up do not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	fmt.Printf("lab: building the programs and starting master and %d nodes (log: %s)\n", nodes, logPath(dir))
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(5 * time.Minute)
	for {
		select {
		case err := <-exited:
			if err == nil {
				err = errors.New("lab keep exited")
			}
			log, _ := os.ReadFile(logPath(dir))
			return fmt.Errorf("the lab did not come up (%w):\n%s", err, strings.TrimSpace(string(log)))
		case <-deadline:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return errors.New("the lab did not come up within 5 minutes; lab down cleans up")
		case <-time.After(200 * time.Millisecond):
		}
		if st, err := readState(dir); err == nil {
			printHosts(st)
			m := st.Hosts[0]
			fmt.Printf("\nTry:\n  lab run master -- cluster-init --cluster-name %s --master-ip %s\n", clusterlab.ClusterName, m.IP)
			var pins, names []string
			for _, h := range st.Hosts[1:] {
				pins = append(pins, "--host-key-fingerprint "+h.Name+"="+h.Fingerprint)
				names = append(names, h.Name)
			}
			if bare > 0 {
				fmt.Printf("  (the last %d nodes have no node-side programs: node-add --install puts them there)\n", bare)
				fmt.Printf("  lab run master -- node-add --install %s %s\n", strings.Join(pins, " "), strings.Join(names, " "))
			} else {
				fmt.Printf("  lab run master -- node-add %s %s\n", strings.Join(pins, " "), strings.Join(names, " "))
			}
			fmt.Printf("  lab run master -- node-list --check\n  lab shell %s\n  lab down\n", st.Hosts[1].Name)
			return nil
		}
	}
}

func printHosts(st *state) {
	fmt.Printf("lab %s (pid %d):\n", st.Prefix, st.PID)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  HOST\tADDRESS\tSSH HOST KEY (ed25519)")
	for _, h := range st.Hosts {
		fmt.Fprintf(w, "  %s\t%s\t%s\n", h.Name, h.IP, h.Fingerprint)
	}
	w.Flush()
}

// keep starts the lab, records it and holds it until SIGTERM (lab down) or
// SIGINT: harness.Program tears it down then.
func keep(dir string, nodes, bare int) error {
	p := harness.NewProgram("lab")
	l := clusterlab.New(p, harness.Options{Nodes: nodes})
	for _, h := range l.Nodes[nodes-bare:] {
		for _, prog := range install.Programs {
			if err := os.Remove(h.Path("/usr/local/sbin/" + prog)); err != nil {
				p.Fatalf("%v", err)
			}
		}
	}
	st := state{PID: os.Getpid(), Prefix: l.Prefix}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, h := range l.Hosts() {
		fp, err := clusterlab.Fingerprint(ctx, h, "/etc/ssh/ssh_host_ed25519_key.pub")
		if err != nil {
			p.Fatalf("%v", err)
		}
		st.Hosts = append(st.Hosts, host{Name: h.Name, IP: h.IP().String(), InitPID: h.InitPID(), Fingerprint: fp})
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		p.Fatalf("%v", err)
	}
	p.Cleanup(func() { _ = os.Remove(statePath(dir)) })
	tmp := statePath(dir) + ".new"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		p.Fatalf("%v", err)
	}
	if err := os.Rename(tmp, statePath(dir)); err != nil {
		p.Fatalf("%v", err)
	}
	p.Logf("lab %s is up", l.Prefix)
	for {
		time.Sleep(time.Hour)
	}
}

// enter runs argv in the named host with the terminal's standard streams.
func enter(dir, name string, argv []string) error {
	st, err := readState(dir)
	if err != nil {
		return err
	}
	var names []string
	for _, h := range st.Hosts {
		if h.Name != name {
			names = append(names, h.Name)
			continue
		}
		cmd := harness.EnterCommand(context.Background(), h.InitPID, argv...)
		cmd.Env = append(cmd.Env, `PS1=\u@\h (lab `+st.Prefix+`):\w\$ `)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Exited() {
			return exitError(ee.ExitCode())
		}
		return err
	}
	return fmt.Errorf("%s: no such host in lab %s (hosts: %s)", name, st.Prefix, strings.Join(names, ", "))
}

// down stops the keeping process, waits until its lab is gone, sweeps what
// a killed one left and removes the state directory.
func down(dir string) error {
	b, err := os.ReadFile(statePath(dir))
	if err == nil {
		var st state
		if err := json.Unmarshal(b, &st); err == nil && keeping(st.PID) {
			fmt.Printf("lab: tearing lab %s down\n", st.Prefix)
			_ = syscall.Kill(st.PID, syscall.SIGTERM)
			for i := 0; keeping(st.PID); i++ {
				if i == 600 { // 60 s: its hosts die with it (Pdeathsig)
					_ = syscall.Kill(st.PID, syscall.SIGKILL)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := harness.Sweep(); err != nil {
		return fmt.Errorf("removing leftovers: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	fmt.Println("lab: down; nothing is left behind (namespaces, processes, mounts, lab files)")
	return nil
}
