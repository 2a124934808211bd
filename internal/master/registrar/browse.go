package registrar

import (
	"context"
	"log/slog"

	"github.com/nodejoin/nodejoin/internal/advert"
	"github.com/nodejoin/nodejoin/internal/advert/browse"
)

// BrowseOptions configure Browse.
type BrowseOptions struct {
	How     string // browse.Auto, browse.Avahi, browse.MDNS
	Cluster string // adverts of other clusters are left alone
	Log     *slog.Logger
}

// Browse feeds every advert of the cluster (and every removal) to the
// registrar until ctx ends. Masters' adverts are for node-join, not
// requests: they are skipped.
func Browse(ctx context.Context, g *Registrar, o BrowseOptions) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return browse.Run(ctx, browse.Options{How: o.How, Log: o.Log}, func(f browse.Found) {
		if !f.Removed && (f.Advert.Cluster != o.Cluster || f.Advert.Role == advert.RoleMaster) {
			o.Log.Debug("an advert of another cluster or a master", "name", f.Advert.Name, "cluster", f.Advert.Cluster, "role", f.Advert.Role)
			return
		}
		s := Sighting{Source: SourceMDNS, Advert: f.Advert, Addr: f.Addr, Interface: f.Interface, Withdrawn: f.Removed}
		if _, err := g.Observe(ctx, s); err != nil && ctx.Err() == nil {
			o.Log.Warn("recording an advert", "name", f.Advert.Name, "err", err)
		}
	})
}
