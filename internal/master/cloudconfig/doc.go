// Package cloudconfig renders first-boot #cloud-config user-data that makes
// a fresh machine join the cluster in pull mode: it installs the node
// programs, writes the slot's token root-only into a directory closed to
// others before the first byte, runs node-join, removes the token, and runs
// the operator's packages, files and scripts around it.
//
// Every rendering is checked against cloud-init's own published JSON
// Schema (cloudinit/, Apache-2.0) before it is returned. See
// doc/cloud-config.md and doc/render-cloud-config.8.md.
package cloudconfig
