package nodedserver

import (
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/node/joinrecord"
	"github.com/nodejoin/nodejoin/internal/node/nodestate"
	"github.com/nodejoin/nodejoin/internal/noded"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/ssconf"
)

// putSsconf writes the master's ssconf values (PUT /ssconf), the way
// Ganeti's master redistributes ssconf to its nodes after a change. Every
// node holds the cluster key and can mint a certificate with any name, so
// a name proves nothing: as Ganeti's noded does, only a client certificate
// whose digest this node's ssconf_master_candidates_certs lists may write,
// and an update may not drop the sender's own digest from that list (it
// would lock the master out). The values get the same checks as
// node-daemon-setup's and are written in one transaction under the ssconf
// lock. Nothing is restarted.
func (s *Server) putSsconf(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		s.refuse(w, r, http.StatusForbidden, "no client certificate")
		return
	}
	peer := r.TLS.PeerCertificates[0]
	digest := certs.Digest(peer)
	if !ssconf.ListsDigest(s.ssconf(ssconf.CandidateCertsKey), digest) {
		s.refuse(w, r, http.StatusForbidden, "the client certificate (SHA-1 "+digest+") is not in this node's ssconf_"+ssconf.CandidateCertsKey)
		return
	}
	cfg := s.Config
	doc, err := joindoc.DecodeSsconfUpdate(http.MaxBytesReader(w, r.Body, 1<<20))
	if err == nil {
		err = nodestate.CheckClusterName(cfg, doc.ClusterName)
	}
	if err == nil {
		if problems := ssconf.Check("/ssconf", doc.ClusterName, doc.Ssconf); len(problems) > 0 {
			err = &problem.RejectedError{Problems: problems}
		}
	}
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, errorLines(err)...)
		return
	}
	if v, ok := doc.Ssconf[ssconf.CandidateCertsKey]; ok && !ssconf.ListsDigest(v, digest) {
		s.refuse(w, r, http.StatusForbidden, "/ssconf/"+ssconf.CandidateCertsKey+
			": the update does not list the sender's own certificate (SHA-1 "+digest+"); it would lock the master out")
		return
	}
	// A joined node's record follows its ssconf, so node-cleanup knows
	// these files for the cluster's, not the operator's.
	plan := joinrecord.Planner(cfg, doc.ClusterName, func() (*apply.Plan, error) {
		return &apply.Plan{Items: ssconf.Items(cfg, doc.Ssconf), Locks: []string{path.Join(cfg.LockDir, ssconf.LockFile)}}, nil
	}, false)
	res, err := apply.Run(r.Context(), cfg, s.Log, plan, false)
	res.Program = "noded"
	if err != nil {
		s.Log.Warn("updating ssconf failed", "client", certs.Fingerprint(peer), "err", err)
		writeJSON(w, http.StatusInternalServerError, noded.ErrorReply{Errors: errorLines(err)})
		return
	}
	s.Log.Info("ssconf updated", "client", certs.Fingerprint(peer), "changed", res.Changed)
	writeJSON(w, http.StatusOK, res)
}

// refuse answers code with reasons and logs the refusal with the client
// certificate's fingerprint.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, reasons ...string) {
	s.Log.Warn("refused", "method", r.Method, "path", r.URL.Path, "client", clientFingerprint(r),
		"remote", r.RemoteAddr, "status", code, "reason", strings.Join(reasons, "; "))
	writeJSON(w, code, noded.ErrorReply{Errors: reasons})
}

func errorLines(err error) []string {
	var rej *problem.RejectedError
	if errors.As(err, &rej) {
		out := make([]string, len(rej.Problems))
		for i, p := range rej.Problems {
			out[i] = "invalid input: " + p.String()
		}
		return out
	}
	return []string{fmt.Sprint(err)}
}
