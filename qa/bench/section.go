package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/qa/clusterlab"
)

// section is a part of doc/benchmarks.md that a run of its own writes
// between two marker lines (`-pull`, `-register`); every other run keeps
// it as it is.
type section struct {
	name       string // what the run measures, for its messages
	begin, end string
	command    []string // the go test benchmark the section states
	// render is the section's text between the markers, from the
	// command's standard output.
	render func(stdout, loadBefore string, took time.Duration) (string, error)
}

// sections are every section a run of its own writes.
var sections = []*section{pullSection, registerSection}

// in is the section in doc with its marker lines, or "".
func (s *section) in(doc string) string {
	i, j := strings.Index(doc, s.begin), strings.Index(doc, s.end)
	if i < 0 || j < i {
		return ""
	}
	return doc[i:j+len(s.end)] + "\n"
}

// splice puts text, the section with its marker lines, in place of the
// section in doc, or at doc's end.
func (s *section) splice(doc, text string) string {
	i, j := strings.Index(doc, s.begin), strings.Index(doc, s.end)
	if i >= 0 && j > i {
		return doc[:i] + text + strings.TrimPrefix(doc[j+len(s.end):], "\n")
	}
	if doc != "" && !strings.HasSuffix(doc, "\n\n") {
		doc = strings.TrimRight(doc, "\n") + "\n\n"
	}
	return doc + text
}

// run runs the section's benchmark in the module root and writes the
// section into out (a file of the module, or - for standard output).
func (s *section) run(out string) error {
	root, err := clusterlab.ModuleRoot()
	if err != nil {
		return err
	}
	before, start := loadAvg(), time.Now()
	cmd := exec.Command(s.command[0], s.command[1:]...)
	cmd.Dir = root
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&stdout, os.Stderr), os.Stderr
	fmt.Fprintf(os.Stderr, "bench: %s\n", strings.Join(s.command, " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(s.command, " "), err)
	}
	body, err := s.render(stdout.String(), before, time.Since(start))
	if err != nil {
		return err
	}
	text := s.begin + "\n" + body + s.end + "\n"
	if out == "-" {
		fmt.Print(text)
		return nil
	}
	p := out
	if !filepath.IsAbs(p) {
		p = filepath.Join(root, p)
	}
	old, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.WriteFile(p, []byte(s.splice(string(old), text)), 0o644); err != nil {
		return err
	}
	fmt.Print(text)
	fmt.Fprintf(os.Stderr, "bench: wrote the %s section of %s\n", s.name, p)
	return nil
}

// written is when, how long and on what a section's run ran, its first
// lines.
func written(flag string, took time.Duration, loadBefore string, extra string) string {
	return fmt.Sprintf("Written by `go run ./qa/bench %s` (a step of `make bench`) on %s in %v, on %s, %d cores\n"+
		"(%s, Go %s%s). The machine is shared: load average (1, 5, 15 min) %s before, %s after.\n",
		flag, time.Now().UTC().Format("2006-01-02 15:04 UTC"), took.Round(time.Second), cpuModel(), runtime.NumCPU(),
		memTotal(), strings.TrimPrefix(runtime.Version(), "go"), extra, loadBefore, loadAvg())
}
