package kvassert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
)

// This file keeps the text of the token endpoint's answers out of errors
// and logs. MSAL's errors quote the answer's body ("raw message was: ..."
// when a 200 cannot be decoded, the whole body after a refusal), and a 200
// holds the access token: kvassert words those errors itself, from the
// status, the content type and the length of the answer.

// maxTokenResponse bounds the token endpoint's answer MSAL reads: Entra's
// are a few KiB.
const maxTokenResponse = 1 << 20

// answerKey is the context key of an *answerRecord.
type answerKey struct{}

// answerRecord is what an acquisition learns of the last answer MSAL got
// (pipelineHTTP fills it in): never the body.
type answerRecord struct {
	mu   sync.Mutex
	seen bool
	a    answer
}

// answer is what kvassert may say of an answer.
type answer struct {
	status      int
	contentType string
	length      int64 // bytes MSAL read of the body
	tooLong     bool
}

// record notes resp and makes its body count (and stop at
// maxTokenResponse) as MSAL reads it.
func (r *answerRecord) record(resp *http.Response) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen, r.a = true, answer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type")}
	if resp.Body != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, rec: r}
	}
}

func (r *answerRecord) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = false
}

func (r *answerRecord) get() (answer, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.a, r.seen
}

// countingBody counts what is read of a body and fails past
// maxTokenResponse.
type countingBody struct {
	io.ReadCloser
	rec *answerRecord
	n   int64
}

var errAnswerTooLong = errors.New("the token endpoint's answer is longer than 1 MiB")

func (b *countingBody) Read(p []byte) (int, error) {
	if b.n >= maxTokenResponse {
		b.rec.mu.Lock()
		b.rec.a.tooLong = true
		b.rec.mu.Unlock()
		return 0, errAnswerTooLong
	}
	if rest := maxTokenResponse - b.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	b.rec.mu.Lock()
	b.rec.a.length = b.n
	b.rec.mu.Unlock()
	return n, err
}

// withAnswerRecord returns ctx carrying a new answerRecord.
func withAnswerRecord(ctx context.Context) (context.Context, *answerRecord) {
	r := &answerRecord{}
	return context.WithValue(ctx, answerKey{}, r), r
}

// recordAnswer notes resp in ctx's answerRecord, if any.
func recordAnswer(ctx context.Context, resp *http.Response) {
	if r, ok := ctx.Value(answerKey{}).(*answerRecord); ok && resp != nil {
		r.record(resp)
	}
}

// answerError is an answer of the token endpoint that kvassert cannot use
// (a 200 that is not a token response: a field of the wrong type,
// truncated, HTML, too long), worded from its status, content type and
// length: never from its body, which may hold the token.
type answerError struct {
	tenant string
	a      answer
	cause  error  // the context's error, when it ended the read
	what   string // what is wrong; "": not a token response
}

func (e *answerError) Error() string {
	what := "is not a token response kvassert can use"
	if e.what != "" {
		what = e.what
	} else if e.a.tooLong {
		what = "is longer than 1 MiB"
	} else if e.cause != nil {
		what = "was cut short: " + e.cause.Error()
	}
	return fmt.Sprintf("kvassert: token for tenant %s: the token endpoint's answer (HTTP %d, %s) %s", e.tenant, e.a.status, describeBody(e.a.contentType, e.a.length), what)
}

func (e *answerError) Unwrap() error { return e.cause }

// ErrorType returns "invalid_token_response" (see internal/obs.ErrorTyper).
func (e *answerError) ErrorType() string { return "invalid_token_response" }

// tokenEndpointFailure turns an MSAL error that is not an Entra refusal
// into kvassert's error: an answer MSAL could not use becomes an
// answerError (MSAL's text quotes its body); an error before any answer (a
// transport error, the Source's, the context's) is kept.
func tokenEndpointFailure(tenant string, err error, rec *answerRecord) error {
	var bad msalerrors.InvalidJsonErr
	a, answered := rec.get()
	if !answered && !errors.As(err, &bad) {
		return fmt.Errorf("kvassert: token for tenant %s: %w", tenant, err)
	}
	ae := &answerError{tenant: tenant, a: a}
	if errors.Is(err, context.Canceled) {
		ae.cause = context.Canceled
	} else if errors.Is(err, context.DeadlineExceeded) {
		ae.cause = context.DeadlineExceeded
	}
	return ae
}

// describeBody words an answer's content type (only a plain type/subtype
// of at most 64 bytes is repeated) and length (-1: unknown).
func describeBody(contentType string, length int64) string {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if !plainMediaType(mt) {
		mt = "unknown content type"
		if contentType == "" {
			mt = "no content type"
		}
	}
	if length < 0 {
		return mt
	}
	return mt + ", " + strconv.FormatInt(length, 10) + " bytes"
}

func plainMediaType(mt string) bool {
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || typ == "" || sub == "" || len(mt) > 64 {
		return false
	}
	for i := 0; i < len(mt); i++ {
		c := mt[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '+' || c == '-' || c == '/' && i == len(typ)) {
			return false
		}
	}
	return true
}
