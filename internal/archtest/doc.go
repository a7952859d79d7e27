// Package archtest holds no code: its test checks the import rules of
// ARCHITECTURE.md on the non-test sources of the module.
package archtest
