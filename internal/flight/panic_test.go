package flight

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
)

// A panic in fn reaches every caller of the call as a *PanicError (whose
// message does not quote the panic value), OnPanic once with the value and
// the stack, the key is released, and the next call runs fn again. Before,
// the panic escaped the call's goroutine and ended the process.
func TestDoRecoversPanicForEveryWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var reported []*PanicError
		g := Group[string, int]{Name: "token acquisition", OnPanic: func(pe *PanicError) { reported = append(reported, pe) }}
		release := make(chan struct{})
		fn := func(context.Context) (int, error) {
			<-release
			panic("SECRETMARKER token text")
		}
		const waiters = 10
		errs := make(chan error, waiters)
		var wg sync.WaitGroup
		for range waiters {
			wg.Go(func() {
				v, err := g.Do(context.Background(), "k", 0, fn)
				if v != 0 {
					t.Errorf("value %d with a panic", v)
				}
				errs <- err
			})
		}
		synctest.Wait() // every caller waits on the one call
		close(release)
		wg.Wait()
		close(errs)
		for err := range errs {
			var pe *PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *PanicError", err)
			}
			if strings.Contains(err.Error(), "SECRETMARKER") || err.Error() != "panic in token acquisition (recovered)" {
				t.Fatalf("Error() = %q", err.Error())
			}
			if pe.Value != "SECRETMARKER token text" || !strings.Contains(string(pe.Stack), "panic_test.go") {
				t.Fatalf("the PanicError lost the value or stack: %v\n%s", pe.Value, pe.Stack)
			}
		}
		if len(reported) != 1 {
			t.Fatalf("OnPanic called %d times for one panic", len(reported))
		}
		if g.InFlight("k") {
			t.Fatal("the key is still held after the panic")
		}
		v, err := g.Do(context.Background(), "k", 0, func(context.Context) (int, error) { return 7, nil })
		if v != 7 || err != nil {
			t.Fatalf("the call after the panic: %d, %v", v, err)
		}
	})
}

// Start's call (nobody waits) recovers too, and so does a fn that calls
// runtime.Goexit; a panicking OnPanic is ignored; a Group without a Name
// says "detached call".
func TestStartAndGoexitRecover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := Group[string, int]{OnPanic: func(*PanicError) { panic("OnPanic too") }}
		if !g.Start(context.Background(), "k", 0, func(context.Context) (int, error) { panic(errors.New("boom")) }) {
			t.Fatal("Start started nothing")
		}
		synctest.Wait()
		if g.InFlight("k") {
			t.Fatal("the key is still held after the panic")
		}
		_, err := g.Do(context.Background(), "k", 0, func(context.Context) (int, error) { runtime.Goexit(); return 1, nil })
		var pe *PanicError
		if !errors.As(err, &pe) || err.Error() != "panic in detached call (recovered)" {
			t.Fatalf("Goexit in fn: err = %v", err)
		}
		if v, err := g.Do(context.Background(), "k", 0, func(context.Context) (int, error) { return 2, nil }); v != 2 || err != nil {
			t.Fatalf("after: %d, %v", v, err)
		}
	})
}

// A caller whose context has ended starts no call: it gets the context's
// error at once and fn never runs. It still would join nothing.
func TestDoWithEndedContextStartsNothing(t *testing.T) {
	var g Group[string, int]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := make(chan struct{}, 20)
	for range 20 {
		_, err := g.Do(ctx, "k", 0, func(context.Context) (int, error) { ran <- struct{}{}; return 1, nil })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	}
	if g.InFlight("k") || len(ran) != 0 {
		t.Fatalf("20 callers with a cancelled context started calls (in flight %v, ran %d)", g.InFlight("k"), len(ran))
	}
}
