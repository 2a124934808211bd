package sshkeys

import (
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
)

func TestParsePair(t *testing.T) {
	ed := testKey(t, Ed25519, 256, "a")
	ed2 := testKey(t, Ed25519, 256, "b")
	ec256 := testKey(t, ECDSA, 256, "a")
	ec521 := testKey(t, ECDSA, 521, "a")
	rsa2048 := testKey(t, RSA, 2048, "a")
	rsa1024 := testKey(t, RSA, 1024, "a")
	edOpenSSH := encode(t, ed, "openssh")
	// Drop a body line: the PEM still decodes, the key inside does not.
	lines := strings.Split(edOpenSSH, "\n")
	edCorrupt := strings.Join(append(lines[:3:3], lines[4:]...), "\n")
	pkcs1 := encode(t, rsa2048, "pkcs1")
	lines = strings.Split(pkcs1, "\n")
	lines[5] = strings.Repeat("/", len(lines[5]))
	pkcs1Corrupt := strings.Join(lines, "\n")
	legacyEncrypted := "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"
	pkcs8Encrypted := "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
	certPEM := "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
	dsaOtherY := dsaWithOtherY(t, readTestdata(t, "dsa_pem"))

	tests := []struct {
		name     string
		kind     Kind
		private  string
		public   string
		wantBits int
		wantErr  string
	}{
		{name: "ed25519 openssh", kind: Ed25519, private: edOpenSSH, public: pubLine(t, ed, "root@node1"), wantBits: 256},
		{name: "ed25519 pkcs8", kind: Ed25519, private: encode(t, ed, "pkcs8"), public: pubLine(t, ed, ""), wantBits: 256},
		{name: "ecdsa sec1", kind: ECDSA, private: encode(t, ec256, "sec1"), public: pubLine(t, ec256, "x"), wantBits: 256},
		{name: "ecdsa-521 pkcs8", kind: ECDSA, private: encode(t, ec521, "pkcs8"), public: pubLine(t, ec521, "x"), wantBits: 521},
		{name: "ecdsa-384 ssh-keygen", kind: ECDSA, private: readTestdata(t, "ecdsa384"), public: readTestdata(t, "ecdsa384.pub"), wantBits: 384},
		{name: "rsa pkcs1 ssh-keygen -m PEM", kind: RSA, private: readTestdata(t, "rsa_pem"), public: readTestdata(t, "rsa_pem.pub"), wantBits: 2048},
		{name: "rsa pkcs8", kind: RSA, private: encode(t, rsa2048, "pkcs8"), public: pubLine(t, rsa2048, "x"), wantBits: 2048},
		{name: "rsa openssh", kind: RSA, private: encode(t, rsa2048, "openssh"), public: pubLine(t, rsa2048, "x"), wantBits: 2048},
		{name: "crlf public", kind: Ed25519, private: edOpenSSH, public: strings.TrimSuffix(pubLine(t, ed, "c"), "\n") + "\r\n", wantBits: 256},

		{name: "dsa openssh ssh-keygen", kind: DSA, private: readTestdata(t, "dsa_openssh"), public: readTestdata(t, "dsa_openssh.pub"), wantBits: 1024},
		{name: "dsa openssl pem ssh-keygen -m PEM", kind: DSA, private: readTestdata(t, "dsa_pem"), public: readTestdata(t, "dsa_pem.pub"), wantBits: 1024},
		{name: "dsa mismatch", kind: DSA, private: readTestdata(t, "dsa_openssh"), public: readTestdata(t, "dsa_pem.pub"), wantErr: "the private key does not match the public key"},
		{name: "dsa public value not its own", kind: DSA, private: dsaOtherY, public: readTestdata(t, "dsa_pem.pub"), wantErr: "the private key does not parse: its DSA public value is not its own"},
		{name: "dsa kind, ed25519 key", kind: DSA, private: edOpenSSH, public: pubLine(t, ed, ""), wantErr: "the public key is an ed25519 key, not dsa"},
		{name: "unknown kind", kind: "ed448", private: edOpenSSH, public: pubLine(t, ed, ""), wantErr: `unknown key kind "ed448" (want rsa, dsa, ecdsa or ed25519)`},
		{name: "empty private", kind: Ed25519, private: "", public: pubLine(t, ed, ""), wantErr: "the private key does not parse: no PEM block found"},
		{name: "private not pem", kind: Ed25519, private: "just some text that is long enough\n", public: pubLine(t, ed, ""), wantErr: "the private key does not parse: no PEM block found"},
		{name: "private bad base64", kind: Ed25519, private: "-----BEGIN OPENSSH PRIVATE KEY-----\n!!!!\n-----END OPENSSH PRIVATE KEY-----\n", public: pubLine(t, ed, ""), wantErr: "the private key does not parse: malformed PEM (bad base64, headers or END line)"},
		{name: "private no end line", kind: Ed25519, private: strings.Split(edOpenSSH, "-----END")[0], public: pubLine(t, ed, ""), wantErr: "the private key does not parse: malformed PEM (bad base64, headers or END line)"},
		{name: "private corrupted openssh body", kind: Ed25519, private: edCorrupt, public: pubLine(t, ed, ""), wantErr: "the private key does not parse: malformed OpenSSH key"},
		{name: "private corrupted pkcs1 body", kind: RSA, private: pkcs1Corrupt, public: pubLine(t, rsa2048, ""), wantErr: "the private key does not parse: malformed PKCS#1 RSA key"},
		{name: "private two blocks", kind: Ed25519, private: edOpenSSH + edOpenSSH, public: pubLine(t, ed, ""), wantErr: "the private key does not parse: more data follows the PEM block"},
		{name: "private is a certificate", kind: Ed25519, private: certPEM, public: pubLine(t, ed, ""), wantErr: "the private key does not parse: not an OpenSSH, PKCS#1, SEC1, PKCS#8 or OpenSSL DSA private key"},
		{name: "encrypted openssh", kind: Ed25519, private: readTestdata(t, "ed25519_encrypted"), public: readTestdata(t, "ed25519_encrypted.pub"), wantErr: "the private key is passphrase-protected; give it unencrypted"},
		{name: "encrypted legacy pem", kind: RSA, private: legacyEncrypted, public: pubLine(t, rsa2048, ""), wantErr: "the private key is passphrase-protected; give it unencrypted"},
		{name: "encrypted pkcs8", kind: RSA, private: pkcs8Encrypted, public: pubLine(t, rsa2048, ""), wantErr: "the private key is passphrase-protected; give it unencrypted"},
		{name: "empty public", kind: Ed25519, private: edOpenSSH, public: "", wantErr: "the public key does not parse: empty line"},
		{name: "public garbage", kind: Ed25519, private: edOpenSSH, public: "not a key at all\n", wantErr: "the public key does not parse: no key type such as ssh-ed25519 found"},
		{name: "public two lines", kind: Ed25519, private: edOpenSSH, public: pubLine(t, ed, "a") + pubLine(t, ed, "b"), wantErr: "the public key does not parse: more than one line"},
		{name: "public with options", kind: Ed25519, private: edOpenSSH, public: "restrict " + pubLine(t, ed, "a"), wantErr: "the public key line has authorized_keys options; a .pub line has none"},
		{name: "public of other kind", kind: RSA, private: pkcs1, public: pubLine(t, ec256, ""), wantErr: "the public key is an ecdsa key, not rsa"},
		{name: "private of other kind", kind: RSA, private: edOpenSSH, public: pubLine(t, rsa2048, ""), wantErr: "the private key is an ed25519 key, not rsa"},
		{name: "mismatch", kind: Ed25519, private: edOpenSSH, public: pubLine(t, ed2, ""), wantErr: "the private key does not match the public key"},
		{name: "mismatch across formats", kind: ECDSA, private: encode(t, ec256, "sec1"), public: readTestdata(t, "ecdsa384.pub"), wantErr: "the private key does not match the public key"},
		{name: "rsa too small", kind: RSA, private: encode(t, rsa1024, "pkcs1"), public: pubLine(t, rsa1024, ""), wantErr: "rsa keys must have 2048 to 16384 bits, not 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePair(tt.kind, tt.private, tt.public)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				if l := leaks(err, tt.private, tt.public); l != "" {
					t.Errorf("error %q repeats input %q", err, l)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ParsePublicLine(tt.public)
			if p.Kind != tt.kind || p.Bits != tt.wantBits || Fingerprint(p.Public) != Fingerprint(want) {
				t.Errorf("got %+v, want kind %s, %d bits, %s", p, tt.kind, tt.wantBits, Fingerprint(want))
			}
		})
	}
}

