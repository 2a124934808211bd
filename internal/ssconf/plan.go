package ssconf

import (
	"fmt"
	"os"
	"sort"

	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/internal/txn"
)

// Check refuses values that do not belong to clusterName: their
// cluster_name must be it, and each file must fit in MaxSize. where is the
// JSON pointer of the values, e.g. "/ssconf".
func Check(where, clusterName string, values map[string]string) []problem.Problem {
	var out []problem.Problem
	if v := Value([]byte(values["cluster_name"])); v != clusterName {
		out = append(out, problem.Problem{Where: where + "/cluster_name",
			What: fmt.Sprintf("%q does not match /cluster_name %q", v, clusterName)})
	}
	for _, k := range sortedKeys(values) {
		if err := CheckSize(values[k]); err != nil {
			out = append(out, problem.Problem{Where: where + "/" + k, What: err.Error()})
		}
	}
	// noded trusts the master by this list: a value it cannot read would
	// lock the master out.
	if v, ok := values[CandidateCertsKey]; ok {
		if _, err := CandidateCerts(v); err != nil {
			out = append(out, problem.Problem{Where: where + "/" + CandidateCertsKey, What: err.Error()})
		}
	}
	return out
}

// Items are the node's files for values, in key order: ssconf_<key>, 0444,
// with an existing file's owner kept (Ganeti's ensure-dirs chowns them).
// Files of keys not in values are left alone, as Ganeti does.
func Items(cfg *nodeconf.Config, values map[string]string) []txn.Item {
	var items []txn.Item
	for _, k := range sortedKeys(values) {
		np := Path(cfg.DataDir, k)
		items = append(items, txn.Item{NodePath: np, Data: Format(values[k]),
			Mode: FileMode, UID: os.Geteuid(), GID: os.Getegid(), KeepOwner: true})
	}
	return items
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
