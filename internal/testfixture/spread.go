package testfixture

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// Spread calls do(i) for every i in [0, n) from workers goroutines, each
// taking the next index until none is left or its do returns false, and
// returns when they are all done.
func Spread(n, workers int, do func(i int) bool) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || !do(i) {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TokenRetrying gets a token for tenant from cred as a patient caller does:
// each failure is counted by failed and retried after a second. It returns
// the token's tid claim ("" when it has none).
func TokenRetrying(ctx context.Context, cred azcore.TokenCredential, tenant string, failed func()) string {
	for {
		tok, err := cred.GetToken(ctx, Opts(tenant))
		if err == nil {
			tid, _ := TenantOf(tok.Token)
			return tid
		}
		failed()
		time.Sleep(time.Second)
	}
}
