package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
)

// TestUnreachableByType: exit code 3 is given by the error's type (dial,
// DNS, TLS, a transport error, a timeout), through any wrapping; a listen
// error of our own and other failures stay 1; the message names the host,
// never the URL's path or query.
func TestUnreachableByType(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, Err: syscall.ECONNREFUSED}
	u := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://v.vault.azure.net/secrets/s?api-version=7.6&sig=SECRETSIG", Err: err}
	}
	cases := []struct {
		name string
		err  error
		code int
	}{
		{"dial", failure("reading", fmt.Errorf("keyvault: x: %w", u(dial))), exitUnreachable},
		{"dns", fmt.Errorf("a: %w", u(&net.DNSError{Err: "no such host", Name: "v.vault.azure.net", IsNotFound: true})), exitUnreachable},
		{"tls", u(x509.UnknownAuthorityError{}), exitUnreachable},
		{"hostname", u(x509.HostnameError{Certificate: &x509.Certificate{}, Host: "v"}), exitUnreachable},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), exitUnreachable},
		{"refused without url", fmt.Errorf("x: %w", syscall.ECONNREFUSED), exitUnreachable},
		{"listen", failure("starting", &net.OpError{Op: "listen", Net: "tcp", Err: syscall.EADDRINUSE}), exitFailure},
		{"other", failure("doing", errors.New("the service said no")), exitFailure},
		{"usage stays usage", usageError("bad flag", ""), exitUsage},
	}
	for _, c := range cases {
		msg, hint, code := describe(c.err)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d (%s)", c.name, code, c.code, msg)
		}
		if strings.Contains(msg+hint, "SECRETSIG") || strings.Contains(msg+hint, "/secrets/") {
			t.Errorf("%s: the URL's path or query leaks: %q / %q", c.name, msg, hint)
		}
	}
	msg, hint, _ := describe(failure("reading", u(dial)))
	if msg != "reading: could not reach v.vault.azure.net: dial tcp 127.0.0.1:9: connection refused" || !strings.Contains(hint, "kvassert emulate") {
		t.Errorf("dial: %q / %q", msg, hint)
	}
}
