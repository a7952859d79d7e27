package testfixture

import (
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// LoopingNextLink is an azcore policy (for ClientOptions.PerCallPolicies)
// that makes every page of a versions listing name itself as the next one:
// a vault whose nextLink loops.
type LoopingNextLink struct{}

// Do implements policy.Policy.
func (LoopingNextLink) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err != nil || !strings.HasSuffix(req.Raw().URL.Path, "/versions") {
		return resp, err
	}
	self := req.Raw().URL.String()
	return RewriteJSON(resp, func(m map[string]any) { m["nextLink"] = self })
}
