package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/nodejoin/nodejoin/internal/master/callback"
	"github.com/nodejoin/nodejoin/internal/master/joinservice"
	"github.com/nodejoin/nodejoin/internal/problem"
)

// callbackFlags are serve's machine-callback flags (join-service(8),
// "The machine callback"): off unless --callback.
type callbackFlags struct {
	on        bool
	user      string
	portRange string
	sshPort   int
}

func (c *callbackFlags) register(fs *pflag.FlagSet) {
	o := callback.DefaultOptions()
	fs.BoolVar(&c.on, "callback", false, "grant machine callbacks to nodes that ask with their slot's secret (callback-grant --enable first)")
	fs.StringVar(&c.user, "callback-user", o.User, "with --callback: the callback `USER`, as callback-grant --user")
	fs.StringVar(&c.portRange, "callback-port-range", fmt.Sprintf("%d-%d", o.First, o.Last), "with --callback: `FIRST-LAST`, as callback-grant --port-range")
	fs.IntVar(&c.sshPort, "callback-ssh-port", 22, "with --callback: the master's sshd `PORT` that nodes dial")
}

// options are the service's, nil without --callback.
func (c *callbackFlags) options(changed func(string) bool) (*joinservice.CallbackOptions, error) {
	if !c.on {
		for _, n := range []string{"callback-user", "callback-port-range", "callback-ssh-port"} {
			if changed(n) {
				return nil, problem.Usagef("--%s goes with --callback", n)
			}
		}
		return nil, nil
	}
	o := callback.DefaultOptions()
	o.User = c.user
	if err := callback.ParseRange(c.portRange, &o); err != nil {
		return nil, problem.Usagef("--callback-port-range %v", err)
	}
	if c.sshPort < 1 || c.sshPort > 65535 {
		return nil, problem.Usagef("--callback-ssh-port: %d is not a port", c.sshPort)
	}
	return &joinservice.CallbackOptions{Grant: o, SSHPort: c.sshPort}, nil
}
