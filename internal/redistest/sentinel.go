package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Sentinel is a redis-server in Sentinel mode on loopback, monitoring one
// master under a name.
type Sentinel struct {
	// Addr is the sentinel's host:port.
	Addr string
	// MasterName is the monitored master's name.
	MasterName string
}

// StartSentinel starts a sentinel (quorum 1) that monitors master under
// masterName, waits until it answers, and stops it when the test ends.
func StartSentinel(t testing.TB, master *Server, masterName string) *Sentinel {
	t.Helper()
	bin := need(t, "redis-server")
	dir := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 5000\n",
		port, dir, masterName, master.port, masterName)
	path := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, path, "--sentinel", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		t.Fatalf("redistest: start sentinel: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck // already gone is fine
		cmd.Wait()         //nolint:errcheck // killed on purpose
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := waitReady(addr, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return &Sentinel{Addr: addr, MasterName: masterName}
}

// URL is a redis:// URL for the sentinel with master_name (the form
// fleet.NewClient reads).
func (s *Sentinel) URL() string { return "redis://" + s.Addr + "?master_name=" + s.MasterName }
