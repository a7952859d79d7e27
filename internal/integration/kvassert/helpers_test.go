package kvassert_test

// graph is the scope the root package's tests ask for (there in e2e_test.go).
const graph = "https://graph.microsoft.com/.default"
