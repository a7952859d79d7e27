package flight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDoMergesConcurrentCalls(t *testing.T) {
	var g Group[string, int]
	var calls atomic.Int32
	release := make(chan struct{})
	fn := func(context.Context) (int, error) {
		calls.Add(1)
		<-release
		return 7, nil
	}
	var wg sync.WaitGroup
	results := make(chan int, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := g.Do(context.Background(), "k", 0, fn)
			if err != nil {
				t.Error(err)
			}
			results <- v
		}()
	}
	for !g.InFlight("k") {
		time.Sleep(time.Millisecond)
	}
	// Let every goroutine join before releasing.
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	close(results)
	for v := range results {
		if v != 7 {
			t.Fatalf("got %d, want 7", v)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("fn ran %d times for 50 concurrent callers, want 1", n)
	}
	if g.InFlight("k") {
		t.Fatal("key still in flight after the call completed")
	}
}

func TestDoDifferentKeysRunIndependently(t *testing.T) {
	var g Group[string, string]
	block := make(chan struct{})
	defer close(block)
	go g.Do(context.Background(), "slow", 0, func(context.Context) (string, error) { <-block; return "", nil })
	v, err := g.Do(context.Background(), "fast", 0, func(context.Context) (string, error) { return "fast", nil })
	if err != nil || v != "fast" {
		t.Fatalf("Do(fast) = %q, %v while another key is blocked", v, err)
	}
}

func TestCallerCancellationDoesNotCancelTheCall(t *testing.T) {
	var g Group[int, string]
	release := make(chan struct{})
	var sawCancel atomic.Bool
	fn := func(ctx context.Context) (string, error) {
		<-release
		if ctx.Err() != nil {
			sawCancel.Store(true)
		}
		return "v", nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := g.Do(ctx, 1, 0, fn); first <- err }()
	for !g.InFlight(1) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want context.Canceled", err)
	}
	second := make(chan string, 1)
	go func() { v, _ := g.Do(context.Background(), 1, 0, fn); second <- v }()
	time.Sleep(10 * time.Millisecond)
	close(release)
	if v := <-second; v != "v" {
		t.Fatalf("second caller got %q, want the shared result", v)
	}
	if sawCancel.Load() {
		t.Fatal("the first caller's cancellation reached the shared call")
	}
}

func TestTimeoutBoundsTheCall(t *testing.T) {
	var g Group[int, int]
	_, err := g.Do(context.Background(), 1, 10*time.Millisecond, func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the call's own deadline", err)
	}
}

func TestContextValuesReachTheCall(t *testing.T) {
	type key struct{}
	var g Group[int, any]
	v, _ := g.Do(context.WithValue(context.Background(), key{}, "x"), 1, 0, func(ctx context.Context) (any, error) {
		return ctx.Value(key{}), nil
	})
	if v != "x" {
		t.Fatalf("context value = %v, want x", v)
	}
}

func TestFailureIsNotRemembered(t *testing.T) {
	var g Group[int, int]
	boom := errors.New("boom")
	if _, err := g.Do(context.Background(), 1, 0, func(context.Context) (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	v, err := g.Do(context.Background(), 1, 0, func(context.Context) (int, error) { return 2, nil })
	if err != nil || v != 2 {
		t.Fatalf("after a failure Do = %d, %v; want a new call", v, err)
	}
}

func TestStartDoesNotWaitAndDoesNotDuplicate(t *testing.T) {
	var g Group[int, int]
	release := make(chan struct{})
	var calls atomic.Int32
	fn := func(context.Context) (int, error) { calls.Add(1); <-release; return 1, nil }
	if !g.Start(context.Background(), 1, 0, fn) {
		t.Fatal("Start did not start a call")
	}
	if g.Start(context.Background(), 1, 0, fn) {
		t.Fatal("Start started a second call for a key in flight")
	}
	close(release)
	if v, _ := g.Do(context.Background(), 1, 0, fn); v != 1 {
		t.Fatalf("Do = %d", v)
	}
	if n := calls.Load(); n > 2 {
		t.Fatalf("%d calls", n)
	}
}
