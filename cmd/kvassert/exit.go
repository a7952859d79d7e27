package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1 // the command failed, or decode/audit found problems
	exitUsage       = 2 // bad, missing or conflicting flags and arguments
	exitUnreachable = 3 // a service could not be reached: dial, DNS, TLS, timeout
	exitInterrupted = 130
)

// exitError is an error with the one-line message, hint and exit code to
// report. When err is set, its description follows msg after ": ".
type exitError struct {
	code      int
	msg, hint string
	err       error
}

// Error is the message and its cause (the report uses describe instead).
func (e *exitError) Error() string {
	switch {
	case e.err == nil:
		return e.msg
	case e.msg == "":
		return e.err.Error()
	}
	return e.msg + ": " + e.err.Error()
}

// Unwrap returns the cause.
func (e *exitError) Unwrap() error { return e.err }

// usageError is a problem with the command line (exit code 2).
func usageError(msg, hint string) error { return &exitError{code: exitUsage, msg: msg, hint: hint} }

// failure wraps err with what was being done (exit code 1).
func failure(doing string, err error) error {
	return &exitError{code: exitFailure, msg: doing, err: err}
}

// report prints err as "error: ..." (one line) and an optional "hint: ..."
// line on stderr and returns the exit code.
func (a *App) report(ctx context.Context, err error) int {
	if errors.Is(err, errNoResult) {
		return exitFailure
	}
	msg, hint, code := describe(err)
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, ctx.Err())) {
		msg, hint, code = "interrupted", "", exitInterrupted
	}
	fmt.Fprintln(a.Stderr, "error: "+oneLine(msg))
	if hint != "" {
		fmt.Fprintln(a.Stderr, "hint: "+oneLine(hint))
	}
	return code
}

// unreachable reports whether err is a failure to reach a service rather
// than its answer: a dial, DNS or TLS error, a transport error of the HTTP
// client, or a timeout. A refusal by the service (an answer) is not.
func unreachable(err error) bool {
	var (
		op   *net.OpError
		dns  *net.DNSError
		ue   *url.Error
		cve  *tls.CertificateVerificationError
		rhe  tls.RecordHeaderError
		ua   x509.UnknownAuthorityError
		he   x509.HostnameError
		cie  x509.CertificateInvalidError
		nerr net.Error
	)
	if errors.As(err, &op) && op.Op == "listen" {
		return false // our own listener, not a service
	}
	switch {
	case errors.As(err, &op), errors.As(err, &dns), errors.As(err, &ue), errors.As(err, &cve), errors.As(err, &rhe),
		errors.As(err, &ua), errors.As(err, &he), errors.As(err, &cie):
		return true
	case errors.As(err, &nerr) && nerr.Timeout():
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// oneLine makes sure a message is one line.
func oneLine(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(s)
	return termSafe(strings.TrimSpace(s))
}
