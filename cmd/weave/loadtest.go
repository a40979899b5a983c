package main

import (
	"fmt"

	"github.com/weave-sync/weave/loadtest"

	"github.com/weave-sync/weave/internal/cli"
)

func (a *app) loadtestCommand() *cli.Command {
	f := loadtest.NewFlags()
	c := cli.New("loadtest", "[keygen|push] [flags]",
		"Replay the realistic Firefox sync session mix against a Sync 1.5 server and report latency per request kind.\n"+
			"`weave loadtest push` instead holds --push-conns idle push WebSockets (weave serve --push) and posts --push-rate messages/s to their endpoints, reporting POST-to-notification latency.\n"+
			"`weave loadtest keygen --dir D` writes an FxA-style signing key and the JWKS a server must trust (weave serve --fxa-jwks-file D/"+loadtest.JWKSFileName+").\n"+
			"Only loopback targets are allowed unless --allow-remote is given.")
	c.EnvPrefix = "WEAVE_LOADTEST_"
	f.RegisterFlags(c)
	c.Run = func(args []string) error {
		if len(args) == 1 && args[0] == "keygen" {
			return f.WriteKeygen(a.stdout)
		}
		if len(args) == 1 && args[0] == "push" {
			rep, err := loadtest.RunPush(a.ctx, f.PushRunConfig(), a.stderr)
			if err != nil {
				return fmt.Errorf("%w\n(see `weave loadtest --help`)", err)
			}
			return f.WriteReport(a.stdout, rep)
		}
		if len(args) != 0 {
			return fmt.Errorf("unexpected arguments %q (`keygen` and `push` are the subcommands)", args)
		}
		cfg, err := f.RunConfig()
		if err != nil {
			return fmt.Errorf("%w\n(see `weave loadtest --help`)", err)
		}
		rep, err := loadtest.Run(a.ctx, cfg, a.stderr)
		if err != nil {
			return err
		}
		return f.WriteReport(a.stdout, rep)
	}
	return c
}
