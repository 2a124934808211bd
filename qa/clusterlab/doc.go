// Package clusterlab turns a harness lab into a nodejoin cluster under
// test: it builds the programs with build.sh, installs them on every host,
// gives each host a node.json for the lab (sshd checked and restarted by the
// harness's nj-check-sshd and nj-restart-sshd), runs cluster-init on master
// and node-add from it, and reads back what a node now holds. The
// scenarios (qa/scenarios), the demo (qa/demo) and the benchmarks
// (qa/bench) share it.
package clusterlab
