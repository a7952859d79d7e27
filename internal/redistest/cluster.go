package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Cluster is a Redis Cluster of masters (no replicas) on loopback, each a
// Server started with --cluster-enabled and joined by
// `redis-cli --cluster create`.
type Cluster struct {
	// Nodes are the masters.
	Nodes []*Server
}

// StartCluster starts a cluster of n masters (3 at least) and waits until
// every node reports cluster_state:ok. It is stopped when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 3 {
		t.Fatalf("redistest: a cluster needs at least 3 masters, not %d", n)
	}
	cli := need(t, "redis-cli")
	c := &Cluster{}
	args := []string{"--cluster", "create"}
	for range n {
		s := Start(t, "--cluster-enabled", "yes", "--cluster-node-timeout", "2000")
		c.Nodes = append(c.Nodes, s)
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.waitOK(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// Addrs are the masters' host:port.
func (c *Cluster) Addrs() []string {
	var a []string
	for _, s := range c.Nodes {
		a = append(a, s.Addr())
	}
	return a
}

// URL is a redis:// URL naming every master, with cluster=true (the form
// fleet.NewClient reads).
func (c *Cluster) URL() string { return "redis://" + strings.Join(c.Addrs(), ",") + "?cluster=true" }

func (c *Cluster) waitOK(within time.Duration) error {
	deadline := time.Now().Add(within)
	for _, s := range c.Nodes {
		for {
			info, err := Do(context.Background(), s.Addr(), "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("redistest: cluster node %s not ok after %s: %v %q", s.Addr(), within, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}
