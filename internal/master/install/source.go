package install

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Programs are the node-side programs --install puts on a node: the
// nodejoin-node package's, in tools/programs' order (dist's
// TestInstallProgramsArePackaged keeps the two lists equal).
var Programs = []string{"prepare-node-join", "node-daemon-setup", "noded", "node-join", "callback-setup", "node-cleanup", "ssh-update", "ssl-update", "join-advertise"}

// DefaultDir is where the nodejoin-master package ships the node-side
// programs for --install (doc/packaging.md).
const DefaultDir = "/usr/lib/nodejoin/node"

// maxBinary bounds a program read into memory: ours are about 10 MB.
const maxBinary = 128 << 20

// Binary is one program as the master will send it.
type Binary struct {
	Name    string
	Data    []byte
	Sum     string // sha256, hex
	Version string // what its --version says, without the program's name
}

// Source is the master's copy of the node-side programs, read once for
// every node of a run.
type Source struct {
	Dir      string
	Arch     string // GOARCH of the binaries (from their ELF header)
	Binaries []Binary
}

// Load reads every program of Programs from dir, checks that they are
// ELF executables of one architecture, and asks each for its version
// (it runs them, so they must be for this master's architecture).
func Load(ctx context.Context, dir string) (*Source, error) {
	src := &Source{Dir: dir}
	for _, name := range Programs {
		p := filepath.Join(dir, name)
		data, err := readBinary(p)
		if err != nil {
			return nil, err
		}
		arch, err := elfArch(p)
		if err != nil {
			return nil, err
		}
		if src.Arch == "" {
			src.Arch = arch
		} else if arch != src.Arch {
			return nil, fmt.Errorf("%s: built for %s, the other programs in %s for %s", p, arch, dir, src.Arch)
		}
		if arch != runtime.GOARCH {
			return nil, fmt.Errorf("%s: built for %s; node-add asks each program for its version by running it, which this %s master cannot", p, arch, runtime.GOARCH)
		}
		v, err := askVersion(ctx, p, name)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		src.Binaries = append(src.Binaries, Binary{Name: name, Data: data, Sum: hex.EncodeToString(sum[:]), Version: v})
	}
	return src, nil
}

func readBinary(p string) ([]byte, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("reading the node-side program: %w", err)
	}
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s: not a regular file", p)
	case fi.Mode().Perm()&0o111 == 0:
		return nil, fmt.Errorf("%s: not executable", p)
	case fi.Size() > maxBinary:
		return nil, fmt.Errorf("%s: %d bytes, more than a node-side program can be (%d)", p, fi.Size(), maxBinary)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading the node-side program: %w", err)
	}
	return data, nil
}

// elfArch is the GOARCH of an ELF executable.
func elfArch(p string) (string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return "", fmt.Errorf("%s: not an ELF executable: %w", p, err)
	}
	defer func() { _ = f.Close() }()
	switch {
	case f.Machine == elf.EM_X86_64:
		return "amd64", nil
	case f.Machine == elf.EM_AARCH64:
		return "arm64", nil
	case f.Machine == elf.EM_386:
		return "386", nil
	case f.Machine == elf.EM_ARM:
		return "arm", nil
	case f.Machine == elf.EM_RISCV && f.Class == elf.ELFCLASS64:
		return "riscv64", nil
	case f.Machine == elf.EM_PPC64 && f.Data == elf.ELFDATA2LSB:
		return "ppc64le", nil
	case f.Machine == elf.EM_S390:
		return "s390x", nil
	}
	return "", fmt.Errorf("%s: an ELF executable for %v, which node-add does not know", p, f.Machine)
}

// unameArch is the GOARCH of a machine uname -m names ("" if unknown).
func unameArch(m string) string {
	switch {
	case m == "x86_64" || m == "amd64":
		return "amd64"
	case m == "aarch64" || m == "arm64" || m == "armv8l":
		return "arm64"
	case len(m) == 4 && m[0] == 'i' && strings.HasSuffix(m, "86"):
		return "386"
	case strings.HasPrefix(m, "armv"):
		return "arm"
	case m == "riscv64" || m == "ppc64le" || m == "s390x":
		return m
	}
	return ""
}

// askVersion runs "p --version", which prints "name VERSION".
func askVersion(ctx context.Context, p, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, p, "--version")
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s --version: %w", p, err)
	}
	v, ok := versionOf(out.String(), name)
	if !ok {
		return "", fmt.Errorf("%s --version printed %q, not %q and a version", p, strings.TrimSpace(out.String()), name)
	}
	return v, nil
}

// versionOf takes the version out of a --version line "name VERSION".
func versionOf(line, name string) (string, bool) {
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != name {
		return "", false
	}
	return f[1], true
}
