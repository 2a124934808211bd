package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/nodejoin/nodejoin/cmd/internal/cli"
	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/node/joinapply"
	"github.com/nodejoin/nodejoin/internal/node/joinclient"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// result is node-join's JSON result.
type result struct {
	Program        string `json:"program"`
	UUID           string `json:"uuid"`
	Server         string `json:"server"`
	NodeName       string `json:"node_name"`
	Status         string `json:"status"`
	Recorded       bool   `json:"recorded"`
	Peer           string `json:"peer"`
	RootPublicKey  string `json:"root_public_key"`
	ConfigRevision int64  `json:"config_revision"`
	ConfigBytes    int    `json:"config_bytes"`
	joinapply.Results
	// Callback is the tunnel set up with --callback (callback.go).
	Callback       *callbackResult `json:"callback,omitempty"`
	config         []byte
	configRevision int64
}

// join fetches, applies and reports. After the fetch every outcome is
// reported (failed with its reason, or joined) before node-join ends.
func join(ctx context.Context, env *cli.Env, cfg *nodeconf.Config, cl *joinclient.Client, o *opts) (*result, error) {
	jctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	docs, err := cl.Fetch(jctx, o.nodeName)
	if err != nil {
		return nil, err
	}
	env.Log.Info("fetched", "slot", cl.UUID(), "node", docs.NodeName, "config_revision", docs.ConfigRevision)
	report := func(status string, params map[string]string, rootKey string) (*joinapi.StatusAnswer, error) {
		return cl.Report(jctx, joinapi.StatusRequest{Status: status, Params: params, RootKey: rootKey, NodeName: docs.NodeName,
			CheckReach: status == joinapi.StatusApplying && o.callback == callbackAuto})
	}
	checked, err := joinapply.Check(ctx, cfg, env.Log, docs.Prepare, docs.DaemonSetup)
	if err != nil {
		// Refused before the node knows its root key: the failure is
		// reported without one (it pins nothing).
		if _, rerr := report(joinapi.StatusFailed, map[string]string{"error": firstLine(err.Error())}, ""); rerr != nil {
			return nil, problem.Hint(err, "the master was not told ("+firstLine(rerr.Error())+"); fix the cause and issue a new slot")
		}
		return nil, problem.Hint(err, "the master was told: join-service slot show "+cl.UUID()+" says failed, with this reason; fix the cause and issue a new slot")
	}
	key := checked.RootPublicKey
	applying, err := report(joinapi.StatusApplying, nil, key)
	if err != nil {
		return nil, err
	}
	res, aerr := checked.Apply(ctx)
	for _, w := range warnings(res) {
		cli.PrintWarning(env.Stderr, prog, w)
	}
	if aerr != nil {
		if _, err := report(joinapi.StatusFailed, map[string]string{"error": firstLine(aerr.Error())}, key); err != nil {
			return nil, fmt.Errorf("%w; reporting it failed too: %w", aerr, err)
		}
		return nil, aerr
	}
	// The tunnel comes before "joined", so that the master records a node
	// it can reach; the grant needs the key the applying report pinned.
	var cb *callbackResult
	if wantCallback(o.callback, applying) {
		if cb, err = setUpCallback(jctx, env, cfg, cl, docs.NodeName); err != nil {
			if _, rerr := report(joinapi.StatusFailed, map[string]string{"error": "callback: " + firstLine(err.Error())}, key); rerr != nil {
				err = fmt.Errorf("%w; reporting it failed too: %w", err, rerr)
			}
			return nil, problem.Hint(err, "the join's files are in place but the master cannot reach this node without the tunnel; fix the cause and run node-join again with a new slot")
		}
	}
	ans, err := report(joinapi.StatusJoined, nil, res.Prepare.RootPublicKey)
	if err != nil {
		return nil, problem.Hint(fmt.Errorf("the node is set up, but the master was not told: %w", err),
			"join-service slot show "+cl.UUID()+" on the master shows what it has; a slot with a second use (\"uses\": 2) lets node-join run again")
	}
	return &result{Program: prog, UUID: cl.UUID(), Server: cl.Address(), NodeName: docs.NodeName, Status: ans.Status,
		Recorded: ans.Recorded, Peer: ans.Peer, Callback: cb, RootPublicKey: res.Prepare.RootPublicKey,
		ConfigRevision: docs.ConfigRevision, ConfigBytes: len(docs.Config), Results: *res,
		config: docs.Config, configRevision: docs.ConfigRevision}, nil
}

func warnings(res *joinapply.Results) []string {
	if res == nil {
		return nil
	}
	return append(append([]string(nil), res.Prepare.Warnings...), res.DaemonSetup.Warnings...)
}

// firstLine is an error's first line, for the report's params: errors
// name paths and JSON pointers, never a secret.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 500 {
		s = s[:500] + "..."
	}
	return s
}
