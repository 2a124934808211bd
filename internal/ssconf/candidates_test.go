package ssconf

import (
	"strings"
	"testing"
)

func TestCandidateCerts(t *testing.T) {
	d1 := "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"
	d2 := strings.Repeat("00:", 19) + "FF"
	for _, tc := range []struct{ value, err string }{
		{"", ""},
		{"0c1a-uuid=" + d1 + "\nbootstrap=" + d2, ""},
		{"node1 " + d1, `line 1: "node1 ` + d1 + `" is not node=DIGEST`},
		{"=" + d1, `line 1: "=` + d1 + `" is not node=DIGEST`},
		{"n=" + d1 + "\nn=" + d2, `line 2: "n" is listed twice`},
		{"n=AB:CD", `line 1: "AB:CD" is not a SHA-1 digest in colon hex (AB:CD:…)`},
		{"n=" + strings.ToLower(d1), `line 1: "` + strings.ToLower(d1) + `" is not a SHA-1 digest in colon hex (AB:CD:…)`},
	} {
		_, err := CandidateCerts(tc.value)
		if got := errString(err); got != tc.err {
			t.Errorf("CandidateCerts(%q) = %q, want %q", tc.value, got, tc.err)
		}
	}
	if !ListsDigest("a="+d1+"\nb="+d2, d2) || ListsDigest("a="+d1, d2) || ListsDigest("a=bad\nb="+d2, d2) {
		t.Error("ListsDigest")
	}
	if v, err := WithCandidateCert("z="+d2+"\nm="+d2, "m", d1); err != nil || v != "m="+d1+"\nz="+d2 {
		t.Errorf("WithCandidateCert = %q, %v", v, err)
	}
	p := Check("/ssconf", "c1", map[string]string{"cluster_name": "c1", CandidateCertsKey: "x"})
	if len(p) != 1 || p[0].String() != `/ssconf/master_candidates_certs: line 1: "x" is not node=DIGEST` {
		t.Errorf("Check = %v", p)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Whatever a PUT carries, CandidateCerts either refuses it or gives a list
// that WithCandidateCert keeps and extends, and ListsDigest agrees with.
func FuzzCandidateCerts(f *testing.F) {
	d := "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"
	f.Add("m=" + d)
	f.Add("m=" + d + "\nbootstrap=" + d + "\n\n")
	f.Add("m=AB\nn")
	f.Fuzz(func(t *testing.T, value string) {
		m, err := CandidateCerts(value)
		if err != nil {
			if ListsDigest(value, d) {
				t.Errorf("ListsDigest(%q) on a value that does not parse", value)
			}
			return
		}
		v, err := WithCandidateCert(value, "added", d)
		if err != nil {
			t.Fatalf("WithCandidateCert on a parsed value: %v", err)
		}
		m2, err := CandidateCerts(v)
		if err != nil || m2["added"] != d || !ListsDigest(v, d) {
			t.Fatalf("after WithCandidateCert(%q): %q, %v", value, v, err)
		}
		for n, dig := range m {
			if n != "added" && m2[n] != dig {
				t.Errorf("WithCandidateCert lost %s=%s", n, dig)
			}
		}
	})
}
