package testfixture

import (
	"encoding/json"
	"io"
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
