package sshkeys

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// ParsePublicLine parses one authorized_keys or .pub line: optional options,
// key type, base64 key, optional comment. Trailing CR and LF are allowed;
// more than one line is not.
func ParsePublicLine(line string) (ssh.PublicKey, error) {
	pub, _, err := parsePublicLine(line)
	return pub, err
}

func parsePublicLine(line string) (ssh.PublicKey, []string, error) {
	line = strings.TrimRight(line, "\r\n")
	switch trimmed := strings.TrimSpace(line); {
	case strings.ContainsAny(line, "\r\n"):
		return nil, nil, errors.New("more than one line")
	case trimmed == "":
		return nil, nil, errors.New("empty line")
	case trimmed[0] == '#':
		return nil, nil, errors.New("a comment line, not a key")
	}
	pub, _, options, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		// x/crypto's errors quote the line; say what is wrong in our words.
		return nil, nil, whyNotPublic(line)
	}
	return pub, options, nil
}

// keyTypes are the type names OpenSSH writes in front of a key.
var keyTypes = map[string]bool{
	ssh.KeyAlgoRSA: true, "ssh-dss": true, // deprecated in x/crypto; recognised to be refused
	ssh.KeyAlgoECDSA256: true, ssh.KeyAlgoECDSA384: true, ssh.KeyAlgoECDSA521: true,
	ssh.KeyAlgoED25519: true, ssh.KeyAlgoSKECDSA256: true, ssh.KeyAlgoSKED25519: true,
	ssh.CertAlgoRSAv01: true, "ssh-dss-cert-v01@openssh.com": true,
	ssh.CertAlgoECDSA256v01: true, ssh.CertAlgoECDSA384v01: true, ssh.CertAlgoECDSA521v01: true,
	ssh.CertAlgoED25519v01: true, ssh.CertAlgoSKECDSA256v01: true, ssh.CertAlgoSKED25519v01: true,
}

// whyNotPublic gives the reason a line that x/crypto refused does not parse.
// It names only the key type, which is not secret; never the data.
func whyNotPublic(line string) error {
	fields := strings.Fields(line)
	i := 0
	for i < len(fields) && !keyTypes[fields[i]] {
		i++
	}
	switch {
	case i == len(fields):
		return errors.New("no key type such as ssh-ed25519 found")
	case i+1 == len(fields):
		return errors.New("the key data is missing")
	}
	blob, err := base64.StdEncoding.DecodeString(fields[i+1])
	if err != nil {
		return errors.New("the key data is not base64")
	}
	pub, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return fmt.Errorf("the key data is not a valid %s key", fields[i])
	}
	if pub.Type() != fields[i] {
		return fmt.Errorf("the key data holds %s, but the line says %s", pub.Type(), fields[i])
	}
	return errors.New("the options before the key type do not parse")
}
