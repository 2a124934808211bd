// Package joinclient is node-join's side of join-service's protocol
// (internal/joinapi): the token from its three sources (flags with a
// secret file, the kernel command line, a token file), an HTTPS client that
// trusts the master by the token's pins only, and the fetch, report and
// config poll, each retried with jittered exponential backoff on what may
// pass (a network error, a 5xx) and never on a refusal (401, 403, 410, any
// other 4xx), which would not become good by asking again.
package joinclient
