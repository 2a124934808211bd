// Package browse finds the adverts of _nodejoin._tcp on the local links:
// through the machine's avahi-daemon over D-Bus (its cache, its probing,
// removals as they happen), or, where no avahi-daemon answers, with a
// pure-Go mDNS client that asks again every few seconds and counts an
// advert gone when it stops answering. join-service's registrar browses
// continuously; node-join --discover until it finds its master.
package browse

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/hashicorp/mdns"
	avahi "github.com/holoplot/go-avahi"

	"github.com/nodejoin/nodejoin/internal/advert"
)

// Found is one advert seen, or gone (Removed: only Instance, Interface and
// the Advert's Name are set).
type Found struct {
	Advert    advert.Advert
	Addr      string // the address the advert resolved to
	Port      int
	Interface string
	Instance  string // the DNS-SD instance name (avahi may have renamed it)
	Removed   bool
}

// How adverts are browsed.
const (
	Auto  = "auto"  // avahi if it answers on the system bus, else MDNS
	Avahi = "avahi" // avahi-daemon over D-Bus
	MDNS  = "mdns"  // the pure-Go client (hashicorp/mdns)
)

// Options tune Run.
type Options struct {
	How string
	Log *slog.Logger
	// Every is how often the Go client asks again, and how often the
	// avahi browser is made anew (so that a signal lost at its start is
	// made up for); 0: 5 s for the Go client, 60 s for avahi.
	Every time.Duration
}

// Run browses until ctx ends, calling found for every advert that parses
// (and for every removal). Adverts whose TXT record is malformed are
// logged and skipped: anyone on the link may publish one.
func Run(ctx context.Context, o Options, found func(Found)) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	switch o.How {
	case Avahi:
		return runAvahi(ctx, o, found)
	case MDNS:
		return runMDNS(ctx, o, found)
	case Auto, "":
		err := runAvahi(ctx, o, found)
		if errors.Is(err, errNoAvahi) {
			o.Log.Info("no avahi-daemon on the system bus: browsing with the Go mDNS client", "err", err)
			return runMDNS(ctx, o, found)
		}
		return err
	}
	return fmt.Errorf("browse: %q: want auto, avahi or mdns", o.How)
}

var errNoAvahi = errors.New("avahi-daemon does not answer on the system bus")

func txtStrings(txt [][]byte) []string {
	out := make([]string, len(txt))
	for i, t := range txt {
		out[i] = string(t)
	}
	return out
}

