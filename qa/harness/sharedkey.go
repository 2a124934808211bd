package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

var (
	sharedRSAOnce           sync.Once
	sharedRSA, sharedRSAPub []byte // private key and public line
	sharedRSAErr            error
)

// writeSharedRSAKey writes the process's shared RSA host key pair to dst and
// dst.pub. It is generated on first use and kept in memory only: the
// scratch directory ssh-keygen writes to is removed at once.
func writeSharedRSAKey(dst string) error {
	sharedRSAOnce.Do(func() {
		if sharedRSAErr = os.MkdirAll(baseDir, 0o700); sharedRSAErr != nil {
			return
		}
		dir, err := os.MkdirTemp(baseDir, ".rsa-")
		if err != nil {
			sharedRSAErr = err
			return
		}
		defer os.RemoveAll(dir)
		k := filepath.Join(dir, "key")
		if out, err := exec.Command("ssh-keygen", "-q", "-N", "", "-C", "root@lab", "-t", "rsa", "-f", k).CombinedOutput(); err != nil {
			sharedRSAErr = fmt.Errorf("ssh-keygen -t rsa: %s", firstLine(out, err))
			return
		}
		if sharedRSA, sharedRSAErr = os.ReadFile(k); sharedRSAErr == nil {
			sharedRSAPub, sharedRSAErr = os.ReadFile(k + ".pub")
		}
	})
	if sharedRSAErr != nil {
		return sharedRSAErr
	}
	if err := os.WriteFile(dst, sharedRSA, 0o600); err != nil {
		return err
	}
	return os.WriteFile(dst+".pub", sharedRSAPub, 0o644)
}
