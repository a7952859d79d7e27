package fleet

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/kvassert/kvassert/internal/redistest"
)

// rawClient returns a new go-redis client on s (closed when the test ends)
// for setting up and inspecting the server directly.
func rawClient(s *redistest.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	s.Cleanup(func() { c.Close() })
	return c
}

// startRaw starts a redis-server for the test and returns it with a
// rawClient on it.
func startRaw(tb testing.TB) (*redistest.Server, *redis.Client) {
	srv := redistest.Start(tb)
	return srv, rawClient(srv)
}
