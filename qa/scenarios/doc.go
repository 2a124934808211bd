// Package scenarios holds the end-to-end tests of issue 4: cluster-init and
// node-add against real hosts (qa/harness namespace labs, each with its own
// OpenSSH sshd). As root they all run, each in its own lab and in parallel;
// elsewhere each skips with one line saying why.
package scenarios
