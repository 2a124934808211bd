package certs

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// exchange runs a TLS handshake over loopback TCP and a one-byte echo: with
// TLS 1.3 the client finishes its handshake before the server has checked
// its certificate, so only the echo shows the client that it was refused.
func exchange(t *testing.T, srv, cli *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	deadline := time.Now().Add(10 * time.Second)
	done := make(chan error, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		_ = conn.SetDeadline(deadline)
		s := tls.Server(conn, srv)
		defer s.Close()
		buf := make([]byte, 1)
		if _, err := io.ReadFull(s, buf); err != nil {
			done <- err
			return
		}
		_, err = s.Write(buf)
		done <- err
	}()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(deadline)
	c := tls.Client(conn, cli)
	defer c.Close()
	if _, clientErr = c.Write([]byte{1}); clientErr == nil {
		_, clientErr = io.ReadFull(c, make([]byte, 1))
	}
	if clientErr != nil {
		c.Close() // unblock a server still waiting to read
	}
	return <-done, clientErr
}

func clientPair(t *testing.T, server *KeyPair, cn string) *KeyPair {
	kp, err := ParseKeyPair(client(t, server, cn, 24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func TestMutualTLS(t *testing.T) {
	c1, c2 := cluster(t, "c1.example.org"), cluster(t, "c2.example.org")
	c1Again := cluster(t, "c1.example.org") // same name, other key
	rsaCluster, err := ParseKeyPair([]byte(keyPEM(t, rsaKey(), "pkcs1") + selfSigned(t, rsaKey(), "ganeti.example.com")))
	if err != nil {
		t.Fatal(err)
	}
	node1 := clientPair(t, c1, "node1")
	tls12 := ClientTLSConfig(c1.Cert, node1)
	tls12.MaxVersion = tls.VersionTLS12
	noCert := ClientTLSConfig(c1.Cert, node1)
	noCert.Certificates = nil
	// A Go client sends no certificate that the server's CA list does not
	// name; make one present its certificate anyway, as a hostile one would.
	force := func(cfg *tls.Config) *tls.Config {
		cert := cfg.Certificates[0]
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		return cfg
	}
	tests := []struct {
		name          string
		server        *tls.Config
		client        *tls.Config
		wantServerErr string // substring; "" means none
		wantClientErr string
	}{
		{"same cluster", ServerTLSConfig(c1), ClientTLSConfig(c1.Cert, node1), "", ""},
		{"same cluster, tls 1.2", ServerTLSConfig(c1), tls12, "", ""},
		{"rsa cluster key", ServerTLSConfig(rsaCluster), ClientTLSConfig(rsaCluster.Cert, clientPair(t, rsaCluster, "n")), "", ""},
		{"client of another cluster", ServerTLSConfig(c1), ClientTLSConfig(c1.Cert, clientPair(t, c2, "node1")),
			"tls: client didn't provide a certificate", "remote error: tls: certificate required"},
		{"client of another cluster, presented anyway", ServerTLSConfig(c1), force(ClientTLSConfig(c1.Cert, clientPair(t, c2, "node1"))),
			"tls: failed to verify certificate: x509: certificate signed by unknown authority", "remote error: tls: unknown certificate authority"},
		{"client signed by a same-name cluster", ServerTLSConfig(c1), force(ClientTLSConfig(c1.Cert, clientPair(t, c1Again, "node1"))),
			"tls: failed to verify certificate: x509: certificate signed by unknown authority", "remote error: tls: unknown certificate authority"},
		{"client without certificate", ServerTLSConfig(c1), noCert,
			"tls: client didn't provide a certificate", "remote error: tls: certificate required"},
		{"server of another cluster", ServerTLSConfig(c2), ClientTLSConfig(c1.Cert, node1),
			"remote error: tls: bad certificate", "the node daemon's certificate is not the cluster's: x509: certificate signed by unknown authority"},
		{"server of a same-name cluster", ServerTLSConfig(c1Again), ClientTLSConfig(c1.Cert, node1),
			"remote error", "the node daemon's certificate is not the cluster's: x509: certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serr, cerr := exchange(t, tt.server, tt.client)
			check := func(side string, err error, want string) {
				switch {
				case want == "" && err != nil:
					t.Errorf("%s: %v", side, err)
				case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
					t.Errorf("%s error = %v, want it to contain %q", side, err, want)
				}
			}
			check("server", serr, tt.wantServerErr)
			check("client", cerr, tt.wantClientErr)
		})
	}
}

func TestTLSConfigs(t *testing.T) {
	c1 := cluster(t, "c1")
	s := ServerTLSConfig(c1)
	if s.MinVersion != tls.VersionTLS12 || s.ClientAuth != tls.RequireAndVerifyClientCert || s.ClientCAs == nil {
		t.Errorf("server config: min %x, client auth %v", s.MinVersion, s.ClientAuth)
	}
	c := ClientTLSConfig(c1.Cert, clientPair(t, c1, "n"))
	if c.MinVersion != tls.VersionTLS12 || c.VerifyConnection == nil {
		t.Error("client config: no minimum version or no VerifyConnection")
	}
	if err := c.VerifyConnection(tls.ConnectionState{}); errText(err) != "the node daemon presented no certificate" {
		t.Errorf("no peer certificates: %v", err)
	}
}
