package rotation_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"

	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/rotation"
)

// TestInputErrorTable: every bad input to New, its Options and Run is an
// *inputerr.Error (kvassert.InputError) whose message names the parameter.
// (Was TestNewRefusesBadConfig.)
func TestInputErrorTable(t *testing.T) {
	w := newWorld(t, nil)
	const secretish = "s3cr3t-VALUE-never-echoed"
	rows := []struct {
		name, param string
		mod         func(c *config)
	}{
		{"object id = client id", "ObjectID", func(c *config) { c.app.ObjectID = c.app.ClientID }},
		{"object id not a GUID", "ObjectID", func(c *config) { c.app.ObjectID = "app" }},
		{"client id not a GUID", "ClientID", func(c *config) { c.app.ClientID = secretish }},
		{"bad tenant", "TenantID", func(c *config) { c.app.TenantID = "a b" }},
		{"no vault credential", "vaultCredential", func(c *config) { c.cred = nil }},
		{"negative grace", "Grace", func(c *config) { c.Grace = -time.Hour }},
		{"negative accept timeout", "AcceptTimeout", func(c *config) { c.AcceptTimeout = -time.Second }},
		{"negative renew before", "RenewBefore", func(c *config) { c.RenewBefore = -time.Second }},
		{"negative pass timeout", "PassTimeout", func(c *config) { c.PassTimeout = -time.Second }},
		{"negative lifetime", "Lifetime", func(c *config) { c.Lifetime = -time.Second }},
		{"bad algorithm", "Algorithm", func(c *config) { c.Algorithm = "HS256" }},
		{"unknown cloud", "Cloud", func(c *config) {
			c.ClientOptions.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: "https://login.example.com/"}
		}},
		{"http vault", "vaultURL", func(c *config) { c.vaultURL = "http://kvassert-demo.vault.azure.net/" }},
		{"managed HSM", "vaultURL", func(c *config) { c.vaultURL = "https://kvassert-demo.managedhsm.azure.net/" }},
		{"loopback vault without AllowLoopback", "AllowLoopback", func(c *config) { c.vaultURL = "https://127.0.0.1:8443/" }},
		{"bad certificate name", "certificate", func(c *config) { c.certificate = "no spaces" }},
	}
	for _, row := range rows {
		cfg := w.config()
		row.mod(&cfg)
		_, err := cfg.new()
		var ie *inputerr.Error
		switch {
		case err == nil:
			t.Errorf("%s: accepted", row.name)
		case !errors.As(err, &ie):
			t.Errorf("%s: %T %v, want an *inputerr.Error", row.name, err, err)
		case !strings.Contains(err.Error(), row.param):
			t.Errorf("%s: %q does not name %s", row.name, err, row.param)
		case strings.Contains(err.Error(), secretish):
			t.Errorf("%s: %q echoes the input", row.name, err)
		}
	}
	// nil *Options means the defaults.
	cfg := w.config()
	if _, err := rotation.New(cfg.vaultURL, cfg.certificate, cfg.cred, cfg.app, nil); err != nil {
		t.Errorf("nil options: %v", err)
	}
	r := w.roller(nil)
	var ie *inputerr.Error
	if err := r.Run(context.Background(), 0); !errors.As(err, &ie) || !strings.Contains(err.Error(), "interval") {
		t.Errorf("Run(0): %v, want an InputError naming interval", err)
	}
}
