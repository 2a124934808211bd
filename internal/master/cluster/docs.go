package cluster

import (
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/internal/certs"
	"github.com/nodejoin/nodejoin/internal/joindoc"
	"github.com/nodejoin/nodejoin/internal/nodeconf"
	"github.com/nodejoin/nodejoin/internal/ssconf"
)

// PrepareDoc is prepare-node-join's document: the cluster name, the
// cluster certificate (certificate only), the cluster SSH host keys, the
// keys allowed to log in as root (the master's), and the root key type.
func (c *Cluster) PrepareDoc() (*joindoc.Prepare, error) {
	serverPEM, err := os.ReadFile(c.Path(nodeconf.ServerPEM))
	if err != nil {
		return nil, fmt.Errorf("reading the cluster certificate: %w", err)
	}
	hostKeys, err := ReadHostKeys(c.Config)
	if err != nil {
		return nil, err
	}
	if len(hostKeys) == 0 {
		return nil, fmt.Errorf("no SSH host keys in %s", c.Config.Path(c.Config.SSHConfigDir))
	}
	renewal, err := c.certificateRenewal(serverPEM)
	if err != nil {
		return nil, err
	}
	doc := &joindoc.Prepare{
		CertificateRenewal:    renewal,
		ClusterName:           c.Settings.ClusterName,
		NodeDaemonCertificate: certificateOnly(serverPEM),
		AuthorizedKeys:        map[string][]string{},
		SSHKeyType:            c.Settings.SSHKeyType,
		SSHKeyBits:            c.Settings.SSHKeyBits,
	}
	for _, k := range hostKeys {
		doc.SSHHostKey = append(doc.SSHHostKey, joindoc.KeyTriple{Kind: k.Kind, Private: k.Private, Public: k.Public})
	}
	// Ganeti sends the keys of the master and the master candidates, by
	// node; ganeti_pub_keys holds them by name until UUIDs exist.
	pub, err := c.PublicKeys()
	if err != nil {
		return nil, err
	}
	for _, name := range c.masterCandidates() {
		if k, ok := pub[name]; ok {
			doc.AuthorizedKeys[name] = []string{k}
		}
	}
	if len(doc.AuthorizedKeys) == 0 {
		return nil, fmt.Errorf("%s has no key for the master %s", c.Path(nodeconf.PubKeys), c.Settings.MasterNode)
	}
	return doc, nil
}

func (c *Cluster) masterCandidates() []string {
	v, _ := c.ReadSsconf()
	mcs := ssconf.Lines(v["master_candidates"])
	if len(mcs) == 0 {
		mcs = []string{c.Settings.MasterNode}
	}
	return mcs
}

// certificateOnly keeps the CERTIFICATE blocks of a PEM bundle.
func certificateOnly(b []byte) string {
	var out strings.Builder
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out.String()
		}
		if blk.Type == "CERTIFICATE" {
			out.Write(pem.EncodeToMemory(blk))
		}
	}
}

// DaemonSetupDoc is node-daemon-setup's document for node (with its
// primary IP): server.pem and hmac.key verbatim, every ssconf value of the
// master with the node already in the node lists, and the node's name.
func (c *Cluster) DaemonSetupDoc(node, ip string) (*joindoc.DaemonSetup, error) {
	serverPEM, err := os.ReadFile(c.Path(nodeconf.ServerPEM))
	if err != nil {
		return nil, fmt.Errorf("reading the cluster certificate: %w", err)
	}
	hmac, err := os.ReadFile(c.Path(nodeconf.HMACKey))
	if err != nil {
		return nil, fmt.Errorf("reading the hmac key: %w", err)
	}
	values, err := c.Ssconf()
	if err != nil {
		return nil, err
	}
	withNode(values, node, ip)
	renewal, err := c.certificateRenewal(serverPEM)
	if err != nil {
		return nil, err
	}
	return &joindoc.DaemonSetup{
		CertificateRenewal:    renewal,
		ClusterName:           c.Settings.ClusterName,
		NodeDaemonCertificate: string(serverPEM),
		HMACKey:               string(hmac),
		Ssconf:                values,
		StartNodeDaemon:       true,
		NodeName:              node,
	}, nil
}

// withNode adds node to the ssconf node lists (idempotent).
func withNode(values map[string]string, node, ip string) {
	for _, key := range []string{"node_list", "online_nodes"} {
		names := ssconf.Lines(values[key])
		if !contains(names, node) {
			names = append(names, node)
		}
		niceSort(names)
		values[key] = strings.Join(names, "\n")
	}
	if ip != "" {
		var out []string
		for _, l := range ssconf.Lines(values["node_primary_ips"]) {
			if name, _, _ := strings.Cut(l, " "); name != node {
				out = append(out, l)
			}
		}
		out = append(out, node+" "+ip)
		niceSort(out)
		values["node_primary_ips"] = strings.Join(out, "\n")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Ssconf is the master's ssconf as it sends it to nodes: every value of
// its data directory, with the master's line of master_candidates_certs
// naming its client.pem as it is now, so that nodes keep accepting the
// master's writes whatever an older file says. During the window of a
// rotation of the cluster certificate the master's previous client
// certificate is listed too, as BootstrapCandidate: node daemons not on
// the new certificate yet see only that one.
func (c *Cluster) Ssconf() (map[string]string, error) {
	values, err := c.ReadSsconf()
	if err != nil {
		return nil, err
	}
	return values, c.withMasterCert(values)
}

func (c *Cluster) withMasterCert(values map[string]string) error {
	v, err := ssconf.WithCandidateCert(values[ssconf.CandidateCertsKey], c.Settings.MasterNode, certs.Digest(c.currentClientCert()))
	if err != nil {
		return fmt.Errorf("%s: %w", c.Config.Path(ssconf.Path(c.Config.DataDir, ssconf.CandidateCertsKey)), err)
	}
	if d := c.bootstrapDigest(time.Now()); d != "" {
		if v, err = ssconf.WithCandidateCert(v, BootstrapCandidate, d); err != nil {
			return err
		}
	}
	values[ssconf.CandidateCertsKey] = v
	return nil
}
