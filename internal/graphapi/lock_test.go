package graphapi

import (
	"strings"
	"testing"
)

// TestLocksCredentials: the lock protects credentials when enabled with all
// properties, or with both credential usages.
func TestLocksCredentials(t *testing.T) {
	for _, c := range []struct {
		l    *LockConfiguration
		want bool
	}{
		{nil, false},
		{&LockConfiguration{}, false},
		{&LockConfiguration{AllProperties: true}, false},
		{&LockConfiguration{IsEnabled: true}, false},
		{&LockConfiguration{IsEnabled: true, AllProperties: true}, true},
		{&LockConfiguration{IsEnabled: true, CredentialsWithUsageVerify: true}, false},
		{&LockConfiguration{IsEnabled: true, CredentialsWithUsageVerify: true, CredentialsWithUsageSign: true}, true},
	} {
		if got := c.l.LocksCredentials(); got != c.want {
			t.Errorf("%+v: %v, want %v", c.l, got, c.want)
		}
	}
	e := &Error{StatusCode: 403, Operation: "read lock"}
	if !strings.Contains(e.Hint(), "Application.Read.All") {
		t.Fatal(e.Hint())
	}
}
