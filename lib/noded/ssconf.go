package noded

import (
	"errors"
	"fmt"
	"net/http"
	"path"

	"github.com/nodejoin/nodejoin/lib/apply"
	"github.com/nodejoin/nodejoin/lib/cli"
	"github.com/nodejoin/nodejoin/lib/joindoc"
	"github.com/nodejoin/nodejoin/lib/nodestate"
	"github.com/nodejoin/nodejoin/lib/ssconf"
)

// ErrorReply is the body of a refused or failed request.
type ErrorReply struct {
	Errors []string `json:"errors"`
}

// putSsconf writes the master's ssconf values (PUT /ssconf), the way
// Ganeti's master redistributes ssconf to its nodes after a change. Every
// node holds a client certificate of the cluster, so only the master's
// (CN = this node's ssconf_master_node) may write; the values get the same
// checks as node-daemon-setup's and are written in one transaction under
// the ssconf lock. Nothing is restarted.
func (s *Server) putSsconf(w http.ResponseWriter, r *http.Request) {
	master := s.ssconf("master_node")
	if master == "" || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 ||
		r.TLS.PeerCertificates[0].Subject.CommonName != master {
		writeJSON(w, http.StatusForbidden, ErrorReply{[]string{"only the master node may update ssconf"}})
		return
	}
	cfg := s.Config
	doc, err := joindoc.DecodeSsconfUpdate(http.MaxBytesReader(w, r.Body, 1<<20))
	if err == nil {
		err = nodestate.CheckClusterName(cfg, doc.ClusterName)
	}
	if err == nil {
		if problems := ssconf.Check("/ssconf", doc.ClusterName, doc.Ssconf); len(problems) > 0 {
			err = &cli.RejectedError{Problems: problems}
		}
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorReply{errorLines(err)})
		return
	}
	plan := func() (*apply.Plan, error) {
		return &apply.Plan{Items: ssconf.Items(cfg, doc.Ssconf), Locks: []string{path.Join(cfg.LockDir, ssconf.LockFile)}}, nil
	}
	res, err := apply.Run(r.Context(), cfg, s.Log, plan, false)
	res.Program = "noded"
	if err != nil {
		s.Log.Warn("updating ssconf failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, ErrorReply{errorLines(err)})
		return
	}
	s.Log.Info("ssconf updated", "changed", res.Changed)
	writeJSON(w, http.StatusOK, res)
}

func errorLines(err error) []string {
	var rej *cli.RejectedError
	if errors.As(err, &rej) {
		out := make([]string, len(rej.Problems))
		for i, p := range rej.Problems {
			out[i] = "invalid input: " + p.String()
		}
		return out
	}
	return []string{fmt.Sprint(err)}
}
