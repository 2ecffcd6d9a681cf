// Package etcdtest starts real etcd servers for tests: the embedded one
// (lease/etcdserver) and Debian's /usr/bin/etcd (3.4) binary, each on free
// loopback ports with a throwaway data dir, killable and restartable on the
// same dir and ports for fault tests.
//
// Run runs one test body against every selected kind, so a test is written
// once. FELT_TEST_ETCD=embedded or FELT_TEST_ETCD=binary selects one kind;
// unset or "all" runs both (the binary kind skips when it is not installed).
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Kind names a way to run etcd.
type Kind string

const (
	Embedded Kind = "embedded" // in-process, go.etcd.io/etcd/server/v3 (the version felt ships)
	Binary   Kind = "binary"   // BinaryPath, Debian's etcd 3.4
)

// BinaryPath is where Debian installs etcd.
const BinaryPath = "/usr/bin/etcd"

// EnvKind is the environment variable that selects the kinds Run uses.
const EnvKind = "FELT_TEST_ETCD"

// Kinds returns the kinds selected by FELT_TEST_ETCD.
func Kinds() []Kind {
	switch v := strings.ToLower(os.Getenv(EnvKind)); v {
	case string(Embedded):
		return []Kind{Embedded}
	case string(Binary):
		return []Kind{Binary}
	default:
		return []Kind{Embedded, Binary}
	}
}

// Run calls body in a subtest per selected kind, each with a fresh server.
func Run(t *testing.T, body func(t *testing.T, s *Server)) {
	t.Helper()
	for _, k := range Kinds() {
		t.Run(string(k), func(t *testing.T) {
			body(t, Start(t, k))
		})
	}
}

// Server is one etcd member owned by a test. It is stopped and its data dir
// removed when the test ends, whatever the outcome.
type Server struct {
	Kind      Kind
	t         testing.TB
	dir       string
	clientURL string
	peerURL   string
	proc      process
}

// process is a running member of either kind.
type process interface {
	kill() error
}

// Start starts a member of the given kind; it skips the test if the kind
// cannot run here (binary not installed) and fails it on other errors.
func Start(t testing.TB, kind Kind) *Server {
	t.Helper()
	if kind == Binary {
		if _, err := os.Stat(BinaryPath); err != nil {
			t.Skipf("etcd binary kind: %s not found (apt-get install etcd-server): %v", BinaryPath, err)
		}
	}
	s := &Server{Kind: kind, t: t, dir: tempDir(t)}
	t.Cleanup(s.Kill)
	var err error
	// Free ports are found by binding :0 and closing; another process may
	// grab one in between, so try a few times.
	for attempt := 0; attempt < 3; attempt++ {
		s.clientURL = "http://" + freeAddr(t)
		s.peerURL = "http://" + freeAddr(t)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("etcdtest: start %s etcd: %v", kind, err)
	return nil
}

// Endpoint is the client URL.
func (s *Server) Endpoint() string { return s.clientURL }

// DataDir is the member's data dir, kept across Kill and Restart.
func (s *Server) DataDir() string { return s.dir }

// Client returns a client for this member, closed when the test ends.
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{s.clientURL},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcdtest: client for %s: %v", s.clientURL, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// Kill stops the member at once (SIGKILL for the binary). Safe to repeat.
func (s *Server) Kill() {
	if s.proc == nil {
		return
	}
	if err := s.proc.kill(); err != nil {
		s.t.Logf("etcdtest: stop %s etcd: %v", s.Kind, err)
	}
	s.proc = nil
}

// Restart kills the member if running and starts it again on the same data
// dir and ports.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	// The old listener may linger for a moment after a kill.
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("etcdtest: restart %s etcd on %s: %v", s.Kind, s.clientURL, err)
}

func (s *Server) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		p   process
		err error
	)
	switch s.Kind {
	case Embedded:
		p, err = startEmbedded(ctx, s)
	case Binary:
		p, err = startBinary(ctx, s)
	default:
		return fmt.Errorf("unknown kind %q", s.Kind)
	}
	if err != nil {
		return err
	}
	s.proc = p
	return nil
}

// tempDir prefers /dev/shm: etcd fsyncs, and tmpfs makes that cheap.
func tempDir(t testing.TB) string {
	d, err := os.MkdirTemp("/dev/shm", "felt-etcdtest-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("etcdtest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
