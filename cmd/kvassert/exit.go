package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1 // the command failed, or decode/audit found problems
	exitUsage       = 2 // bad, missing or conflicting flags and arguments
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

// oneLine makes sure a message is one line.
func oneLine(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(s)
	return strings.TrimSpace(s)
}
