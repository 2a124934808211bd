package joinservice

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
)

// FilesDirName is the folder of the state directory whose node programs
// join-service serves (/var/lib/nodejoin/node-files): copies of the
// nodejoin-node package's programs, put there by the administrator.
const FilesDirName = "node-files"

// MaxNodeFile bounds a served program.
const MaxNodeFile = 256 << 20

// FilesDir is the node programs' folder on the master whose root is root.
func FilesDir(root string) (string, error) {
	cfg, err := nodeconf.Load(root)
	if err != nil {
		return "", err
	}
	return cfg.Path(filepath.Join(cfg.StateDir, FilesDirName)), nil
}

// openNodeFile opens one of joinapi.NodePrograms in dir: a regular file
// inside dir (os.Root: no link leads out of it), at most MaxNodeFile.
func openNodeFile(dir, name string) (*os.File, fs.FileInfo, error) {
	if !slices.Contains(joinapi.NodePrograms, name) && !slices.Contains(joinapi.OptionalNodePrograms, name) {
		return nil, nil, fs.ErrNotExist
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = root.Close() }()
	f, err := root.Open(name)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	switch {
	case err != nil:
	case !st.Mode().IsRegular():
		err = fmt.Errorf("%s: not a regular file", name)
	case st.Size() > MaxNodeFile:
		err = fmt.Errorf("%s: %d bytes, more than %d", name, st.Size(), MaxNodeFile)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, st, nil
}

// NodeFile is a served program and its SHA-256 (hex).
type NodeFile struct {
	Name   string
	SHA256 string
}

// NodeFiles digests every program in dir, in joinapi.NodePrograms' order,
// then the optional ones that are there; the renderer pins each by its
// digest. A missing program is an error: a machine needs all of them.
func NodeFiles(dir string) ([]NodeFile, error) {
	var out []NodeFile
	for _, name := range append(append([]string(nil), joinapi.NodePrograms...), joinapi.OptionalNodePrograms...) {
		f, _, err := openNodeFile(dir, name)
		if errors.Is(err, fs.ErrNotExist) && slices.Contains(joinapi.OptionalNodePrograms, name) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, name), unwrapPath(err))
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, name), err)
		}
		out = append(out, NodeFile{Name: name, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	return out, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// serveFile: GET /v1/files/{name} answers one node program, without a
// secret: the programs are public, and the machine checks each against
// the SHA-256 its user-data pins.
func (s *Service) serveFile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	dir, err := FilesDir(s.o.Root)
	if err != nil {
		s.log.Error("node files", "err", err)
		writeJSON(w, http.StatusInternalServerError, joinapi.Error{Code: joinapi.CodeInternal, Message: "internal error"})
		return
	}
	f, st, err := openNodeFile(dir, name)
	if err != nil {
		s.log.Info("node file refused", "name", clip(name), "peer", peer(r), "err", err)
		writeJSON(w, http.StatusNotFound, joinapi.Error{Code: joinapi.CodeNotFound, Message: "no such node program"})
		return
	}
	defer f.Close()
	s.log.Info("node file", "name", name, "peer", peer(r), "bytes", st.Size())
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, name, st.ModTime(), f)
}
