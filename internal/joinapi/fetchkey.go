package joinapi

import (
	"crypto/rand"
	"encoding/base64"
)

// FetchKeyHeader carries a fetch key: a random value one node-join run
// sends with every attempt of its fetch or dynamic assignment (the header
// of draft-ietf-httpapi-idempotency-key-header). The master consumes the
// use once; an attempt with the key of the fetch that consumed it is
// answered again without another use, so that a fetch whose answer was
// lost is not a spent secret. The key travels with the secret, inside the
// pinned TLS connection only, and is no credential without it.
const FetchKeyHeader = "Idempotency-Key"

// NewFetchKey is 128 random bits, base64url.
func NewFetchKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
