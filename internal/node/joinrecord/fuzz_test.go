package joinrecord

import (
	"path"
	"testing"
)

// FuzzDecode: any record is refused or decoded into clean absolute paths
// and backups beside their files, never a panic.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"cluster_name": "c", "files": [{"path": "/etc/ssh/k", "before": {"mode": 384, "uid": 0, "gid": 0, "sha256": "x", "backup": "/etc/ssh/k.backup-2026-01-01_00_00_00.abcdefgh"}, "wrote": null}], "dirs": [{"path": "/root/.ssh", "before": null}]}`))
	f.Add([]byte(`{"cluster_name": "c", "files": [null], "dirs": []}`))
	f.Add([]byte(`{"cluster_name": "c", "files": [{"path": "/etc/../shadow"}], "dirs": []}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decode(data)
		if err != nil {
			return
		}
		for _, fl := range r.Files {
			if !path.IsAbs(fl.Path) || path.Clean(fl.Path) != fl.Path {
				t.Fatalf("accepted path %q", fl.Path)
			}
			for _, b := range fl.Backups {
				if path.Dir(b) != path.Dir(fl.Path) {
					t.Fatalf("accepted backup %q of %q", b, fl.Path)
				}
			}
			if fl.Before != nil && fl.Before.Backup != "" && path.Dir(fl.Before.Backup) != path.Dir(fl.Path) {
				t.Fatalf("accepted backup %q of %q", fl.Before.Backup, fl.Path)
			}
		}
	})
}
