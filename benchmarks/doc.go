// Package benchmarks compares kvassert with the alternatives a platform team
// would consider, on the kvasserttest emulators: a Go rendition of the .NET
// library Smartersoft.Identity.Client.Assertion (internal/dotnetref), MSAL Go
// and azidentity with a local exportable key. See BENCHMARKS.md at the root
// for the commands and the results. It is a module of its own: its shared-
// cache alternative needs the fleet (and go-redis), which the library's module
// must not require.
package benchmarks
