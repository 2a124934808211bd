package certs

import (
	"errors"
	"strings"
	"testing"
)

func TestParseKeyPair(t *testing.T) {
	rsaK, ecK, edK := newKey(t, "rsa"), newKey(t, "ecdsa"), newKey(t, "ed25519")
	rsaCert, ecCert, edCert := selfSigned(t, rsaK, "r"), selfSigned(t, ecK, "e"), selfSigned(t, edK, "d")
	gen := string(cluster(t, "c1.example.org").PEM)
	badCert := "-----BEGIN CERTIFICATE-----\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END CERTIFICATE-----\n"
	badKey := "-----BEGIN PRIVATE KEY-----\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n"
	encrypted := "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
	legacyEnc := "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END RSA PRIVATE KEY-----\n"
	ecParams := "-----BEGIN EC PARAMETERS-----\nBgUrgQQAIg==\n-----END EC PARAMETERS-----\n"
	truncated := strings.Split(rsaCert, "-----END")[0]

	tests := []struct {
		name    string
		pem     string
		wantCN  string
		wantErr string
	}{
		{name: "generated", pem: gen, wantCN: "c1.example.org"},
		{name: "rsa pkcs1, cert first", pem: rsaCert + keyPEM(t, rsaK, "pkcs1"), wantCN: "r"},
		{name: "rsa pkcs8", pem: keyPEM(t, rsaK, "pkcs8") + rsaCert, wantCN: "r"},
		{name: "ecdsa sec1 with parameters", pem: ecParams + keyPEM(t, ecK, "sec1") + ecCert, wantCN: "e"},
		{name: "ed25519 pkcs8", pem: keyPEM(t, edK, "pkcs8") + edCert, wantCN: "d"},
		{name: "chain, leaf first", pem: keyPEM(t, ecK, "sec1") + ecCert + rsaCert, wantCN: "e"},
		{name: "text between blocks", pem: "Bag Attributes\n" + keyPEM(t, ecK, "sec1") + "subject=CN = e\n" + ecCert + "\n\n", wantCN: "e"},

		{name: "empty", pem: "", wantErr: "no PEM data"},
		{name: "garbage", pem: "this is not a certificate at all", wantErr: "no PEM data"},
		{name: "certificate only", pem: rsaCert, wantErr: "no private key"},
		{name: "key only", pem: keyPEM(t, rsaK, "pkcs1"), wantErr: "no certificate"},
		{name: "mismatch", pem: keyPEM(t, rsaK, "pkcs1") + ecCert, wantErr: "the certificate does not match the private key"},
		{name: "leaf is not the key's", pem: keyPEM(t, ecK, "sec1") + rsaCert + ecCert, wantErr: "the certificate does not match the private key"},
		{name: "two keys", pem: keyPEM(t, ecK, "sec1") + ecCert + keyPEM(t, ecK, "pkcs8"), wantErr: "more than one private key (blocks 1 and 3)"},
		{name: "bad certificate", pem: keyPEM(t, ecK, "sec1") + badCert, wantErr: "block 2 (CERTIFICATE) does not parse: x509: malformed certificate"},
		{name: "bad key", pem: badKey + ecCert, wantErr: "block 1 (PRIVATE KEY) does not parse"},
		{name: "pkcs1 label on ec key", pem: strings.ReplaceAll(keyPEM(t, ecK, "sec1"), "EC PRIVATE", "RSA PRIVATE") + ecCert, wantErr: "block 1 (RSA PRIVATE KEY) does not parse"},
		{name: "truncated block", pem: keyPEM(t, rsaK, "pkcs1") + truncated, wantErr: "block 2 is not well-formed PEM (bad base64, headers or END line)"},
		{name: "encrypted pkcs8", pem: encrypted + ecCert, wantErr: "block 1 (ENCRYPTED PRIVATE KEY) is passphrase-protected; give the key unencrypted"},
		{name: "encrypted legacy", pem: ecCert + legacyEnc, wantErr: "block 2 (RSA PRIVATE KEY) is passphrase-protected; give the key unencrypted"},
		{name: "openssh key", pem: strings.ReplaceAll(badKey, "PRIVATE KEY", "OPENSSH PRIVATE KEY") + ecCert, wantErr: "block 1 (OPENSSH PRIVATE KEY) is not a PKCS#1, SEC1 or PKCS#8 private key"},
		{name: "x25519 key", pem: keyPEM(t, x25519Key(t), "pkcs8") + ecCert, wantErr: "block 1 (PRIVATE KEY) holds a key that is not RSA, ECDSA or Ed25519"},
		{name: "other block", pem: keyPEM(t, ecK, "sec1") + ecCert + "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", wantErr: "block 3 (X509 CRL) is neither a certificate nor a private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kp, err := ParseKeyPair([]byte(tt.pem))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				if l := leaks(err, tt.pem); l != "" {
					t.Errorf("error repeats input line %q", l)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if kp.Cert.Subject.CommonName != tt.wantCN || string(kp.PEM) != tt.pem || !SamePublicKey(kp.Key.Public(), kp.Cert.PublicKey) {
				t.Errorf("got CN %q, PEM kept %v", kp.Cert.Subject.CommonName, string(kp.PEM) == tt.pem)
			}
		})
	}
}

