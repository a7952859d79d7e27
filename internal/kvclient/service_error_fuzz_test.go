package kvclient_test

import (
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/kvassert/kvassert/internal/kvclient"
)

var (
	fuzzCodeRE   = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_.]{0,63})?$`)
	fuzzActionRE = regexp.MustCompile(`^(Microsoft\.KeyVault/[A-Za-z/]+)?$`)
	fuzzCallerRE = regexp.MustCompile(`^([0-9a-f-]{36})?$`)
)

// FuzzServiceErrorBody: whatever a vault answers (status line, error code
// header, body), the ServiceError made of it holds only values of strict
// forms, and the *azcore.ResponseError it unwraps to has no body.
func FuzzServiceErrorBody(f *testing.F) {
	f.Add(403, "Forbidden", "403 Forbidden", `{"error":{"code":"Forbidden","message":"Caller: appid=66666666-7777-8888-9999-000000000000;oid=x\r\nAction: 'Microsoft.KeyVault/vaults/keys/sign/action'","innererror":{"code":"ForbiddenByRbac"}}}`)
	f.Add(404, "", "404 x", `{"error":{"code":"Key Not Found <b>","message":"m"}}`)
	f.Add(500, "", "500", "<html>body</html>")
	f.Add(429, "Throttled\r\nX: y", "429 \x00", `{"error":null}`)
	f.Fuzz(func(t *testing.T, status int, codeHeader, statusLine, body string) {
		if status < 400 || status > 599 {
			return
		}
		req, _ := http.NewRequest(http.MethodGet, "https://v1.vault.azure.net/keys/k?api-version=x", nil)
		resp := &http.Response{StatusCode: status, Status: statusLine, Request: req, Header: http.Header{"X-Ms-Error-Code": {codeHeader}, "Retry-After": {codeHeader}, "X-Ms-Request-Id": {codeHeader}},
			Body: io.NopCloser(strings.NewReader(body))}
		se := kvclient.AsServiceError(runtime.NewResponseError(resp))
		if se == nil {
			t.Fatal("no ServiceError")
		}
		if !fuzzCodeRE.MatchString(se.ErrorCode) || !fuzzCodeRE.MatchString(se.InnerCode) || !fuzzActionRE.MatchString(se.Action) || !fuzzCallerRE.MatchString(se.Caller) {
			t.Fatalf("a field of an unexpected form: %#v", se)
		}
		var re *azcore.ResponseError
		if !errors.As(se, &re) || re.StatusCode != status {
			t.Fatalf("no ResponseError with status %d", status)
		}
		if b, _ := runtime.Payload(re.RawResponse); len(b) != 0 {
			t.Fatalf("the ResponseError keeps a body: %q", b)
		}
		if want := strconv.Itoa(status) + " " + http.StatusText(status); re.RawResponse.Status != want || !strings.Contains(re.Error(), "Response contained no body") {
			t.Fatalf("ResponseError status line %q, text: %s", re.RawResponse.Status, re.Error())
		}
		for _, v := range re.RawResponse.Header {
			for _, s := range v {
				if strings.ContainsAny(s, " \r\n<>{}\"'") {
					t.Fatalf("a header value kept: %q", s)
				}
			}
		}
	})
}
