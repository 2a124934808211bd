package sshkeys

import (
	"bytes"
	//lint:ignore SA1019 DSA keys of clusters upgraded from Ganeti 2.15 or older
	"crypto/dsa"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Pair is a checked key pair: the private key parsed, of the expected kind
// and size, and matching the public key. The private key itself is not kept;
// callers write the text they were given.
type Pair struct {
	Kind   Kind
	Public ssh.PublicKey
	Bits   int
}

// ParsePair checks a private key (unencrypted PEM: OpenSSH, PKCS#1 RSA, SEC1
// EC, PKCS#8 or OpenSSL DSA) and its public key (one OpenSSH public key line, as in a .pub
// file): both parse, both are of kind, they match, and the size is allowed.
// Ganeti wrote host keys without any of these checks, so a mismatched pair
// broke sshd only after the write.
func ParsePair(kind Kind, private, public string) (*Pair, error) {
	switch kind {
	case RSA, ECDSA, Ed25519, DSA:
	default:
		return nil, unknownKind(kind)
	}
	privPub, err := parsePrivate([]byte(private))
	if err != nil {
		return nil, err
	}
	pub, options, err := parsePublicLine(public)
	if err != nil {
		return nil, fmt.Errorf("the public key does not parse: %w", err)
	}
	if len(options) > 0 {
		return nil, errors.New("the public key line has authorized_keys options; a .pub line has none")
	}
	if err := checkKind("public", pub, kind); err != nil {
		return nil, err
	}
	if err := checkKind("private", privPub, kind); err != nil {
		return nil, err
	}
	if !bytes.Equal(privPub.Marshal(), pub.Marshal()) {
		return nil, errors.New("the private key does not match the public key")
	}
	bits := Bits(pub)
	if err := CheckBits(kind, bits); err != nil {
		return nil, err
	}
	return &Pair{Kind: kind, Public: pub, Bits: bits}, nil
}

func checkKind(which string, pub ssh.PublicKey, want Kind) error {
	got, err := KindOf(pub)
	if err != nil {
		return fmt.Errorf("the %s key: %w", which, err)
	}
	if got != want {
		article := "an" // an rsa, an ecdsa, an ed25519
		if got == DSA {
			article = "a"
		}
		return fmt.Errorf("the %s key is %s %s key, not %s", which, article, got, want)
	}
	return nil
}

// privateFormats names the PEM types of unencrypted private keys in words:
// an error must not say "PRIVATE KEY", which log scanners and people take for
// a leaked key.
var privateFormats = map[string]string{
	"OPENSSH PRIVATE KEY": "OpenSSH",
	"RSA PRIVATE KEY":     "PKCS#1 RSA",
	"EC PRIVATE KEY":      "SEC1 EC",
	"PRIVATE KEY":         "PKCS#8",
	"DSA PRIVATE KEY":     "OpenSSL DSA",
}

const unparsable = "the private key does not parse: "

// parsePrivate returns the public half of a PEM private key. Errors from
// x/crypto and crypto/x509 are not wrapped: some quote their input (the PEM
// type, a key type name from the data), so every reason here is our own.
func parsePrivate(data []byte) (ssh.PublicKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		if bytes.Contains(data, []byte("-----BEGIN")) {
			return nil, errors.New(unparsable + "malformed PEM (bad base64, headers or END line)")
		}
		return nil, errors.New(unparsable + "no PEM block found")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New(unparsable + "more data follows the PEM block")
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
		return nil, errPassphrase
	}
	format, ok := privateFormats[block.Type]
	if !ok {
		return nil, errors.New(unparsable + "not an OpenSSH, PKCS#1, SEC1, PKCS#8 or OpenSSL DSA private key")
	}
	raw, err := parseRaw(block, format)
	if err != nil {
		return nil, err
	}
	// The OpenSSH parser returns a pointer, PKCS#8 a value; the signer
	// wants the value.
	if p, ok := raw.(*ed25519.PrivateKey); ok {
		raw = *p
	}
	signer, err := ssh.NewSignerFromKey(raw)
	if err != nil {
		return nil, fmt.Errorf(unparsable+"the %s key has an unsupported algorithm", format)
	}
	return signer.PublicKey(), nil
}

// parseRaw parses a private key block with x/crypto/ssh, and DSA keys in
// OpenSSH's own format, which it cannot read; a DSA key's public value is
// checked against its private one. Every reason is worded here.
func parseRaw(block *pem.Block, format string) (any, error) {
	if block.Type == "OPENSSH PRIVATE KEY" {
		if k, ok, err := parseOpenSSHDSA(block.Bytes); ok {
			if err != nil {
				return nil, err
			}
			return k, checkDSA(k)
		}
	}
	raw, err := ssh.ParseRawPrivateKey(pem.EncodeToMemory(block))
	if err != nil {
		if _, ok := errors.AsType[*ssh.PassphraseMissingError](err); ok {
			return nil, errPassphrase
		}
		return nil, fmt.Errorf(unparsable+"malformed %s key", format)
	}
	if k, ok := raw.(*dsa.PrivateKey); ok {
		return k, checkDSA(k)
	}
	return raw, nil
}

var errPassphrase = errors.New("the private key is passphrase-protected; give it unencrypted")
