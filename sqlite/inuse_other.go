//go:build !unix

package sqlite

// InUse cannot tell on this system whether another process uses the
// database; it reports false.
func InUse(path string) (bool, error) { return false, nil }
