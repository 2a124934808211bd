package joindoc

import (
	"strings"
	"testing"
	"time"
)

// TestDecodeCertificateRenewal: both node documents take nodejoin's
// cluster_certificate_renewal, complete and with an RFC 3339 window end;
// anything else is refused where it is wrong.
func TestDecodeCertificateRenewal(t *testing.T) {
	const good = `{"previous_certificate": "P", "proof": "Q", "window_end": "2030-01-02T03:04:05Z"}`
	p, err := DecodePrepare(strings.NewReader(`{"cluster_name": "c", "cluster_certificate_renewal": ` + good + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if r := p.CertificateRenewal; r == nil || r.PreviousCertificate != "P" || r.Proof != "Q" || !r.WindowEnd.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("decoded %+v", p.CertificateRenewal)
	}
	setup := `{"cluster_name": "c", "node_daemon_certificate": "x", "hmac_key": "k", "ssconf": {"cluster_name": "c"}, "node_name": "n", "cluster_certificate_renewal": %s}`
	if d, err := DecodeDaemonSetup(strings.NewReader(strings.Replace(setup, "%s", good, 1))); err != nil || d.CertificateRenewal == nil {
		t.Errorf("node-daemon-setup: %+v, %v", d, err)
	}
	for _, tc := range []struct{ name, renewal, where string }{
		{"no proof", `{"previous_certificate": "P", "window_end": "2030-01-02T03:04:05Z"}`, "/cluster_certificate_renewal/proof: required key is missing"},
		{"a date without time", `{"previous_certificate": "P", "proof": "Q", "window_end": "2030-01-02"}`, "/cluster_certificate_renewal/window_end: "},
		{"another key", `{"previous_certificate": "P", "proof": "Q", "window_end": "2030-01-02T03:04:05Z", "key": "K"}`, "/cluster_certificate_renewal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeDaemonSetup(strings.NewReader(strings.Replace(setup, "%s", tc.renewal, 1)))
			if err == nil || !strings.Contains(err.Error(), "invalid input: "+tc.where) {
				t.Errorf("err = %v, want %q", err, tc.where)
			}
		})
	}
}
