package fxatest_test

import (
	"context"
	"fmt"

	"github.com/weave-sync/weave/fxa"
	"github.com/weave-sync/weave/fxa/fxatest"
	"github.com/weave-sync/weave/fxa/issuer"
)

// A token server test: run a fake FxA, point the verifier at it and mint
// tokens for simulated accounts.
func Example() {
	iss := issuer.New()
	srv := fxatest.Serve(iss)
	defer srv.Close()

	v, err := fxa.NewVerifier(fxa.Options{ServerURL: srv.URL})
	if err != nil {
		panic(err)
	}
	tok := iss.Mint(issuer.Token{Sub: "0123456789abcdef0123456789abcdef", Generation: 1700000000000})
	c, err := v.Verify(context.Background(), tok)
	fmt.Println(c.FxAUID, c.Generation, err)

	// Opaque (non-JWT) tokens are answered by the fake /v1/verify.
	srv.AddOpaque("opaque-1", fxatest.VerifyResponse{User: "ffffffffffffffffffffffffffffffff", Scope: []string{issuer.OldSyncScope}})
	c, err = v.Verify(context.Background(), "opaque-1")
	fmt.Println(c.FxAUID, err)
	// Output:
	// 0123456789abcdef0123456789abcdef 1700000000000 <nil>
	// ffffffffffffffffffffffffffffffff <nil>
}
