package sshkeys

import (
	"bytes"
	//lint:ignore SA1019 DSA keys of clusters upgraded from Ganeti 2.15 or older
	"crypto/dsa"
	"crypto/rand"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"

	"golang.org/x/crypto/ssh"
)

// dsaBits is the only DSA size OpenSSH uses (FIPS 186-2: L=1024, N=160),
// and so Ganeti's SSH_KEY_VALID_BITS for dsa.
const dsaBits = 1024

// openSSL DSA private key ("DSA PRIVATE KEY"): the layout of OpenSSL's
// DSAPrivateKey, which ssh-keygen reads and x/crypto/ssh parses.
type openSSLDSA struct {
	Version       int
	P, Q, G, Y, X *big.Int
}

// generateDSA makes a 1024-bit DSA key in OpenSSL's PEM form:
// x/crypto/ssh cannot write DSA keys in OpenSSH's own format.
func generateDSA() (*dsa.PrivateKey, *pem.Block, error) {
	var k dsa.PrivateKey
	if err := dsa.GenerateParameters(&k.Parameters, rand.Reader, dsa.L1024N160); err != nil {
		return nil, nil, err
	}
	if err := dsa.GenerateKey(&k, rand.Reader); err != nil {
		return nil, nil, err
	}
	der, err := asn1.Marshal(openSSLDSA{P: k.P, Q: k.Q, G: k.G, Y: k.Y, X: k.X})
	if err != nil {
		return nil, nil, err
	}
	return &k, &pem.Block{Type: "DSA PRIVATE KEY", Bytes: der}, nil
}

const openSSHMagic = "openssh-key-v1\x00"

// sshDSS is DSA's SSH name (x/crypto/ssh's deprecated InsecureKeyAlgoDSA).
const sshDSS = "ssh-dss"

// parseOpenSSHDSA reads an unencrypted DSA key in OpenSSH's format (what
// ssh-keygen -t dsa writes since OpenSSH 7.8), which x/crypto/ssh does not
// read (PROTOCOL.key). ok is false for a key of another type: the caller
// leaves those to x/crypto/ssh. Errors never include key data.
func parseOpenSSHDSA(data []byte) (key *dsa.PrivateKey, ok bool, err error) {
	if !bytes.HasPrefix(data, []byte(openSSHMagic)) {
		return nil, false, nil
	}
	var w struct {
		CipherName, KdfName, KdfOpts string
		NumKeys                      uint32
		PubKey, PrivKeyBlock         []byte
	}
	if ssh.Unmarshal(data[len(openSSHMagic):], &w) != nil || w.NumKeys != 1 {
		return nil, false, nil // x/crypto/ssh says what is wrong
	}
	pub, err := ssh.ParsePublicKey(w.PubKey)
	if err != nil || pub.Type() != sshDSS {
		return nil, false, nil
	}
	if w.CipherName != "none" || w.KdfName != "none" {
		return nil, true, errPassphrase
	}
	var pk struct {
		Check1, Check2 uint32
		KeyType        string
		Rest           []byte `ssh:"rest"`
	}
	if ssh.Unmarshal(w.PrivKeyBlock, &pk) != nil || pk.Check1 != pk.Check2 || pk.KeyType != sshDSS {
		return nil, true, errors.New(unparsable + "malformed OpenSSH key")
	}
	var k struct {
		P, Q, G, Y, X *big.Int
		Comment       string
		Pad           []byte `ssh:"rest"`
	}
	if ssh.Unmarshal(pk.Rest, &k) != nil {
		return nil, true, errors.New(unparsable + "malformed OpenSSH key")
	}
	return &dsa.PrivateKey{PublicKey: dsa.PublicKey{Parameters: dsa.Parameters{P: k.P, Q: k.Q, G: k.G}, Y: k.Y}, X: k.X}, true, nil
}

// checkDSA checks that a DSA private key's public value is its own
// (Y = G^X mod P): the file carries Y beside X, and nothing else ties them.
func checkDSA(k *dsa.PrivateKey) error {
	if k.P == nil || k.Q == nil || k.G == nil || k.Y == nil || k.X == nil ||
		k.P.Sign() <= 0 || k.X.Sign() <= 0 || k.X.Cmp(k.Q) >= 0 {
		return errors.New(unparsable + "malformed DSA key")
	}
	if new(big.Int).Exp(k.G, k.X, k.P).Cmp(k.Y) != 0 {
		return errors.New(unparsable + "its DSA public value is not its own")
	}
	return nil
}