// TestParsePairCorruptedBodyLeaksNothing corrupts each body line of keys in
// every format in turn and checks that no error repeats any input line.
func TestParsePairCorruptedBodyLeaksNothing(t *testing.T) {
	type input struct{ kind, private, public string }
	var inputs []input
	for _, f := range []string{"openssh", "pkcs1", "pkcs8"} {
		k := testKey(t, RSA, 2048, "a")
		inputs = append(inputs, input{"rsa", encode(t, k, f), pubLine(t, k, "")})
	}
	for _, f := range []string{"openssh", "sec1", "pkcs8"} {
		k := testKey(t, ECDSA, 384, "a")
		inputs = append(inputs, input{"ecdsa", encode(t, k, f), pubLine(t, k, "")})
	}
	for _, f := range []string{"openssh", "pkcs8"} {
		k := testKey(t, Ed25519, 256, "a")
		inputs = append(inputs, input{"ed25519", encode(t, k, f), pubLine(t, k, "")})
	}
	inputs = append(inputs, input{"rsa", readTestdata(t, "rsa_pem"), readTestdata(t, "rsa_pem.pub")})
	for _, name := range []string{"dsa_openssh", "dsa_pem"} {
		inputs = append(inputs, input{"dsa", readTestdata(t, name), readTestdata(t, name+".pub")})
	}
	for _, in := range inputs {
		lines := strings.Split(in.private, "\n")
		for i := 1; i < len(lines)-2; i++ { // body lines only
			for _, bad := range []string{strings.Repeat("A", len(lines[i])), strings.Repeat("/", len(lines[i])), lines[i][:len(lines[i])/2]} {
				c := append([]string(nil), lines...)
				c[i] = bad
				corrupt := strings.Join(c, "\n")
				_, err := ParsePair(Kind(in.kind), corrupt, in.public)
				if err == nil {
					continue // a changed private exponent can still parse; the match check covers it
				}
				if l := leaks(err, corrupt, in.public); l != "" {
					t.Fatalf("%s line %d: error %q repeats input %q", in.kind, i, err, l)
				}
			}
		}
	}
}

