package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// healthServer serves flanneld's /healthz (200 from the moment it listens,
// which is before etcd is reached) and /readyz (200 once the lease, the TUN,
// subnet.env and the firewall rules are in place), and felt's /metrics and
// /status (503 until the node is assembled).
type healthServer struct {
	ready   atomic.Bool
	waiting atomic.Pointer[string] // why not ready yet, for /readyz
	handler atomic.Pointer[http.ServeMux]
	srv     *http.Server
	ln      net.Listener
}

func newHealthServer(addr string) (*healthServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("healthz: listen on %s: %w (is another agent running? pick another --healthz-port)", addr, err)
	}
	h := &healthServer{ln: ln}
	h.setWaiting("starting")
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !h.ready.Load() {
			http.Error(w, "not ready: "+*h.waiting.Load(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if m := h.handler.Load(); m != nil {
			m.ServeHTTP(w, r)
			return
		}
		http.Error(w, "not ready: "+*h.waiting.Load(), http.StatusServiceUnavailable)
	})
	h.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return h, nil
}

// setWaiting records what the agent is waiting for, shown by /readyz.
func (h *healthServer) setWaiting(what string) { h.waiting.Store(&what) }

// attach serves /metrics and /status from now on.
func (h *healthServer) attach(reg *prometheus.Registry, status func() any) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		writeJSON(w, status())
	})
	h.handler.Store(mux)
}

func (h *healthServer) Addr() string { return h.ln.Addr().String() }

func (h *healthServer) serve(log *zap.Logger) {
	if err := h.srv.Serve(h.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("healthz server stopped", zap.Error(err))
	}
}

func (h *healthServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	h.srv.Shutdown(ctx)
}
