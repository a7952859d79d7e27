package vault

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// BenchmarkSignParallel measures the sign handler (token check, RBAC,
// RSA-2048 PS256) under parallel load: no vault-wide lock is held during
// the RSA math.
func BenchmarkSignParallel(b *testing.B) {
	auth, err := emu.NewAuthority()
	if err != nil {
		b.Fatal(err)
	}
	v, err := New(Config{Vault: scenario.Vault{Name: "bench-vault", Tenant: testTenant, Keys: []scenario.VaultKey{{Name: "k"}},
		Access: []scenario.Access{{Principal: writerApp, Permissions: []string{"keys/sign"}}}}, Authority: auth})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().Unix()
	tok, _ := auth.Issue(emu.AccessClaims{Aud: ResourceVault, Tid: testTenant, AppID: writerApp, Nbf: now, Exp: now + 3600})
	digest := sha256.Sum256([]byte("bench"))
	body := `{"alg":"PS256","value":"` + b64url(digest[:]) + `"}`
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "https://bench-vault.vault.azure.net/keys/k/sign?api-version=7.6", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			v.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}
