package joinservice

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/connlimit"
)

// TLSConfig presents the cluster certificate (server.pem) with the
// cluster's cipher suites. Nodes have no client certificate yet: they are
// trusted by their slot's secret, and they trust this server by the pin
// of this certificate's key.
func TLSConfig(server *certs.KeyPair) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: certs.CipherSuites,
		Certificates: []tls.Certificate{{Certificate: [][]byte{server.Cert.Raw}, PrivateKey: server.Key, Leaf: server.Cert}},
	}
}

// servingTLSConfig is TLSConfig with the certificate the master's files
// hold at each handshake (servingCert).
func (s *Service) servingTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   certs.CipherSuites,
		GetCertificate: s.serving.getCertificate,
	}
}

// Serve serves the nodes' API with TLS on api and the admin API on admin
// (a unix socket; nil: none) until ctx ends, then stops within 10 seconds:
// the requests in flight finish, long polls end with 304.
func (s *Service) Serve(ctx context.Context, api, admin net.Listener) error {
	c, err := s.cluster()
	if err != nil {
		return err
	}
	lim := s.o.Limits.WithDefaults()
	errLog := log.New(serverErrors{s.log}, "", 0)
	apiSrv := &http.Server{
		Handler:           s.APIHandler(),
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          errLog,
	}
	tlsLn := tls.NewListener(connlimit.Listen(api, lim, s.log), s.servingTLSConfig())
	servers := []*http.Server{apiSrv}
	errc := make(chan error, 2)
	go func() { errc <- apiSrv.Serve(tlsLn) }()
	if admin != nil {
		adminSrv := &http.Server{
			Handler:           peerIsRoot(s.AdminHandler()),
			ReadHeaderTimeout: lim.ReadHeaderTimeout,
			ReadTimeout:       lim.ReadTimeout,
			WriteTimeout:      lim.WriteTimeout,
			IdleTimeout:       lim.IdleTimeout,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          errLog,
			ConnContext:       withPeerCred,
		}
		servers = append(servers, adminSrv)
		go func() { errc <- adminSrv.Serve(admin) }()
	}
	sweepDone := make(chan struct{})
	sctx, stopSweep := context.WithCancel(context.Background())
	go func() { defer close(sweepDone); s.sweep(sctx) }()
	s.log.Info("serving", "address", api.Addr().String(), "pin", s.pins(c)[0])

	var first error
	select {
	case first = <-errc:
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shut); err != nil && first == nil {
			first = err
		}
	}
	stopSweep()
	<-sweepDone
	s.stopPushes()
	s.pusher.wait()
	if errors.Is(first, http.ErrServerClosed) {
		first = nil
	}
	s.log.Info("stopped")
	return first
}

// sweep removes expired, never-used slots periodically (the embedded
// store has no lease to do it).
func (s *Service) sweep(ctx context.Context) {
	t := time.NewTicker(s.o.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := s.store.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("sweeping expired slots", "err", err)
		} else if n > 0 {
			s.log.Info("swept expired slots", "removed", n)
		}
	}
}

type peerKey struct{}

// withPeerCred keeps the uid of the unix socket's peer (SO_PEERCRED: the
// kernel's word, not the client's).
func withPeerCred(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	uid := -1
	_ = raw.Control(func(fd uintptr) {
		if cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
			uid = int(cred.Uid)
		}
	})
	return context.WithValue(ctx, peerKey{}, uid)
}

// peerIsRoot admits root and the daemon's own user only; the socket's
// mode (0600) and directory (0700) say so too, this holds if they drift.
func peerIsRoot(h http.Handler) http.Handler {
	self := os.Geteuid()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uid, ok := r.Context().Value(peerKey{}).(int)
		if !ok || uid < 0 || (uid != 0 && uid != self) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "message": "the admin socket is for root only"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serverErrors sends net/http's own messages (TLS handshake errors, bad
// requests) to the log at debug level: a scanner must not fill the log.
type serverErrors struct{ log *slog.Logger }

func (e serverErrors) Write(b []byte) (int, error) {
	e.log.Debug("http", "msg", string(b))
	return len(b), nil
}
