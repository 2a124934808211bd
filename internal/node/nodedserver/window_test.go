package nodedserver

import (
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
)

// TestLoadWindow: the node daemon trusts the previous cluster certificate
// only from the window node-daemon-setup recorded for the certificate it
// serves with, and only until the window's end.
func TestLoadWindow(t *testing.T) {
	oldPEM, err := certs.NewClusterCertificate("c1.example.org", time.Hour)
	old := mustPair(t, oldPEM, err)
	newPEM, err := certs.NewRenewedClusterCertificate("c1.example.org", time.Hour)
	next := mustPair(t, newPEM, err)
	otherPEM, err := certs.NewRenewedClusterCertificate("c1.example.org", time.Hour)
	other := mustPair(t, otherPEM, err)
	end := time.Now().Add(time.Hour)
	proof := func(kp *certs.KeyPair) string {
		p, err := certs.NewRenewalProof(old, kp.Cert, end)
		if err != nil {
			t.Fatal(err)
		}
		return string(p)
	}
	prev := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: old.Cert.Raw}))
	for _, tc := range []struct {
		name  string
		w     *joindoc.CertificateRenewal
		trust bool
	}{
		{"none", nil, false},
		{"open", &joindoc.CertificateRenewal{PreviousCertificate: prev, Proof: proof(next), WindowEnd: end}, true},
		{"ended", &joindoc.CertificateRenewal{PreviousCertificate: prev, Proof: proof(next), WindowEnd: time.Now().Add(-time.Second)}, false},
		{"of another rotation", &joindoc.CertificateRenewal{PreviousCertificate: prev, Proof: proof(other), WindowEnd: end}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			cfg, err := nodeconf.Load(root)
			if err != nil {
				t.Fatal(err)
			}
			for dir, files := range map[string]map[string][]byte{cfg.DataDir: {nodeconf.ServerPEM: newPEM}, cfg.StateDir: {}} {
				if err := os.MkdirAll(cfg.Path(dir), 0o755); err != nil {
					t.Fatal(err)
				}
				for name, b := range files {
					if err := os.WriteFile(filepath.Join(cfg.Path(dir), name), b, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			if tc.w != nil {
				b, _ := json.Marshal(tc.w)
				if err := os.WriteFile(filepath.Join(cfg.Path(cfg.StateDir), nodeconf.CertificateRenewal), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s, err := LoadServer(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Window != nil && s.Window.Previous.Equal(old.Cert); got != tc.trust {
				t.Errorf("trusts the previous certificate: %v, want %v", got, tc.trust)
			}
		})
	}
}
