package joinservice

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/master/callback"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/sshkeys"
)

// CallbackOptions let join-service grant machine callbacks
// (join-service serve --callback); nil in Options grants none.
type CallbackOptions struct {
	// Grant is callback-grant's settings; Pull is set by the service.
	Grant callback.Options
	// SSHPort is the master's sshd port the nodes dial (0: 22).
	SSHPort int
}

// ReachTimeout bounds the master's try of a node's SSH port
// (StatusRequest.CheckReach): a reachable node answers a SYN in
// milliseconds, and the report waits for it.
const ReachTimeout = 3 * time.Second

// reachable says whether a TCP connection to the node's SSH port at ip
// opens in time. It proves no more than a listener there: the honest
// signal for "the master cannot reach this node", which is what a NAT or a
// firewall dropping inbound connections gives.
func reachable(ctx context.Context, ip string, port int) bool {
	ctx, cancel := context.WithTimeout(ctx, ReachTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// callbackGrant: POST /v1/slots/{uuid}/callback with the slot's secret
// grants the slot's node a callback port for its key (callback.Grant with
// Options.Pull: the first key wins, one node per slot) and answers what
// callback-setup needs.
func (s *Service) callbackGrant(w http.ResponseWriter, r *http.Request) {
	ev := Event{Event: "callback"}
	uuid, secret, err := slotCredentials(r, &ev)
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	var req joinapi.CallbackRequest
	if err := decodeBody(w, r, joinapi.MaxCallbackBody, &req); err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	slot, err := s.store.Check(r.Context(), uuid, secret)
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	if s.o.Callback == nil {
		m := "this join-service grants no machine callbacks (join-service serve --callback)"
		s.refuse(w, r, ev, &apiError{http.StatusForbidden, joinapi.CodeCallbackOff, m, m})
		return
	}
	// The grant goes to the node that pinned its root key: its report
	// comes first, as node-join sends it before applying.
	if slot.PinnedKey == "" {
		m := "no report with the node's root key yet: report \"applying\" first"
		s.refuse(w, r, ev, &apiError{http.StatusConflict, joinapi.CodeNotFetched, m, m})
		return
	}
	c, err := s.cluster()
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	name, err := s.claimedName(c, slot, req.NodeName, slot.PinnedKey, "")
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	ev.Node = name
	ans, err := s.grant(r.Context(), uuid, name, req.PublicKey)
	if err != nil {
		s.refuse(w, r, ev, err)
		return
	}
	ev.Peer, ev.Outcome, ev.Reason = peer(r), OutcomeOK, fmt.Sprintf("port %d", ans.RemotePort)
	s.audit.Log(ev)
	writeJSON(w, http.StatusOK, ans)
}

// grant runs callback-grant's code under nodejoin's lock on the master.
func (s *Service) grant(ctx context.Context, uuid, name, key string) (*joinapi.CallbackAnswer, error) {
	cfg, err := nodeconf.Load(s.o.Root)
	if err != nil {
		return nil, err
	}
	o := s.o.Callback.Grant
	o.Pull = true
	res, err := callback.Grant(ctx, cfg, s.log, o, &callback.Request{Node: name, PublicKey: key, Slot: uuid}, false)
	var rej *problem.RejectedError
	switch {
	case errors.Is(err, callback.ErrKeyTaken):
		return nil, &apiError{http.StatusConflict, joinapi.CodeCallbackKey, err.Error(), err.Error()}
	case errors.Is(err, callback.ErrNotEnabled):
		m := "the master's callback account is not set up (callback-grant --enable on the master)"
		return nil, &apiError{http.StatusForbidden, joinapi.CodeCallbackOff, m, err.Error()}
	case errors.As(err, &rej):
		return nil, invalid("%v", err)
	case err != nil:
		return nil, err
	}
	keys, err := hostKeys(cfg)
	if err != nil {
		return nil, err
	}
	port := s.o.Callback.SSHPort
	if port == 0 {
		port = 22
	}
	return &joinapi.CallbackAnswer{UUID: uuid, NodeName: name, RemotePort: res.Port, CallbackUser: res.User,
		MasterPort: port, MasterHostKeys: keys}, nil
}

// hostKeys are the master's SSH host public keys, "type base64", sorted.
func hostKeys(cfg *nodeconf.Config) ([]string, error) {
	files, err := filepath.Glob(cfg.Path(filepath.Join(cfg.SSHConfigDir, "ssh_host_*_key.pub")))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading the master's host key: %w", err)
		}
		line := strings.TrimSpace(string(b))
		if _, err := sshkeys.ParsePublicLine(line); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
		fl := strings.Fields(line)
		out = append(out, fl[0]+" "+fl[1])
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no SSH host key in %s", cfg.SSHConfigDir)
	}
	sort.Strings(out)
	return out, nil
}

// sshPort is the node's SSH port the master tries: node-add's, ssh's
// default (the cluster records no other).
func (s *Service) sshPort() int { return 22 }
