package sshkeys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Generate makes a new key pair of kind and size (0 bits means DefaultBits).
// The private key is in OpenSSH format, unencrypted, as ssh-keygen writes it,
// except DSA's, in OpenSSL's PEM form (which ssh-keygen reads as well); the
// public key is one line "type base64 comment\n" (no comment, no space).
func Generate(kind Kind, bits int, comment string) (privatePEM, publicLine []byte, err error) {
	if bits == 0 {
		bits = DefaultBits(kind)
	}
	if err := CheckBits(kind, bits); err != nil {
		return nil, nil, err
	}
	if strings.ContainsAny(comment, "\r\n") {
		return nil, nil, errors.New("the key comment must be one line")
	}
	var public crypto.PublicKey
	var block *pem.Block
	switch kind {
	case RSA, ECDSA, Ed25519:
		var priv crypto.Signer
		switch kind {
		case RSA:
			priv, err = rsa.GenerateKey(rand.Reader, bits)
		case ECDSA:
			curve := map[int]elliptic.Curve{256: elliptic.P256(), 384: elliptic.P384(), 521: elliptic.P521()}[bits]
			priv, err = ecdsa.GenerateKey(curve, rand.Reader)
		default:
			_, priv, err = ed25519.GenerateKey(rand.Reader)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("generating an %s key: %w", kind, err)
		}
		if block, err = ssh.MarshalPrivateKey(priv, comment); err != nil {
			return nil, nil, fmt.Errorf("encoding the %s private key: %w", kind, err)
		}
		public = priv.Public()
	case DSA:
		k, b, err := generateDSA()
		if err != nil {
			return nil, nil, fmt.Errorf("generating a dsa key: %w", err)
		}
		block, public = b, &k.PublicKey
	}
	pub, err := ssh.NewPublicKey(public)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the %s public key: %w", kind, err)
	}
	publicLine = ssh.MarshalAuthorizedKey(pub) // "type base64\n"
	if comment != "" {
		publicLine = append(publicLine[:len(publicLine)-1], " "+comment+"\n"...)
	}
	return pem.EncodeToMemory(block), publicLine, nil
}
