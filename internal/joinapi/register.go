package joinapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// Auto-registration's direct request (join-service(8), "REGISTRATION"):
// a machine that mDNS does not carry to the registrar asks it here, then
// polls its request with its request secret until it is accepted, and
// fetches its documents from the slot the answer names, with the same
// secret, exactly as a slot's token holder does.
const (
	// PathRegister: POST a RegisterRequest; 202 with a RegisterAnswer.
	PathRegister = "/v1/register"
	// PathRegistration: GET with "Authorization: Bearer <request secret>",
	// ?wait=D long-polls (at most MaxWait) until the state changes.
	PathRegistration = "/v1/register/{name}"
)

// CodeRequestExists (409): a request of that name is kept with another
// request secret (and no proof of the host key that would replace it).
const CodeRequestExists = "request_exists"

// RegisterRequest is a machine's direct registration request. The master
// never sees the request secret, only its SHA-256 (hex): the slot the
// registrar issues carries that hash, and the machine fetches with the
// secret itself.
type RegisterRequest struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Cluster string `json:"cluster"`
	Parent  string `json:"parent,omitempty"`
	// HostKey is the machine's SSH host public key ("type base64"); the
	// registrar keeps its fingerprint.
	HostKey           string `json:"host_key"`
	RequestSecretHash string `json:"request_secret_hash"`
	// Signature is the host key's SSH signature of RegisterSigned (base64
	// of the wire form): the machine holds the key, so a host key the
	// admin pre-pinned may admit it. Without it the fingerprint is only a
	// claim.
	Signature string `json:"signature,omitempty"`
	// Token is a registration token (join-service requests token), which
	// admits the request in local-network and anything modes.
	Token string `json:"token,omitempty"`
}

// RegisterAnswer is the state of a request. Slot is set once the request
// is accepted: fetch PathSlot with it and the request secret.
type RegisterAnswer struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	Slot   string `json:"slot,omitempty"`
}

// SecretHash is the form a request secret is sent and stored in: the hex
// SHA-256 of its text, as the master stores every slot's secret.
func SecretHash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// RegisterSigned is what a request's signature signs: the purpose, the
// name and the secret's hash, so that a signature is not replayed for
// another name or another secret.
func RegisterSigned(name, secretHash string) []byte {
	return []byte("nodejoin-register-v1\x00" + name + "\x00" + secretHash)
}

// SignRegister signs a request with the host key.
func SignRegister(key ssh.Signer, name, secretHash string) (string, error) {
	sig, err := key.Sign(rand.Reader, RegisterSigned(name, secretHash))
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(ssh.Marshal(sig)), nil
}

// VerifyRegister checks a request's signature by its host key.
func VerifyRegister(pub ssh.PublicKey, name, secretHash, signature string) error {
	raw, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return fmt.Errorf("signature: not base64: %w", err)
	}
	var sig ssh.Signature
	if err := ssh.Unmarshal(raw, &sig); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	if err := pub.Verify(RegisterSigned(name, secretHash), &sig); err != nil {
		return fmt.Errorf("signature: does not verify with the host key: %w", err)
	}
	return nil
}
