package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// TestHelloRunsAsWritten runs the README's first program as a newcomer
// would, in an environment with no Azure settings (DefaultAzureCredential
// then reaches the emulated vault through the emulated managed identity
// endpoint). A failure ends the test binary through log.Fatal.
func TestHelloRunsAsWritten(t *testing.T) {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		for _, p := range []string{"AZURE_", "IDENTITY_", "MSI_", "IMDS_", "KVASSERT_"} {
			if strings.HasPrefix(name, p) {
				value := os.Getenv(name)
				os.Unsetenv(name) // unset, not empty: azidentity reads an empty AZURE_CLIENT_ID as a client ID
				t.Cleanup(func() { os.Setenv(name, value) })
			}
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	main()
	os.Stdout = stdout
	w.Close()
	out := <-done
	want := "contoso.onmicrosoft.com is \"contoso\" (tenant ID 2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82)\n" +
		"fabrikam.onmicrosoft.com is \"fabrikam\" (tenant ID c41d8e92-3f5b-4a6c-b7d8-9e0f1a2b3c93)\n"
	if out != want {
		t.Errorf("hello printed:\n%s\nwant:\n%s", out, want)
	}
}
