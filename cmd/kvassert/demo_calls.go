package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/kvasserttest"
)

// capturingSource keeps the first assertion its Source makes, to show it
// decoded.
type capturingSource struct {
	kvassert.Source
	mu    sync.Mutex
	first string
}

// Assertion is the wrapped Source's Assertion (kvassert.WrapSource
// forwards the rest to it).
func (c *capturingSource) Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error) {
	s, err := c.Source.Assertion(ctx, clientID, tokenEndpoint)
	if err == nil {
		c.mu.Lock()
		if c.first == "" {
			c.first = s
		}
		c.mu.Unlock()
	}
	return s, err
}

func (c *capturingSource) captured() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first
}

// demoOps are the counted operations the demo reports, in display order.
var demoOps = []struct {
	op    kvasserttest.Op
	label string
	vault bool
}{
	{kvasserttest.OpKeySign, "keys/sign", true},
	{kvasserttest.OpCertificateGet, "certificates/get", true},
	{kvasserttest.Op("keyvault/challenge"), "auth challenge", true},
	{kvasserttest.Op("secrets/get"), "secrets/get", true},
	{kvasserttest.OpToken, "token", false},
	{kvasserttest.Op("entra/discovery"), "discovery", false},
	{kvasserttest.Op("entra/instance"), "instance discovery", false},
}

// calls is a difference of the emulator's counters.
type calls map[kvasserttest.Op]int64

func diff(after, before map[kvasserttest.Op]int64) calls {
	d := calls{}
	for _, o := range demoOps {
		if n := after[o.op] - before[o.op]; n != 0 {
			d[o.op] = n
		}
	}
	return d
}

func (c calls) total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// line renders the calls to one service ("keys/sign 1 · certificates/get 1").
func (c calls) line(vault bool) string {
	var parts []string
	for _, o := range demoOps {
		if o.vault == vault && c[o.op] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", o.label, c[o.op]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " · ")
}

// MarshalJSON writes the counters by operation name.
func (c calls) MarshalJSON() ([]byte, error) {
	m := map[string]int64{}
	for k, v := range c {
		m[string(k)] = v
	}
	return json.Marshal(m)
}
