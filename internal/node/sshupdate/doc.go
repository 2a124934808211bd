// Package sshupdate plans ssh-update: the instructions of Ganeti's
// ssh_update document for the login user's authorized_keys and the
// cluster's public key file (ganeti_pub_keys), and a new key pair for the
// login user, all in one transaction. Ganeti's tool applies them one file
// after another and leaves the first changed when a later one fails.
package sshupdate