func TestParseCertificateOnly(t *testing.T) {
	ecK := newKey(t, "ecdsa")
	ecCert, rsaCert := selfSigned(t, ecK, "e"), selfSigned(t, newKey(t, "rsa"), "r")
	tests := []struct {
		name    string
		pem     string
		wantErr string
		wantIs  error
	}{
		{name: "certificate", pem: ecCert},
		{name: "with private key", pem: ecCert + keyPEM(t, ecK, "pkcs8"), wantErr: ErrPrivateKeyGiven.Error(), wantIs: ErrPrivateKeyGiven},
		{name: "server.pem", pem: string(cluster(t, "c").PEM), wantErr: ErrPrivateKeyGiven.Error(), wantIs: ErrPrivateKeyGiven},
		{name: "malformed private key", pem: "-----BEGIN RSA PRIVATE KEY-----\n!!\n-----END RSA PRIVATE KEY-----\n" + ecCert, wantErr: ErrPrivateKeyGiven.Error(), wantIs: ErrPrivateKeyGiven},
		{name: "empty", pem: "", wantErr: "no PEM data"},
		{name: "garbage", pem: "certificate", wantErr: "no PEM data"},
		{name: "two certificates", pem: ecCert + rsaCert, wantErr: "block 2: more than one certificate"},
		{name: "public key", pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", wantErr: "block 1 (PUBLIC KEY) is not a certificate"},
		{name: "bad certificate", pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", wantErr: "block 1 (CERTIFICATE) does not parse: x509: malformed certificate"},
		{name: "truncated", pem: strings.Split(ecCert, "-----END")[0], wantErr: "block 1 is not well-formed PEM (bad base64, headers or END line)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCertificateOnly([]byte(tt.pem))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("errors.Is(%v) = false", tt.wantIs)
				}
				return
			}
			if err != nil || c.Subject.CommonName != "e" {
				t.Fatalf("got %v, %v", c, err)
			}
		})
	}
}

func TestSamePublicKey(t *testing.T) {
	a, b := newKey(t, "ecdsa"), newKey(t, "ecdsa")
	ed := newKey(t, "ed25519")
	tests := []struct {
		name string
		x, y any
		want bool
	}{
		{"same ecdsa", a.Public(), a.Public(), true},
		{"same ed25519", ed.Public(), ed.Public(), true},
		{"same rsa", rsaKey().Public(), &rsaKey().PublicKey, true},
		{"different", a.Public(), b.Public(), false},
		{"different types", a.Public(), ed.Public(), false},
		{"nil left", nil, a.Public(), false},
		{"nil right", a.Public(), nil, false},
		{"private key is not a public key", a, a.Public(), false},
	}
	for _, tt := range tests {
		if got := SamePublicKey(tt.x, tt.y); got != tt.want {
			t.Errorf("%s: SamePublicKey = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func FuzzParseKeyPair(f *testing.F) {
	ecK := newKey(f, "ecdsa")
	f.Add(cluster(f, "c").PEM)
	f.Add([]byte(keyPEM(f, ecK, "sec1") + selfSigned(f, ecK, "e")))
	f.Add([]byte(keyPEM(f, rsaKey(), "pkcs1") + selfSigned(f, rsaKey(), "r")))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kp, err := ParseKeyPair(data)
		if err != nil {
			if l := leaks(err, string(data)); l != "" {
				t.Fatalf("error %q repeats input line %q", err, l)
			}
			return
		}
		if !SamePublicKey(kp.Key.Public(), kp.Cert.PublicKey) {
			t.Fatal("accepted a mismatched pair")
		}
	})
}

func FuzzParseCertificateOnly(f *testing.F) {
	f.Add([]byte(selfSigned(f, newKey(f, "ecdsa"), "e")))
	f.Add(cluster(f, "c").PEM)
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCertificateOnly(data)
		if err != nil {
			if l := leaks(err, string(data)); l != "" {
				t.Fatalf("error %q repeats input line %q", err, l)
			}
			return
		}
		if c == nil || strings.Contains(string(data), "PRIVATE KEY-----") {
			t.Fatal("accepted input with a private key, or returned no certificate")
		}
	})
}
