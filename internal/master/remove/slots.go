package remove

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/nodejoin/nodejoin/internal/master/joinservice"
	"github.com/nodejoin/nodejoin/internal/master/slotstore"
)

// removeSlots removes join-service's slots named for node (lists them on
// a dry run): through the admin socket while join-service runs, since the
// daemon holds its store; else in the embedded store, if there is one. An
// etcd store is reached only through a running join-service.
func removeSlots(ctx context.Context, o Options, node string) (removed, warnings []string) {
	if running, removed, warnings := viaService(ctx, o, node); running {
		return removed, warnings
	}
	return viaStore(ctx, o, node)
}

func viaService(ctx context.Context, o Options, node string) (running bool, removed, warnings []string) {
	if o.JoinServiceSocket == "" {
		return false, nil, nil
	}
	if _, err := os.Stat(o.JoinServiceSocket); err != nil {
		return false, nil, nil
	}
	cl := joinservice.NewAdminClient(o.JoinServiceSocket)
	var views []joinservice.SlotView
	err := cl.Do(ctx, "GET", joinservice.AdminSlots, nil, nil, &views)
	if errors.Is(err, joinservice.ErrNotRunning) {
		return false, nil, nil
	}
	if err != nil {
		return true, nil, []string{fmt.Sprintf("listing join-service's slots: %v; its slots for %s stay (join-service slot remove)", err, node)}
	}
	for _, v := range views {
		if v.NodeName != node {
			continue
		}
		if !o.DryRun {
			if err := cl.Do(ctx, "DELETE", strings.Replace(joinservice.AdminSlot, "{uuid}", url.PathEscape(v.UUID), 1), nil, nil, nil); err != nil {
				warnings = append(warnings, fmt.Sprintf("removing join-service slot %s: %v", v.UUID, err))
				continue
			}
		}
		removed = append(removed, v.UUID)
	}
	return true, removed, warnings
}

func viaStore(ctx context.Context, o Options, node string) (removed, warnings []string) {
	if o.StoreDir == "" {
		return nil, nil
	}
	if _, err := os.Stat(filepath.Join(o.StoreDir, slotstore.BoltFile)); err != nil {
		return nil, nil // join-service never kept slots here
	}
	st, err := slotstore.Open(ctx, slotstore.Config{Dir: o.StoreDir}, slotstore.Options{})
	if err != nil {
		return nil, []string{fmt.Sprintf("opening join-service's store: %v; its slots for %s stay (join-service slot remove)", err, node)}
	}
	defer func() { _ = st.Close() }()
	slots, err := st.List(ctx)
	if err != nil {
		return nil, []string{fmt.Sprintf("listing join-service's slots: %v; its slots for %s stay", err, node)}
	}
	for _, sl := range slots {
		if sl.NodeName != node {
			continue
		}
		if !o.DryRun {
			if err := st.Remove(ctx, sl.UUID); err != nil {
				warnings = append(warnings, fmt.Sprintf("removing join-service slot %s: %v", sl.UUID, err))
				continue
			}
		}
		removed = append(removed, sl.UUID)
	}
	return removed, warnings
}
