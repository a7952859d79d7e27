package reliability_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	azlog "github.com/Azure/azure-sdk-for-go/sdk/azcore/log"

	"github.com/kvassert/kvassert/internal/emuhook"
)

// capture receives every log line of the package's tests (slog's default
// logger, the loggers given to credentials, sources and emulators, and
// azcore's log events) and every error string the tests produce; TestMain
// scans it after the tests for tokens, assertions, secrets and private keys.
var capture = &sink{}

type sink struct {
	mu   sync.Mutex
	logs bytes.Buffer
	errs []string
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logs.Len() < 64<<20 {
		s.logs.Write(p)
	}
	return len(p), nil
}

// noteErr records an error string for the scan.
func noteErr(err error) {
	if err == nil {
		return
	}
	capture.mu.Lock()
	defer capture.mu.Unlock()
	if len(capture.errs) < 100000 {
		capture.errs = append(capture.errs, err.Error())
	}
}

// testLogger is a Debug-level logger into the capture.
func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(capture, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

var (
	jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)
	pemRE = regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)
)

// leaks returns what in text looks like a token or an assertion (every
// token and assertion here is a JWT), a client secret (the scenario's, or the
// ones the bad-input tests hide in URLs) or a private key.
func leaks(text string) []string {
	var out []string
	if m := jwtRE.FindString(text); m != "" {
		out = append(out, "a JWT ("+m[:min(len(m), 24)]+"…)")
	}
	if pemRE.MatchString(text) {
		out = append(out, "PEM private key text")
	}
	for _, s := range []string{emuhook.DemoWorkloadSecret, "hunter2-secret-password", "SECRET-QUERY-SIGNATURE"} {
		if strings.Contains(text, s) {
			out = append(out, "the secret "+s[:6]+"…")
		}
	}
	return out
}

func TestMain(m *testing.M) {
	slog.SetDefault(testLogger())
	azlog.SetListener(func(ev azlog.Event, msg string) { fmt.Fprintf(capture, "azcore %s: %s\n", ev, msg) })
	code := m.Run()
	azlog.SetListener(nil)
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))

	capture.mu.Lock()
	logs, errs := capture.logs.String(), capture.errs
	capture.mu.Unlock()
	var problems []string
	for i, line := range strings.Split(logs, "\n") {
		for _, l := range leaks(line) {
			problems = append(problems, fmt.Sprintf("log line %d holds %s: %.200s", i+1, l, line))
		}
	}
	for _, e := range errs {
		for _, l := range leaks(e) {
			problems = append(problems, fmt.Sprintf("error holds %s: %.300s", l, e))
		}
	}
	fmt.Printf("leak scan: %d log bytes, %d error strings, %d problems\n", len(logs), len(errs), len(problems))
	if len(problems) > 0 {
		for _, p := range problems[:min(len(problems), 20)] {
			fmt.Println("LEAK:", p)
		}
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
