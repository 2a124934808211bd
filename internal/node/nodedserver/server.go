package nodedserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/connlimit"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/noded"
	"github.com/nodejoin/nodejoin/internal/ssconf"
	"github.com/nodejoin/nodejoin/internal/version"
)

// Server serves one node's daemon.
type Server struct {
	Config  *nodeconf.Config
	KeyPair *certs.KeyPair
	// Window, during a rotation of the cluster certificate, also trusts
	// clients of the previous one until its end; nil: none.
	Window  *certs.Window
	Log     *slog.Logger
	Limits  Limits // zero fields: connlimit.Default
	started time.Time
}

// LoadServer reads the data dir's server.pem.
func LoadServer(cfg *nodeconf.Config, log *slog.Logger) (*Server, error) {
	p := cfg.Path(cfg.DataDir + "/server.pem")
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading the node daemon certificate: %w", err)
	}
	kp, err := certs.ParseKeyPair(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	w, err := loadWindow(cfg, kp)
	if err != nil {
		return nil, err
	}
	return &Server{Config: cfg, KeyPair: kp, Window: w, Log: log}, nil
}

// loadWindow reads the window of a rotation of the cluster certificate
// that node-daemon-setup recorded (nodeconf.CertificateRenewal), if it is
// for kp's certificate and open; else none.
func loadWindow(cfg *nodeconf.Config, kp *certs.KeyPair) (*certs.Window, error) {
	p := cfg.Path(path.Join(cfg.StateDir, nodeconf.CertificateRenewal))
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the certificate renewal: %w", err)
	}
	var r joindoc.CertificateRenewal
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	prev, err := certs.ParseCertificateOnly([]byte(r.PreviousCertificate))
	if err != nil {
		return nil, fmt.Errorf("%s: previous_certificate: %w", p, err)
	}
	proof, err := certs.ParseCertificateOnly([]byte(r.Proof))
	if err != nil {
		return nil, fmt.Errorf("%s: proof: %w", p, err)
	}
	// A window of another rotation than the one that gave this node its
	// certificate trusts nothing.
	if !certs.SamePublicKey(proof.PublicKey, kp.Cert.PublicKey) {
		return nil, nil
	}
	w := &certs.Window{Previous: prev, Proof: proof, Until: r.WindowEnd}
	if !w.Open(time.Now()) {
		return nil, nil
	}
	return w, nil
}

func (s *Server) ssconf(key string) string {
	v, err := ssconf.Read(s.Config.Path(ssconf.Path(s.Config.DataDir, key)))
	if err != nil {
		return ""
	}
	return v
}

// Handler answers GET /version and /health, and PUT /ssconf (ssconf.go).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		host, _ := os.Hostname()
		writeJSON(w, http.StatusOK, noded.Version{Program: "noded", Version: version.String(), Protocol: noded.Protocol,
			ClusterName: s.ssconf("cluster_name"), NodeName: host})
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		h := noded.Health{Status: "ok", UptimeSeconds: int64(time.Since(s.started).Seconds()), Checks: map[string]string{}}
		if s.KeyPair.Cert.NotAfter.Before(time.Now()) {
			h.Checks["certificate"] = "expired " + s.KeyPair.Cert.NotAfter.Format(time.RFC3339)
			h.Status = "degraded"
		} else {
			h.Checks["certificate"] = "ok"
		}
		if s.ssconf("cluster_name") == "" {
			h.Checks["ssconf"] = "no cluster_name"
			h.Status = "degraded"
		} else {
			h.Checks["ssconf"] = "ok"
		}
		code := http.StatusOK
		if h.Status != "ok" {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, h)
	})
	mux.HandleFunc("PUT /ssconf", s.putSsconf)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(sw, r)
		s.Log.Info("request", "method", r.Method, "path", r.URL.Path, "client", clientFingerprint(r),
			"remote", r.RemoteAddr, "status", sw.status, "duration", time.Since(start).Round(time.Microsecond))
	})
}

// clientFingerprint names the client by its certificate's SHA-256
// fingerprint (certs.Fingerprint), never by the name in it.
func clientFingerprint(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "none"
	}
	return certs.Fingerprint(r.TLS.PeerCertificates[0])
}

// statusWriter remembers the status of the answer, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// serverErrors logs what net/http reports. A failed handshake (a
// certificate of another cluster, none, a timeout) is a refusal; a
// connection closed before its first byte (a port probe, --restart's
// among them) is not worth a warning.
type serverErrors struct{ log *slog.Logger }

func (e serverErrors) Write(b []byte) (int, error) {
	msg := strings.TrimSpace(string(b))
	rest, ok := strings.CutPrefix(msg, "http: TLS handshake error from ")
	addr, reason, ok2 := strings.Cut(rest, ": ")
	switch {
	case !ok || !ok2:
		e.log.Warn(msg)
	case reason == "EOF":
		e.log.Debug("closed before the TLS handshake", "remote", addr)
	default:
		e.log.Warn("refused", "remote", addr, "reason", "TLS handshake: "+reason)
	}
	return len(b), nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Serve serves on ln until ctx ends, then shuts down within 5 seconds.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.started = time.Now()
	lim := s.Limits.WithDefaults()
	srv := &http.Server{
		Handler: s.Handler(),
		// The handshake must end within the shortest of the first three.
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(serverErrors{s.Log}, "", 0),
	}
	tlsLn := tls.NewListener(connlimit.Listen(ln, lim, s.Log), certs.ServerTLSConfigWindow(s.KeyPair, s.Window))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tlsLn) }()
	s.Log.Info("serving", "address", ln.Addr().String(), "certificate", certs.Fingerprint(s.KeyPair.Cert))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	s.Log.Info("stopped")
	return err
}
