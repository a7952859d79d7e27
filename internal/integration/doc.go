// Package integration is a test-only module: the tests that need the
// OpenTelemetry SDK (or another dependency no library user should get) and
// test the root module's packages from outside. Its module path lies under
// the root's internal/, so it may import the root's internal packages; the
// library never imports it.
package integration
