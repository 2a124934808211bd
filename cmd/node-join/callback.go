package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/apply"
	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/node/callback"
	"github.com/nodejoin/nodejoin/internal/node/joinclient"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// --callback's modes.
const (
	callbackNever  = "never"
	callbackAuto   = "auto"   // when the master answers that it cannot reach the node
	callbackAlways = "always" // whatever the master can reach
)

// callbackResult is the tunnel node-join set up.
type callbackResult struct {
	RemotePort   int    `json:"remote_port"`
	CallbackUser string `json:"callback_user"`
	PublicKey    string `json:"callback_public_key"`
	// Supervisor: the systemd unit, or "callback-setup --run" to be
	// started by the node's init.
	Supervisor string `json:"supervisor"`
}

func checkCallbackMode(m string) error {
	switch m {
	case callbackNever, callbackAuto, callbackAlways:
		return nil
	}
	return problem.Usagef("--callback: %q is not never, auto or always", m)
}

// wantCallback says whether the node keeps a tunnel, from the mode and
// the master's answer to the applying report.
func wantCallback(mode string, ans *joinapi.StatusAnswer) bool {
	return mode == callbackAlways || mode == callbackAuto && ans != nil && ans.Reachable != nil && !*ans.Reachable
}

// setUpCallback does what callback-setup --key-only, callback-grant and
// callback-setup do, with the slot's secret for the grant: the key is made
// on the node, the master grants it a port and names its host keys (the
// answer comes over the pinned TLS connection), and the tunnel's unit is
// started (or callback-setup --run is to be started by init).
func setUpCallback(ctx context.Context, env *cli.Env, cfg *nodeconf.Config, cl *joinclient.Client, node string) (*callbackResult, error) {
	if err := apply.Recover(ctx, cfg, env.Log, false); err != nil {
		return nil, err
	}
	var pub string
	if _, err := apply.Run(ctx, cfg, env.Log, callback.KeyPlanner(cfg, &pub), false); err != nil {
		return nil, fmt.Errorf("making the callback key: %w", err)
	}
	ans, err := cl.Callback(ctx, joinapi.CallbackRequest{PublicKey: pub, NodeName: node})
	if err != nil {
		return nil, err
	}
	d := &callback.Setup{MasterHost: cl.Host(), MasterPort: ans.MasterPort, MasterHostKeys: ans.MasterHostKeys,
		CallbackUser: ans.CallbackUser, RemotePort: ans.RemotePort, Key: json.RawMessage(`"generate"`)}
	if _, err := apply.Run(ctx, cfg, env.Log, callback.Planner(cfg, d, &pub), false); err != nil {
		return nil, fmt.Errorf("setting up the callback tunnel: %w", err)
	}
	out := &callbackResult{RemotePort: ans.RemotePort, CallbackUser: ans.CallbackUser, PublicKey: pub, Supervisor: callback.UnitName}
	if !callback.Systemd(cfg) {
		out.Supervisor = "callback-setup --run"
		cli.PrintWarning(env.Stderr, prog, "systemd does not run on this node: start \"callback-setup --run\" from its init to keep the tunnel up")
	}
	env.Log.Info("callback tunnel set up", "remote_port", ans.RemotePort, "supervisor", out.Supervisor)
	return out, nil
}
