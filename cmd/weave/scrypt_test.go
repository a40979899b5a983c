package main

import "github.com/weave-sync/weave/accounts/onepw"

// The in-process servers of these tests stretch passwords at a low scrypt
// cost, as the accounts package's own tests do: the default (N = 2^16,
// 64 MiB) took 30-60 s a stretch under -race at load 25, and every sign-up
// and sign-in runs one. Servers run as a separate weave binary (proc_test.go)
// keep the default.
func init() { testScrypt = onepw.ScryptParams{N: 1 << 10, R: 8, P: 1} }
