package keyvault_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// loopingNextLink makes every versions page name itself as the next one.
type loopingNextLink struct{}

func (loopingNextLink) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err != nil || !strings.HasSuffix(req.Raw().URL.Path, "/versions") {
		return resp, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["nextLink"] = req.Raw().URL.String()
	b, _ = json.Marshal(m)
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	resp.ContentLength = int64(len(b))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// Issue 19 (defect 6's sibling in the certificate cache, reported by the
// rotation work): a vault whose nextLink loops made Versions list until the
// caller's deadline (forever with context.Background). It stops with an
// error after a bounded number of pages.
func TestVersionsStopsAtALoopingNextLink(t *testing.T) {
	e := kvasserttest.NewTB(t, world())
	cred, err := e.ClientSecretCredential(scenario.DemoWorkloadClientID)
	if err != nil {
		t.Fatal(err)
	}
	opts := e.ClientOptions()
	opts.PerCallPolicies = append(opts.PerCallPolicies, loopingNextLink{})
	c, err := keyvault.NewCertificateCache(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, cred, &keyvault.CertificateCacheOptions{Options: keyvault.Options{ClientOptions: opts}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a safety bound, not the rule tested
	defer cancel()
	_, err = c.Versions(ctx)
	if ctx.Err() != nil {
		t.Fatalf("Versions listed until the test's safety bound: %v", err)
	}
	if err == nil || !strings.Contains(err.Error(), "pages") {
		t.Fatalf("Versions = %v, want an error about the pages", err)
	}
}
