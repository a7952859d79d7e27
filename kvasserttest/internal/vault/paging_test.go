package vault

import (
	"net/url"
	"strings"
	"testing"

	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// TestVersionsPaging: maxresults and $skiptoken page the versions list, the
// nextLink carries api-version, and bad values are refused with BadParameter.
func TestVersionsPaging(t *testing.T) {
	h := newHarness(t, scenario.Vault{Certificates: []scenario.VaultCertificate{{Name: "c"}}})
	for range 2 { // two more versions: create with the stored policy
		if resp, body := h.do("POST", "/certificates/c/create?api-version=7.6", writerApp, `{}`); resp.StatusCode != 202 {
			t.Fatalf("create: %d %v", resp.StatusCode, body)
		}
		h.do("GET", "/certificates/c/pending?api-version=7.6", writerApp, "")
	}
	var ids []string
	path := "/certificates/c/versions?api-version=7.6&maxresults=2"
	for pages := 0; path != ""; pages++ {
		if pages > 3 {
			t.Fatal("paging does not end")
		}
		resp, body := h.do("GET", path, writerApp, "")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, body)
		}
		for _, v := range body["value"].([]any) {
			ids = append(ids, v.(map[string]any)["id"].(string))
		}
		path = ""
		if next, _ := body["nextLink"].(string); next != "" {
			u, err := url.Parse(next)
			if err != nil || u.Query().Get("api-version") != "7.6" || !strings.HasPrefix(next, h.srv.URL+"/certificates/c/versions?") {
				t.Fatalf("nextLink %q", next)
			}
			path = strings.TrimPrefix(next, h.srv.URL)
		}
	}
	if len(ids) != 3 || ids[0] == ids[1] || ids[1] == ids[2] {
		t.Fatalf("versions over pages: %v", ids)
	}
	for _, q := range []string{"maxresults=0", "maxresults=26", "maxresults=x", "$skiptoken=-1"} {
		if resp, body := h.do("GET", "/certificates/c/versions?api-version=7.6&"+q, writerApp, ""); resp.StatusCode != 400 || errorCode(body) != "BadParameter" {
			t.Errorf("%s: %d %v", q, resp.StatusCode, body)
		}
	}
}
