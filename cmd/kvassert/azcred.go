package main

import (
	"context"
	"errors"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// defaultCredential is the DefaultAzureCredential that reaches Key Vault.
// It marks the failure of a chain in which no credential applied (no
// environment variables, no managed identity, no 'az login'), which
// azidentity reports with an unexported type: a *noAzureCredentialError the
// diagnosis recognises by type, whatever azidentity's wording.
type defaultCredential struct{ azcore.TokenCredential }

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
		return tok, err
	}
	return tok, &noAzureCredentialError{err: err}
}

// noAzureCredentialError is DefaultAzureCredential finding no credential.
type noAzureCredentialError struct{ err error }

// Error returns azidentity's message.
func (e *noAzureCredentialError) Error() string { return e.err.Error() }

// Unwrap returns azidentity's error.
func (e *noAzureCredentialError) Unwrap() error { return e.err }
