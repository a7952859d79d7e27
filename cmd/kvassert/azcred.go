package main

import (
	"context"
	"errors"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// defaultCredential is the DefaultAzureCredential that reaches Key Vault.
// It marks its failures so that the diagnosis recognises them by type,
// whatever azidentity's wording: a chain in which no credential applied (no
// environment variables, no managed identity, no 'az login'; azidentity's
// type for it is unexported) becomes a *noAzureCredentialError, a refused
// token request a *keyVaultCredentialError.
type defaultCredential struct {
	azcore.TokenCredential
	// emulator marks the emulator's own identity (emulatorCredential): its
	// failures name the KVASSERT_EMULATOR_* variables.
	emulator bool
}

// GetToken implements azcore.TokenCredential.
func (c defaultCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := c.TokenCredential.GetToken(ctx, opts)
	if err == nil || ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return tok, err
	}
	// DefaultAzureCredential returns an AuthenticationFailedError when a
	// credential applied and failed, and a "credential unavailable" error
	// when none applied.
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) {
		return tok, &keyVaultCredentialError{err: err, emulator: c.emulator}
	}
	return tok, &noAzureCredentialError{err: err}
}

// keyVaultCredentialError is a token request of the Key Vault credential
// that Entra ID refused (it wraps an azidentity.AuthenticationFailedError).
type keyVaultCredentialError struct {
	err      error
	emulator bool // the emulator's identity, not DefaultAzureCredential
}

// Error returns azidentity's message.
func (e *keyVaultCredentialError) Error() string { return e.err.Error() }

// Unwrap returns azidentity's error.
func (e *keyVaultCredentialError) Unwrap() error { return e.err }

// noAzureCredentialError is DefaultAzureCredential finding no credential.
type noAzureCredentialError struct{ err error }

// Error returns azidentity's message.
func (e *noAzureCredentialError) Error() string { return e.err.Error() }

// Unwrap returns azidentity's error.
func (e *noAzureCredentialError) Unwrap() error { return e.err }

// CredentialName names the credential in keyvault.CredentialError, which
// the diagnosis reads (the keyvault package keeps no text of azidentity's
// errors).
func (c defaultCredential) CredentialName() string {
	if c.emulator {
		return credNameEmulator
	}
	return credNameDefault
}
