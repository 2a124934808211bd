package clusterlab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// ModuleRoot finds the directory of go.mod from the working directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in the working directory or above")
		}
		dir = parent
	}
}

// BinEnv names a directory of binaries that Build returns instead of
// building: a test that runs a lab in a child process builds first and
// passes it on, so that the child writes no build cache.
const BinEnv = "NJQA_BIN"

// Build runs ./build.sh once per process and returns the bin directory it
// filled: the same binaries an operator installs.
func Build() (string, error) {
	buildOnce.Do(func() {
		if dir := os.Getenv(BinEnv); dir != "" {
			buildDir = dir
			return
		}
		root, err := ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("./build.sh")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("./build.sh: %w\n%s", err, out)
			return
		}
		buildDir = filepath.Join(root, "bin")
	})
	return buildDir, buildErr
}

// BuildFailpoint builds pkg (e.g. "./cmd/prepare-node-join") with -tags
// failpoint into the file out: NODEJOIN_CRASH_AT=N in its environment then
// kills it with SIGKILL at its Nth crash point (internal/txn).
func BuildFailpoint(pkg, out string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-tags", "failpoint", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -tags failpoint %s: %w\n%s", pkg, err, b)
	}
	return nil
}
