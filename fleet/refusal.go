package fleet

import (
	"context"

	"github.com/kvassert/kvassert"
)

// TEMPORARY (issue 21 base): the tenant-refusal methods of
// kvassert.SharedCache share nothing yet; the fleet helper replaces this
// file with the Redis implementation.

// Refuse implements kvassert.SharedCache.
func (c *Cache) Refuse(context.Context, kvassert.SharedKey, kvassert.TenantRefusal) error {
	return nil
}

// Refusal implements kvassert.SharedCache.
func (c *Cache) Refusal(context.Context, kvassert.SharedKey) (kvassert.TenantRefusal, bool, error) {
	return kvassert.TenantRefusal{}, false, nil
}

// Forget implements kvassert.SharedCache.
func (c *Cache) Forget(context.Context, kvassert.SharedKey) error { return nil }
