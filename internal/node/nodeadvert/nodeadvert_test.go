package nodeadvert

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/advert"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
)

// avahi-daemon reloads a service file only when its mtime in whole seconds
// changed: NextSecond returns only once a write would get another second.
func TestNextSecond(t *testing.T) {
	root := t.TempDir()
	cfg := &nodeconf.Config{Root: root}
	p := filepath.Join(root, advert.ServiceFile)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := NextSecond(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		if now := time.Now(); now.Unix() <= fi.ModTime().Unix() {
			t.Fatalf("NextSecond returned at %v, in the second of the file's mtime %v", now, fi.ModTime())
		}
	}
}
