package apply

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nodejoin/nodejoin/internal/fixture"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/txn"
)

const listPath = "/etc/list" // a file each run adds a line to

func load(t *testing.T) *nodeconf.Config {
	t.Helper()
	cfg, err := nodeconf.Load(fixture.NewRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// adder plans listPath with line added to what the file holds at the call,
// as prepare-node-join merges authorized_keys; calls counts its calls.
func adder(cfg *nodeconf.Config, line string, calls *int) Planner {
	return func() (*Plan, error) {
		*calls++
		old, _ := os.ReadFile(cfg.Path(listPath))
		if bytes.Contains(old, []byte(line+"\n")) {
			return &Plan{Items: []txn.Item{item(cfg, old, false)}}, nil
		}
		return &Plan{Items: []txn.Item{item(cfg, append(old, line+"\n"...), false)}}, nil
	}
}

func item(cfg *nodeconf.Config, data []byte, secret bool) txn.Item {
	return txn.Item{NodePath: listPath, Data: data, Mode: 0o644,
		UID: os.Geteuid(), GID: os.Getegid(), Secret: secret}
}

func sum(data string) string {
	s := sha256.Sum256([]byte(data))
	return hex.EncodeToString(s[:])
}

// overtaken is plan, with another run writing theirs to listPath right
// after plan's first call: between the first look and the lock.
func overtaken(t *testing.T, cfg *nodeconf.Config, plan Planner, theirs string) Planner {
	first := true
	return func() (*Plan, error) {
		p, err := plan()
		if first {
			first = false
			if err := txn.WriteFile(cfg.Path(listPath), []byte(theirs), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return p, err
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestRunPlansAgainUnderTheLock: another run writes the file between the
// first plan and the lock; the run must apply and report a plan made from
// that run's file, not its own first one.
func TestRunPlansAgainUnderTheLock(t *testing.T) {
	cfg := load(t)
	calls := 0
	res, err := Run(context.Background(), cfg, quiet(), overtaken(t, cfg, adder(cfg, "mine", &calls), "theirs\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(cfg.Path(listPath))
	if string(got) != "theirs\nmine\n" {
		t.Errorf("file holds %q, want the other run's line kept", got)
	}
	if calls != 2 {
		t.Errorf("planned %d times, want 2", calls)
	}
	if !res.Changed || len(res.Files) != 1 || res.Files[0].Action != txn.Replace || res.Files[0].SHA256 != sum("theirs\nmine\n") {
		t.Errorf("result %+v does not describe the file on disk", res)
	}
}

// TestRunFindsItDoneUnderTheLock: another run made the node so while this
// one waited for the lock; this one then changes nothing and says so.
func TestRunFindsItDoneUnderTheLock(t *testing.T) {
	cfg := load(t)
	calls := 0
	res, err := Run(context.Background(), cfg, quiet(), overtaken(t, cfg, adder(cfg, "mine", &calls), "mine\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.Files[0].Action != txn.Unchanged {
		t.Errorf("result %+v reports a change no one made", res)
	}
	if _, err := os.Lstat(cfg.Path(cfg.StateDir)); err == nil {
		t.Errorf("the state directory is left behind")
	}
}

// TestRunUnchangedTakesNoLock: a run that finds everything so plans once,
// takes no lock and writes nothing.
func TestRunUnchangedTakesNoLock(t *testing.T) {
	cfg := load(t)
	if err := txn.WriteFile(cfg.Path(listPath), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	calls := 0
	res, err := Run(context.Background(), cfg, quiet(), adder(cfg, "mine", &calls), false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || calls != 1 {
		t.Errorf("changed %v after %d plans; want unchanged after 1", res.Changed, calls)
	}
	if _, err := os.Lstat(cfg.Path(filepath.Join(cfg.LockDir, LockFile))); err == nil {
		t.Errorf("a run that changed nothing made the lock file")
	}
}

// TestRunConcurrent runs 20 Runs at once in one process, each adding its
// own line (each opens the lock file itself, so flock serialises them as
// it does processes): no line may be lost.
func TestRunConcurrent(t *testing.T) {
	cfg := load(t)
	const n = 20
	var wg sync.WaitGroup
	sums := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			calls := 0
			res, err := Run(context.Background(), cfg, quiet(), adder(cfg, "line "+strconv.Itoa(i), &calls), false)
			if err != nil {
				t.Error(err)
				return
			}
			sums[i] = res.Files[0].SHA256
		}()
	}
	wg.Wait()
	got, _ := os.ReadFile(cfg.Path(listPath))
	if lines := strings.Count(string(got), "\n"); lines != n {
		t.Errorf("%d of %d lines on disk:\n%s", lines, n, got)
	}
	found := false
	for _, s := range sums {
		found = found || s == sum(string(got))
	}
	if !found {
		t.Errorf("no run reports the file on disk")
	}
}

// TestSecretHasNoDigest: a secret's report and log lines carry no digest of
// its content, which would let anyone confirm a guess of a weak secret.
func TestSecretHasNoDigest(t *testing.T) {
	for _, dryRun := range []bool{true, false} {
		cfg := load(t)
		secret := "correct horse\n"
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		plan := func() (*Plan, error) { return &Plan{Items: []txn.Item{item(cfg, []byte(secret), true)}}, nil }
		res, err := Run(context.Background(), cfg, log, plan, dryRun)
		if err != nil {
			t.Fatal(err)
		}
		if res.Files[0].SHA256 != "" {
			t.Errorf("dry run %v: the secret's report has sha256 %s", dryRun, res.Files[0].SHA256)
		}
		if strings.Contains(logs.String(), sum(secret)) {
			t.Errorf("dry run %v: the log holds the secret's sha256:\n%s", dryRun, &logs)
		}
	}
}

// TestPlanLogLevels: at info level (noded's daemon log, --verbose) a run
// logs one summary line, not a line per file; --debug logs each file.
func TestPlanLogLevels(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		lines int
	}{{slog.LevelInfo, 1}, {slog.LevelDebug, 4}} {
		cfg := load(t)
		var items []txn.Item
		for _, name := range []string{"a", "b", "c"} {
			np := "/etc/" + name
			if err := txn.WriteFile(cfg.Path(np), []byte(name), 0o644); err != nil {
				t.Fatal(err)
			}
			items = append(items, txn.Item{NodePath: np, Data: []byte(name),
				Mode: 0o644, UID: os.Geteuid(), GID: os.Getegid()})
		}
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: tc.level}))
		if _, err := Run(context.Background(), cfg, log, func() (*Plan, error) { return &Plan{Items: items}, nil }, false); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(logs.String(), "\n"); n != tc.lines {
			t.Errorf("at %v: %d log lines, want %d:\n%s", tc.level, n, tc.lines, &logs)
		}
		if tc.level == slog.LevelInfo && strings.Contains(logs.String(), "path=/etc/a") {
			t.Errorf("at info level a file is logged:\n%s", &logs)
		}
	}
}
