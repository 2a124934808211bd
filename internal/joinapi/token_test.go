package joinapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	testUUID   = "5b0e8a52-35f1-4c8e-a1d2-6f6e2b7d9c01"
	testSecret = "q8Yb2mFz0K1sV4xR7tN9wE3uI6oP5aL2dC8gH1jB0nM"
)

var pinA, pinB = "sha256:" + strings.Repeat("ab", 32), "sha256:" + strings.Repeat("0c", 32)

func TestTokenRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		tok  Token
		text string
	}{
		{Token{UUID: testUUID, Host: "master.example.org", Secret: testSecret, Pins: []string{pinA}},
			testUUID + ":master.example.org:" + testSecret + ":sha256=" + strings.Repeat("ab", 32)},
		{Token{UUID: testUUID, Host: "192.0.2.1", Port: 8443, Secret: testSecret, Pins: []string{pinA, pinB}},
			testUUID + ":192.0.2.1:8443:" + testSecret + ":sha256=" + strings.Repeat("ab", 32) + ":sha256=" + strings.Repeat("0c", 32)},
		{Token{UUID: testUUID, Host: "2001:db8::1", Port: 1816, Secret: testSecret, Pins: []string{pinA}},
			testUUID + ":[2001:db8::1]:1816:" + testSecret + ":sha256=" + strings.Repeat("ab", 32)},
		{Token{UUID: DynamicUUID, Host: "fe80::1", Secret: testSecret, Pins: []string{pinB}},
			"dynamic:[fe80::1]:" + testSecret + ":sha256=" + strings.Repeat("0c", 32)},
	} {
		if got := tc.tok.Text(); got != tc.text {
			t.Errorf("Text() = %q, want %q", got, tc.text)
		}
		if got := tc.tok.String(); strings.Contains(got, testSecret) || got != strings.Replace(tc.text, testSecret, "REDACTED", 1) {
			t.Errorf("String() = %q: the secret is not redacted", got)
		}
		got, err := ParseToken(tc.text)
		if err != nil || !reflect.DeepEqual(got, tc.tok) {
			t.Errorf("ParseToken(%q) = %+v, %v", tc.text, got, err)
		}
	}
	tok, found, err := FindBootParam("BOOT_IMAGE=/vmlinuz ro quiet nodejoin.rendezvous=" + testUUID + ":m:" + testSecret + ":sha256=" + strings.Repeat("AB", 32) + " console=ttyS0")
	if err != nil || !found || tok.Pins[0] != pinA || tok.Address() != "m:1816" {
		t.Errorf("FindBootParam: %+v %v %v", tok, found, err)
	}
	if _, found, _ := FindBootParam("ro quiet"); found {
		t.Error("FindBootParam found a token in a command line without one")
	}
}

func TestParseTokenRejects(t *testing.T) {
	pin := ":sha256=" + strings.Repeat("ab", 32)
	for _, tc := range []struct{ in, want string }{
		{"nothing", "token: want <uuid>:<host>[:<port>]:<secret>:sha256=<pin>"},
		{"node1:m:" + testSecret + pin, `token: uuid: "node1" is not a UUID nor "dynamic"`},
		{testUUID + "::" + testSecret + pin, "token: host: empty"},
		{testUUID + ":[2001:db8::1:" + testSecret + pin, "token: host: unclosed '[' of an IPv6 address"},
		{testUUID + ":[192.0.2.1]:" + testSecret + pin, `token: host: "192.0.2.1" in brackets is not an IPv6 address`},
		{testUUID + ":[::1]" + testSecret + pin, "token: want ':' after the IPv6 address"},
		{testUUID + ":m:" + testSecret, "token: no sha256=<pin> of the master's certificate: a token without a pin is refused"},
		{testUUID + ":m:" + testSecret + ":sha256=abc", `token: pin: "sha256:abc" is not 64 hex digits after "sha256:"`},
		{testUUID + ":m:99999:" + testSecret + pin, `token: port: "99999" is not a port (1 to 65535)`},
		{testUUID + ":m:1:2:" + testSecret + pin, "token: want <uuid>:<host>[:<port>]:<secret>:sha256=<pin>, got 3 fields between the host and the pins"},
		{testUUID + ":m:short" + pin, "token: secret: not 22 to 128 characters of base64url text"},
		{testUUID + ":m:" + strings.Repeat("!", 30) + pin, "token: secret: not 22 to 128 characters of base64url text"},
	} {
		_, err := ParseToken(tc.in)
		if err == nil || err.Error() != tc.want || !errors.Is(err, ErrToken) {
			t.Errorf("ParseToken(%q): %v, want %q", tc.in, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), testSecret) {
			t.Errorf("ParseToken(%q): the error repeats the secret", tc.in)
		}
	}
}

// FuzzParseToken: no input panics, an accepted token prints back as
// itself (up to case), and no error repeats a secret-like field.
func FuzzParseToken(f *testing.F) {
	f.Add(testUUID + ":m:" + testSecret + ":sha256=" + strings.Repeat("ab", 32))
	f.Add("dynamic:[::1]:99:" + testSecret + ":sha256=" + strings.Repeat("ab", 32) + ":sha256=" + strings.Repeat("cd", 32))
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			if len(s) > 40 && strings.Contains(err.Error(), s) {
				t.Fatalf("the error repeats the input: %v", err)
			}
			return
		}
		again, err := ParseToken(tok.Text())
		if err != nil || !reflect.DeepEqual(again, tok) {
			t.Fatalf("%q: printed %q, read back %+v, %v", s, tok.Text(), again, err)
		}
	})
}

func selfSigned(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "c1.example.org"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

func TestPins(t *testing.T) {
	c, _ := selfSigned(t)
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	if Pin(c) != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatalf("Pin = %s", Pin(c))
	}
	if p, err := ParsePin(strings.ToUpper(Pin(c)[7:])); err == nil {
		t.Errorf("ParsePin without the prefix = %s", p)
	}
	if p, err := ParsePin("sha256:" + strings.ToUpper(Pin(c)[7:])); err != nil || p != Pin(c) {
		t.Errorf("ParsePin upper case = %s, %v", p, err)
	}
	cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}}
	if err := VerifyPins([]string{pinA, Pin(c)}, cs, time.Now()); err != nil {
		t.Errorf("the pinned certificate, second of two pins: %v", err)
	}
	err := VerifyPins([]string{pinA}, cs, time.Now())
	if !errors.Is(err, ErrPin) || err.Error() != "the server's certificate matches no pin: it presents "+Pin(c) {
		t.Errorf("another pin: %v", err)
	}
	if err := VerifyPins([]string{Pin(c)}, cs, time.Now().Add(2*time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired pinned certificate: %v", err)
	}
	if err := VerifyPins([]string{Pin(c)}, tls.ConnectionState{}, time.Now()); err == nil {
		t.Error("no certificate passed")
	}
}
