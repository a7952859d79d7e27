package proxy

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// TestLazyMap: concurrent first uses create once; a failure is not kept;
// the map stays bounded; a caller that gives up does not fail the others.
func TestLazyMap(t *testing.T) {
	var l lazyMap[int]
	var calls atomic.Int32
	release := make(chan struct{})
	create := func(context.Context) (int, error) {
		calls.Add(1)
		<-release
		return 42, nil
	}
	// The first caller gives up while the creation runs: it returns at
	// once, the creation goes on.
	gone, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := l.get(gone, "k", create)
		first <- err
	}()
	for !l.flights.InFlight("k") {
		runtime.Gosched()
	}
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("the caller that gave up got %v", err)
	}
	// The others share that creation.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := l.get(context.Background(), "k", create); err != nil || v != 42 {
				errs <- fmt.Errorf("got %d, %v", v, err)
			}
		}()
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d creations for one key, want 1", n)
	}
	if v, err := l.get(context.Background(), "k", func(context.Context) (int, error) { t.Error("created again"); return 0, nil }); err != nil || v != 42 {
		t.Errorf("kept value: %d %v", v, err)
	}

	boom := errors.New("boom")
	if _, err := l.get(context.Background(), "bad", func(context.Context) (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Errorf("failure: %v", err)
	}
	if v, err := l.get(context.Background(), "bad", func(context.Context) (int, error) { return 7, nil }); err != nil || v != 7 {
		t.Errorf("a failure was kept: %d %v", v, err)
	}

	for i := range maxEntries + 10 {
		if _, err := l.get(context.Background(), "n"+strconv.Itoa(i), func(context.Context) (int, error) { return i, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.len(); n > maxEntries {
		t.Errorf("%d entries, bound %d", n, maxEntries)
	}
}
