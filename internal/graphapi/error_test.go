package graphapi

import (
	"net/http"
	"strings"
	"testing"
)

// Issue 18's rule for every server answer, in the Graph client: an error
// answer's message (server text) never reaches Error.Error, and a code
// that is not code-shaped is not repeated; the message stays available for
// matching.
func TestGraphErrorHoldsNoServerText(t *testing.T) {
	for _, body := range []string{
		`{"error":{"code":"Request_BadRequest","message":"LEAKMARKER key credential already exists"}}`,
		`{"error":{"code":"LEAKMARKER {\"access_token\":\"eyJ\"}","message":"x"}}`,
		`<html>LEAKMARKER</html>`,
	} {
		ge := graphErrorFrom(http.StatusBadRequest, "addKey", []byte(body))
		if msg := ge.Error(); strings.Contains(msg, "LEAKMARKER") || strings.Contains(msg, "eyJ") {
			t.Errorf("the answer's text reaches the error: %s", msg)
		}
		if !strings.Contains(ge.Error(), "addKey") || !strings.Contains(ge.Error(), "400") {
			t.Errorf("the error does not name the operation and status: %s", ge.Error())
		}
	}
	ge := graphErrorFrom(http.StatusBadRequest, "addKey", []byte(`{"error":{"code":"Request_BadRequest","message":"duplicate key"}}`))
	if ge.Code != "Request_BadRequest" || ge.Message != "duplicate key" {
		t.Errorf("code %q, message %q: the typed fields are lost", ge.Code, ge.Message)
	}
}
