package harness_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/qa/harness"
)

// TestHelperHoldLab is not a test: the tests below run it in a child test
// process, which starts a lab, prints it, and waits to be signalled.
func TestHelperHoldLab(t *testing.T) {
	if os.Getenv("NJQA_HOLD_LAB") != "1" {
		t.Skip("helper process for TestKilledRun and TestInterruptedRun")
	}
	lab := harness.New(t, harness.Options{Nodes: 1})
	var pids []string
	for _, h := range lab.Hosts() {
		pids = append(pids, fmt.Sprint(h.InitPID()))
	}
	fmt.Printf("lab %s %s %s\n", lab.Prefix, lab.Dir, strings.Join(pids, ","))
	time.Sleep(time.Minute)
}

type heldLab struct {
	cmd         *exec.Cmd
	prefix, dir string
	pids        []int
}

func holdLab(t *testing.T) heldLab {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLab$", "-test.count=1")
	cmd.Env = append(os.Environ(), "NJQA_HOLD_LAB=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = harness.Sweep() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var h heldLab
		var pids string
		if _, err := fmt.Sscanf(sc.Text(), "lab %s %s %s", &h.prefix, &h.dir, &pids); err == nil {
			for _, p := range strings.Split(pids, ",") {
				var pid int
				fmt.Sscan(p, &pid)
				h.pids = append(h.pids, pid)
			}
			h.cmd = cmd
			return h
		}
	}
	t.Fatalf("helper printed no lab: %v", sc.Err())
	return heldLab{}
}

func (h heldLab) signalAndWait(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := h.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	_ = h.cmd.Wait()
}

// The tests in this file are not parallel: they run before the parallel
// ones, so no concurrent New sweeps the killed lab before they look at it.

// A test process killed outright takes its hosts along (Pdeathsig) and
// leaves namespaces and the lab dir, which Sweep removes.
func TestKilledRunIsSwept(t *testing.T) {
	harness.Require(t)
	h := holdLab(t)
	h.signalAndWait(t, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range h.pids {
		for processExists(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if processExists(pid) {
			t.Errorf("host pid 1 %d outlived the killed test process", pid)
		}
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); !strings.Contains(string(out), h.prefix) {
		t.Fatalf("no leftover namespaces of %s to sweep; ip netns list:\n%s", h.prefix, out)
	}
	if err := harness.Sweep(); err != nil {
		t.Fatal(err)
	}
	checkGone(t, h.prefix, h.dir, h.pids)
}

// SIGINT reaches Main's handler, which closes the open labs before the
// process dies of the signal.
func TestInterruptedRunCleansUp(t *testing.T) {
	harness.Require(t)
	h := holdLab(t)
	h.signalAndWait(t, syscall.SIGINT)
	if ws, ok := h.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("helper ended with %v, want death by SIGINT", h.cmd.ProcessState)
	}
	checkGone(t, h.prefix, h.dir, h.pids)
}

// processExists reports a live (not zombie) process.
func processExists(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
