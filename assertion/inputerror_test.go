package assertion

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/inputerr"
)

// TestInputErrorTable: every constructor and option of the package refuses
// bad input with an *inputerr.Error (kvassert.InputError) whose message
// names the parameter.
func TestInputErrorTable(t *testing.T) {
	cert, key := validCert(t)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecCert := selfSigned(t, ec, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	b, _ := New(cert, key, nil)
	build := func(client, aud string) error { _, err := b.Build(context.Background(), client, aud); return err }
	rows := []struct {
		param, mention string
		err            error
	}{
		{"certificate", "certificate", errOf(New(nil, key, nil))},
		{"certificate", "certificate", errOf(New(ecCert, ec, nil))},
		{"certificate", "2048", errOf(New(selfSigned(t, small, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), small, nil))},
		{"signer", "signer", errOf(New(cert, nil, nil))},
		{"signer", "signer", errOf(New(cert, other, nil))},
		{"algorithm", "algorithm", errOf(New(cert, key, &Options{Algorithm: "HS256"}))},
		{"Lifetime", "lifetime", errOf(New(cert, key, &Options{Lifetime: 2 * time.Hour}))},
		{"Lifetime", "lifetime", errOf(New(cert, key, &Options{Lifetime: -time.Minute}))},
		{"X5C", "x5c", errOf(New(cert, key, &Options{X5C: []*x509.Certificate{nil}}))},
		{"Thumbprint", "thumbprint", errOf(New(nil, key, &Options{Thumbprint: make([]byte, 19)}))},
		{"Thumbprint", "thumbprint", errOf(New(cert, key, &Options{Thumbprint: make([]byte, 20)}))},
		{"Algorithm", "thumbprint", errOf(New(nil, key, &Options{Thumbprint: make([]byte, 20), Algorithm: PS256}))},
		{"client ID", "client ID", build("", "https://login.microsoftonline.com/t/oauth2/v2.0/token")},
		{"audience", "audience", build("c", "https://x\n")},
	}
	for _, r := range rows {
		var ie *inputerr.Error
		if !errors.As(r.err, &ie) {
			t.Errorf("%s: err = %v (%T), want an InputError", r.param, r.err, r.err)
			continue
		}
		if ie.Input != r.param || !strings.Contains(strings.ToLower(ie.Error()), strings.ToLower(r.mention)) {
			t.Errorf("%s: InputError{Input: %q} %q does not name the parameter", r.param, ie.Input, ie.Error())
		}
	}
}

func errOf[T any](_ T, err error) error { return err }
