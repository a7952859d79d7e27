package kvasserttest

// Key Vault certificate lifetime actions run on the emulator's clock: a
// policy's AutoRenew (lifetime_percentage or days_before_expiry) creates a
// new version, with a new key unless reuse_key, when a request reaches the
// vault after the clock (SetClock) has passed the trigger of the latest
// version; EmailContacts is kept in the policy and does nothing. Scenario
// certificates get the service's default policy: AutoRenew at 80 % of their
// lifetime. Certificates are issued, and their validity counted, on the
// emulator's clock, so a simulated year renews a 12-month certificate once
// (and a 6-month one twice).

// SetListPageSize makes a vault answer paged lists (certificate versions)
// with at most n items per page and a nextLink (0 restores the service's 25),
// to exercise a client's paging with few items.
func (e *Emulator) SetListPageSize(vaultName string, n int) error {
	v, err := e.vault(vaultName)
	if err != nil {
		return err
	}
	v.SetListPageSize(n)
	return nil
}