func runAvahi(ctx context.Context, o Options, found func(Found)) error {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return fmt.Errorf("%w: %w", errNoAvahi, err)
	}
	defer func() { _ = conn.Close() }() // a read-only client: nothing to flush
	srv, err := avahi.ServerNew(conn)
	if err != nil {
		return fmt.Errorf("%w: %w", errNoAvahi, err)
	}
	defer srv.Close()
	if v, err := srv.GetVersionString(); err != nil {
		return fmt.Errorf("%w: %w", errNoAvahi, err)
	} else {
		o.Log.Info("browsing adverts through avahi", "version", v, "type", advert.ServiceType)
	}
	every := o.Every
	if every <= 0 {
		every = time.Minute
	}
	// names maps an instance (interface, protocol, instance name) to the
	// advert's name, for removals, which carry only the instance.
	type inst struct {
		iface, proto int32
		name         string
	}
	names := map[inst]string{}
	var mu sync.Mutex
	resolve := func(s avahi.Service) {
		// IPv4 first: avahi publishes AAAA records over IPv4 too
		// (publish-aaaa-on-ipv4), and a link-local IPv6 address is of
		// use only with its interface.
		r, err := srv.ResolveService(s.Interface, s.Protocol, s.Name, s.Type, s.Domain, avahi.ProtoInet, 0)
		if err != nil {
			r, err = srv.ResolveService(s.Interface, s.Protocol, s.Name, s.Type, s.Domain, avahi.ProtoUnspec, 0)
		}
		if err != nil {
			o.Log.Debug("resolving an advert", "instance", s.Name, "err", err)
			return
		}
		a, err := advert.Parse(txtStrings(r.Txt))
		ifname, _ := srv.GetNetworkInterfaceNameByIndex(r.Interface)
		if err != nil {
			o.Log.Info("an advert that does not parse", "instance", s.Name, "interface", ifname, "address", r.Address, "err", err)
			return
		}
		addr := r.Address
		if ip, err := netip.ParseAddr(addr); err == nil && ip.Is6() && ip.IsLinkLocalUnicast() && ip.Zone() == "" && ifname != "" {
			addr = ip.WithZone(ifname).String()
		}
		mu.Lock()
		names[inst{s.Interface, s.Protocol, s.Name}] = a.Name
		mu.Unlock()
		found(Found{Advert: a, Addr: addr, Port: int(r.Port), Interface: ifname, Instance: s.Name})
	}
	for {
		sb, err := srv.ServiceBrowserNew(avahi.InterfaceUnspec, avahi.ProtoUnspec, advert.ServiceType, "local", 0)
		if err != nil {
			return fmt.Errorf("avahi: browsing %s: %w", advert.ServiceType, err)
		}
		t := time.NewTimer(every)
	loop:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				srv.ServiceBrowserFree(sb)
				return nil
			case <-t.C:
				break loop
			case s := <-sb.AddChannel:
				go resolve(s)
			case s := <-sb.RemoveChannel:
				k := inst{s.Interface, s.Protocol, s.Name}
				mu.Lock()
				name, ok := names[k]
				delete(names, k)
				mu.Unlock()
				if ok {
					ifname, _ := srv.GetNetworkInterfaceNameByIndex(s.Interface)
					found(Found{Advert: advert.Advert{Name: name}, Interface: ifname, Instance: s.Name, Removed: true})
				}
			}
		}
		// Free drains the channels: the library closes them once freed.
		go func(sb *avahi.ServiceBrowser) {
			for range sb.AddChannel {
			}
		}(sb)
		go func(sb *avahi.ServiceBrowser) {
			for range sb.RemoveChannel {
			}
		}(sb)
		srv.ServiceBrowserFree(sb)
	}
}

func runMDNS(ctx context.Context, o Options, found func(Found)) error {
	every := o.Every
	if every <= 0 {
		every = 5 * time.Second
	}
	const gone = 3 // rounds without an answer
	missed := map[string]int{}
	last := map[string]Found{}
	for {
		entries := make(chan *mdns.ServiceEntry, 64)
		seen := map[string]bool{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for e := range entries {
				name := strings.TrimSuffix(e.Name, "."+advert.ServiceType+".local.")
				a, err := advert.Parse(e.InfoFields)
				if err != nil {
					o.Log.Info("an advert that does not parse", "instance", name, "err", err)
					continue
				}
				addr := ""
				if e.AddrV4 != nil {
					addr = e.AddrV4.String()
				}
				f := Found{Advert: a, Addr: addr, Port: e.Port, Instance: name}
				seen[a.Name], last[a.Name] = true, f
				found(f)
			}
		}()
		p := mdns.DefaultParams(advert.ServiceType)
		p.Entries, p.Timeout, p.DisableIPv6 = entries, time.Second, true
		p.Logger = slogLogger(o.Log)
		err := mdns.QueryContext(ctx, p)
		close(entries)
		<-done
		if err != nil && ctx.Err() == nil {
			o.Log.Warn("mDNS query", "err", err)
		}
		for name := range last {
			if seen[name] {
				missed[name] = 0
				continue
			}
			if missed[name]++; missed[name] >= gone {
				f := last[name]
				delete(last, name)
				delete(missed, name)
				found(Found{Advert: advert.Advert{Name: name}, Instance: f.Instance, Removed: true})
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// slogLogger sends the mDNS client's own messages to the log at debug
// level: a noisy link must not fill the log.
func slogLogger(l *slog.Logger) *log.Logger {
	return log.New(debugWriter{l}, "", 0)
}

type debugWriter struct{ l *slog.Logger }

func (w debugWriter) Write(b []byte) (int, error) {
	w.l.Debug("mdns", "msg", strings.TrimSpace(string(b)))
	return len(b), nil
}
