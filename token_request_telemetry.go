package kvassert

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
)

// tokenRequestError is what the token request's span records for resp and
// err (the transport's error, or nil): nil for a 2xx answer; for a refusal,
// an error whose error.type is the first AADSTS code of the answer's
// error_codes, else "http_<status>". The body is read (and put back for
// MSAL) but never recorded.
func tokenRequestError(resp *http.Response, err error) error {
	if err != nil || resp == nil {
		return err
	}
	if resp.StatusCode < 300 {
		return nil
	}
	e := &tokenEndpointError{status: resp.StatusCode}
	if resp.Body != nil && resp.StatusCode >= 400 && resp.StatusCode < 500 {
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var answer struct {
			ErrorCodes []int `json:"error_codes"`
		}
		if rerr == nil && json.Unmarshal(body, &answer) == nil && len(answer.ErrorCodes) > 0 && answer.ErrorCodes[0] > 0 {
			e.code = answer.ErrorCodes[0]
		}
	}
	return e
}

// tokenEndpointError is a token endpoint's refusal, as telemetry sees it.
type tokenEndpointError struct {
	status, code int
}

func (e *tokenEndpointError) Error() string {
	s := "token endpoint answered HTTP " + strconv.Itoa(e.status)
	if e.code != 0 {
		s += " (" + e.ErrorType() + ")"
	}
	return s
}

// ErrorType returns "AADSTS<code>", or "http_<status>" without a code.
func (e *tokenEndpointError) ErrorType() string {
	if e.code != 0 {
		return "AADSTS" + strconv.Itoa(e.code)
	}
	return "http_" + strconv.Itoa(e.status)
}
