package slotstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nodejoin/nodejoin/internal/fixture/etcdtest"
)

func TestParseEtcdURL(t *testing.T) {
	for _, tc := range []struct {
		in, want, wantErr string
	}{
		{in: "etcd://127.0.0.1:2379", want: "[127.0.0.1:2379] /nodejoin/slotstore/"},
		{in: "etcd://a.example.org:2379,[::1]:2380,b:1/c1", want: "[a.example.org:2379 [::1]:2380 b:1] /c1/"},
		{in: "etcd://h:2379/clusters/c2/", want: "[h:2379] /clusters/c2/"},
		{in: "http://h:2379", wantErr: `invalid: store "http://h:2379": want etcd://host:port,...[/prefix]`},
		{in: "etcd://h", wantErr: `invalid: store "etcd://h": member "h": want host:port`},
		{in: "etcd://h:2379,", wantErr: `invalid: store "etcd://h:2379,": member "": want host:port`},
		{in: "etcd://::1:2379", wantErr: `invalid: store "etcd://::1:2379": member "::1:2379": want host:port`},
		{in: "etcd://h:0", wantErr: `invalid: store "etcd://h:0": member "h:0": port must be 1 to 65535`},
		{in: "etcd://h:http", wantErr: `invalid: store "etcd://h:http": member "h:http": port must be 1 to 65535`},
	} {
		c, err := ParseEtcdURL(tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%s: %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if got := fmt.Sprint(c.Endpoints, " ", c.Prefix); err != nil || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Dir: t.TempDir()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, Config{Store: "consul://h:1"}, Options{}); err == nil ||
		err.Error() != `invalid: store "consul://h:1": want etcd://host:port,...[/prefix]` {
		t.Fatalf("another scheme: %v", err)
	}
}

func TestOpenEtcdNoMember(t *testing.T) {
	ep := fmt.Sprintf("127.0.0.1:%d", etcdtest.FreePorts(t, 1)[0])
	_, err := OpenEtcd(context.Background(), EtcdConfig{Endpoints: []string{ep}, DialTimeout: 300 * time.Millisecond})
	want := "etcd://" + ep + ": no member answered within 300ms: "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v, want %q...", err, want)
	}
}
