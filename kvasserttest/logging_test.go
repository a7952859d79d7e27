package kvasserttest_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvassert/kvassert/kvasserttest"
)

// TestRequestLogIsDebug: with no Logger the emulator writes nothing to a
// program's default logger at Info; a logger at Debug gets one line per
// request, without the query string.
func TestRequestLogIsDebug(t *testing.T) {
	def := &syncBuffer{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(def, &slog.HandlerOptions{Level: slog.LevelInfo})))
	t.Cleanup(func() { slog.SetDefault(old) })
	e := kvasserttest.NewTB(t, nil, nil)
	resp, err := e.Client().Get(e.URL() + "/common/discovery/instance?secret=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	dbg := &syncBuffer{}
	e2 := kvasserttest.NewTB(t, nil, &kvasserttest.Options{Logger: slog.New(slog.NewTextHandler(dbg, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	resp, err = e2.Client().Get(e2.URL() + "/common/discovery/instance?secret=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The line is written when the handler returns, which may be after the
	// client has the answer.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(dbg.String(), "msg=request") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if out := dbg.String(); !strings.Contains(out, "level=DEBUG msg=request") || strings.Contains(out, "secret") {
		t.Errorf("debug logger got %q", out)
	}
	if def.String() != "" {
		t.Errorf("default logger at Info got %q", def.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
