package txn

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BenchmarkLockHandOver is the time for eight open files that ask for one
// lock at once to have held it in turn, 1 ms each, as joins that end
// together queue for the master's record lock: 8 ms plus the hand-overs.
func BenchmarkLockHandOver(b *testing.B) {
	path := filepath.Join(b.TempDir(), "lock")
	for b.Loop() {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f, err := Lock(context.Background(), nil, path)
				if err != nil {
					b.Error(err)
					return
				}
				time.Sleep(time.Millisecond)
				f.Close()
			}()
		}
		wg.Wait()
	}
}

// BenchmarkApply is one transaction writing files new files in two
// directories and one replacing them (backups and all), with the fsyncs
// the crash guarantees need.
func BenchmarkApply(b *testing.B) {
	for _, files := range []int{5, 20} {
		b.Run(fmt.Sprintf("files=%d", files), func(b *testing.B) {
			root := b.TempDir()
			var restarts []string
			opts := testOptions(b, root, &restarts)
			n := 0
			for b.Loop() {
				n++
				var items []Item
				for i := range files {
					items = append(items, item(fmt.Sprintf("d%d/f%d", i%2, i), fmt.Sprint("content ", n), 0o644))
				}
				for _, d := range []string{"d0", "d1"} {
					if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
						b.Fatal(err)
					}
				}
				changes, err := Diff(root, items)
				if err != nil {
					b.Fatal(err)
				}
				tx, err := Begin(context.Background(), opts)
				if err != nil {
					b.Fatal(err)
				}
				if err := tx.Apply(changes); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
