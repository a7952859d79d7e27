package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokenCacheKeySources (moved from fleet's TestKeySources with
// fleet.KeyFromEnv/KeyFromFile): the cache key from an environment
// variable or a file (surrounding whitespace ignored) is the same key;
// failures name the source and never show the key.
func TestTokenCacheKeySources(t *testing.T) {
	const b64 = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=" // 32 x 0x01
	t.Setenv("KVASSERT_TEST_KEY", b64)
	fromEnv, err := keyFromEnv("k1", "KVASSERT_TEST_KEY")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte(" "+strings.TrimRight(b64, "=")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := keyFromFile("k1", path)
	if err != nil {
		t.Fatal(err)
	}
	if fromEnv.String() != "fleet.Key(k1)" || fromFile.String() != "fleet.Key(k1)" {
		t.Fatalf("keys %v and %v, want k1", fromEnv, fromFile)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("AQEBAQEBAQEBAQEBAQEBAQ=="), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KVASSERT_TEST_SHORT_KEY", "AQEBAQEBAQEBAQEBAQEBAQ==")
	for name, c := range map[string]struct {
		f    func() error
		want string
	}{
		"unset env":     {func() error { _, err := keyFromEnv("k1", "KVASSERT_TEST_NO_SUCH_VAR"); return err }, "KVASSERT_TEST_NO_SUCH_VAR"},
		"short env key": {func() error { _, err := keyFromEnv("k1", "KVASSERT_TEST_SHORT_KEY"); return err }, "KVASSERT_TEST_SHORT_KEY"},
		"no file":       {func() error { _, err := keyFromFile("k1", filepath.Join(t.TempDir(), "none")); return err }, "none"},
		"short file":    {func() error { _, err := keyFromFile("k1", bad); return err }, bad},
	} {
		err := c.f()
		switch {
		case err == nil:
			t.Errorf("%s: accepted", name)
		case !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: %v does not name %s", name, err, c.want)
		case strings.Contains(err.Error(), "AQEBAQEB"):
			t.Errorf("%s: error shows the key", name)
		}
	}
}
