// Package redistest starts real redis-server processes on loopback for tests:
// no persistence, a free port, stopped when the test ends. It uses the
// standard library only (Do speaks just enough RESP), so that any module of
// this repository may import it without a Redis client: the fleet's tests
// open their own go-redis clients on Addr. Tests that need
// Redis fail when it is missing and the environment says it is required
// (CI=true or KVASSERT_REQUIRE_REDIS=1), and skip with a message otherwise.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Required reports whether tests must fail rather than skip when
// redis-server is not installed.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("KVASSERT_REQUIRE_REDIS") == "1"
}

// need fails or skips t when the named binary is missing.
func need(t testing.TB, bin string) string {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err == nil {
		return path
	}
	if Required() {
		t.Fatalf("%s is required (CI=true or KVASSERT_REQUIRE_REDIS=1) but not installed: apt-get install -y redis-server redis-tools", bin)
	}
	t.Skipf("%s not installed (apt-get install -y redis-server redis-tools); set KVASSERT_REQUIRE_REDIS=1 to make this a failure", bin)
	return ""
}

// Server is one redis-server process on 127.0.0.1.
type Server struct {
	t     testing.TB
	bin   string
	dir   string
	port  int
	extra []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts a redis-server with no persistence on a free loopback port and
// stops it when the test ends. extra are more command-line arguments, e.g.
// "--maxmemory", "1mb".
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	s := &Server{t: t, bin: need(t, "redis-server"), dir: t.TempDir(), port: freePort(t), extra: extra}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) start() error {
	args := append([]string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--enable-debug-command", "local", "--loglevel", "warning",
	}, s.extra...)
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start redis-server: %w", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	return waitReady(s.Addr(), 10*time.Second)
}

// waitReady polls PING until the server answers.
func waitReady(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := Do(ctx, addr, "PING")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: redis-server on %s not ready after %s: %w", addr, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Cleanup registers f to run when the server's test ends (before the
// server stops), e.g. to close a client opened on Addr.
func (s *Server) Cleanup(f func()) { s.t.Cleanup(f) }

// Stop kills the server (as a crash would) and waits for it to exit.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill() //nolint:errcheck // already gone is fine
	cmd.Wait()         //nolint:errcheck // killed on purpose
}

// Restart stops the server and starts a new empty one on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

// Pause makes the server stop answering clients for d (CLIENT PAUSE ALL).
// It returns at once.
func (s *Server) Pause(d time.Duration) {
	s.t.Helper()
	if _, err := Do(context.Background(), s.Addr(), "CLIENT", "PAUSE", strconv.FormatInt(d.Milliseconds(), 10), "ALL"); err != nil {
		s.t.Fatalf("redistest: CLIENT PAUSE: %v", err)
	}
}

// FlushAll deletes every key.
func (s *Server) FlushAll() {
	s.t.Helper()
	if _, err := Do(context.Background(), s.Addr(), "FLUSHALL"); err != nil {
		s.t.Fatalf("redistest: FLUSHALL: %v", err)
	}
}

// TryRestart is Restart for goroutines other than the test's (chaos
// tests): it reports a failure to start instead of failing the test.
func (s *Server) TryRestart() error {
	s.Stop()
	return s.start()
}
