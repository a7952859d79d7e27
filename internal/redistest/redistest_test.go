package redistest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestServerLifecycle(t *testing.T) {
	s := Start(t)
	c := s.Client()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// No persistence: a restart starts empty.
	s.Restart()
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("after restart: %d keys, %v", n, err)
	}
	c.Set(ctx, "k", "v", 0)
	s.FlushAll()
	if n, _ := c.DBSize(ctx).Result(); n != 0 {
		t.Fatalf("after FLUSHALL: %d keys", n)
	}
	s.Pause(500 * time.Millisecond)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := c.Get(short, "k").Err(); err == nil {
		t.Fatal("a paused server answered")
	}
	s.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("a stopped server answered")
	}
}

func TestCluster(t *testing.T) {
	cl := StartCluster(t, 3)
	c := cl.Client(t)
	ctx := context.Background()
	// Keys land on different masters; hash-tagged keys share one slot.
	for _, k := range []string{"a", "b", "c", "d", "{t}:x", "{t}:y"} {
		if err := c.Set(ctx, k, "v", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	x, _ := c.ClusterKeySlot(ctx, "{t}:x").Result()
	y, _ := c.ClusterKeySlot(ctx, "{t}:y").Result()
	if x != y {
		t.Fatalf("hash tags: slots %d and %d", x, y)
	}
	var mu sync.Mutex
	holding := 0
	err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		mu.Lock()
		defer mu.Unlock()
		if n > 0 {
			holding++
		}
		return err
	})
	if err != nil || holding < 2 {
		t.Fatalf("keys spread over %d masters (want 2 or more): %v", holding, err)
	}
}
