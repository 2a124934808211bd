package cluster

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nodejoin/nodejoin/internal/master/sshrun"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

// HostKeyPair is one of the master's SSH host key pairs: its kind and
// both files' content.
type HostKeyPair struct{ Kind, Private, Public string }

// ReadHostKeys reads the master's complete host key pairs (private and
// public file both present), as Ganeti's _ReadSshKeys does. A rotation
// (cluster-renew) replaces the private file and then the public one, each
// atomically: a pair read between the two does not match, and is read
// again for up to 100 ms. A pair that still does not match is returned as
// it is (a master set up by hand; the node refuses it with its own error).
func ReadHostKeys(cfg *nodeconf.Config) ([]HostKeyPair, error) {
	for range 20 {
		keys, matched, err := readHostKeys(cfg)
		if err != nil || matched {
			return keys, err
		}
		time.Sleep(5 * time.Millisecond)
	}
	keys, _, err := readHostKeys(cfg)
	return keys, err
}

// readHostKeys reads the pairs and says whether each pair matches.
func readHostKeys(cfg *nodeconf.Config) (out []HostKeyPair, matched bool, err error) {
	matched = true
	for _, k := range sshkeys.HostKinds {
		kind := string(k)
		base := cfg.Path(filepath.Join(cfg.SSHConfigDir, HostKeyPrefix+kind+"_key"))
		priv, err1 := os.ReadFile(base)
		pub, err2 := os.ReadFile(base + ".pub")
		if errors.Is(err1, fs.ErrNotExist) && errors.Is(err2, fs.ErrNotExist) {
			continue
		}
		if err1 != nil || err2 != nil {
			return nil, false, fmt.Errorf("reading the %s host key %s: %w", kind, base, errors.Join(err1, err2))
		}
		if !pairMatches(k, priv, pub) {
			matched = false
		}
		out = append(out, HostKeyPair{Kind: kind, Private: string(priv), Public: strings.TrimSpace(string(pub)) + "\n"})
	}
	return out, matched, nil
}

// matchedPairs holds a hash of each pair found to match. Checking a pair
// parses its private key, which for RSA is milliseconds of Go's key
// validation, and every join reads the pairs twice (for its documents, then
// to see whether a rotation made them stale); the files change only in a
// rotation, and a torn read hashes differently.
var matchedPairs sync.Map // [sha256.Size]byte -> struct{}

func pairMatches(k sshkeys.Kind, priv, pub []byte) bool {
	h := sha256.New()
	for _, b := range [][]byte{[]byte(k), priv, pub} {
		_ = binary.Write(h, binary.BigEndian, uint64(len(b)))
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if _, ok := matchedPairs.Load(sum); ok {
		return true
	}
	if _, err := sshkeys.ParsePair(k, string(priv), string(pub)); err != nil {
		return false
	}
	matchedPairs.Store(sum, struct{}{})
	return true
}

// ParsePublic reads "type base64 [comment]", checked by sshkeys.
func ParsePublic(line string) (sshrun.HostKey, error) {
	if _, err := sshkeys.ParsePublicLine(strings.TrimSpace(line)); err != nil {
		return sshrun.HostKey{}, err
	}
	f := strings.Fields(line)
	return sshrun.HostKey{Type: f[0], Base64: f[1]}, nil
}