func FuzzParsePair(f *testing.F) {
	ed := testKey(f, Ed25519, 256, "a")
	ec := testKey(f, ECDSA, 256, "a")
	f.Add(uint8(2), encode(f, ed, "openssh"), pubLine(f, ed, "c"))
	f.Add(uint8(2), encode(f, ed, "pkcs8"), pubLine(f, ed, ""))
	f.Add(uint8(1), encode(f, ec, "sec1"), pubLine(f, ec, ""))
	f.Add(uint8(0), readTestdata(f, "rsa_pem"), readTestdata(f, "rsa_pem.pub"))
	f.Add(uint8(1), readTestdata(f, "ecdsa384"), readTestdata(f, "ecdsa384.pub"))
	f.Add(uint8(2), readTestdata(f, "ed25519_encrypted"), "restrict "+readTestdata(f, "ed25519_encrypted.pub"))
	f.Add(uint8(3), readTestdata(f, "dsa_openssh"), readTestdata(f, "dsa_openssh.pub"))
	f.Add(uint8(3), readTestdata(f, "dsa_pem"), readTestdata(f, "dsa_pem.pub"))
	kinds := []Kind{RSA, ECDSA, Ed25519, DSA}
	f.Fuzz(func(t *testing.T, k uint8, private, public string) {
		kind := kinds[int(k)%len(kinds)]
		p, err := ParsePair(kind, private, public)
		if err != nil {
			if l := leaks(err, private, public); l != "" {
				t.Fatalf("error %q repeats input %q", err, l)
			}
			return
		}
		if p.Kind != kind || CheckBits(kind, p.Bits) != nil {
			t.Fatalf("accepted %+v for kind %s", p, kind)
		}
	})
}

// dsaWithOtherY returns an OpenSSL DSA key whose public value Y is changed
// (and the public key line to match it would be another key's).
func dsaWithOtherY(t *testing.T, pemText string) string {
	t.Helper()
	b, _ := pem.Decode([]byte(pemText))
	var k openSSLDSA
	if _, err := asn1.Unmarshal(b.Bytes, &k); err != nil {
		t.Fatal(err)
	}
	k.Y = new(big.Int).Exp(k.G, big.NewInt(12345), k.P)
	der, err := asn1.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: der}))
}
