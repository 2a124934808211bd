package nodedserver

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/nodejoin/nodejoin/internal/certs"
)

// PUT /ssconf reads its body with the documents' decoder: nesting deeper
// than it takes is refused with 400 and the place, before the schema.
func TestPutSsconfNesting(t *testing.T) {
	f := serveWith(t, Limits{})
	master := &http.Client{Transport: &http.Transport{TLSClientConfig: certs.ClientTLSConfig(f.cluster.Cert, f.master)}}
	const depth = 8 << 10
	body := `{"cluster_name": "c1.example.org", "ssconf": ` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "}"
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPut,
		"https://127.0.0.1:"+strconv.Itoa(f.port)+"/ssconf", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := master.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	want := `{"errors":["invalid input: byte 108: arrays and objects nest deeper than 64 levels"]}` + "\n"
	if resp.StatusCode != http.StatusBadRequest || string(got) != want {
		t.Errorf("got %s %q\nwant 400 %q", resp.Status, got, want)
	}
}
