package cloudconfig

import (
	"encoding/json"
	"errors"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nodejoin/nodejoin/internal/joinapi"
	"github.com/nodejoin/nodejoin/internal/jsondoc"
	"github.com/nodejoin/nodejoin/internal/problem"
	"github.com/nodejoin/nodejoin/schemas"
)

// Input is render-cloud-config's document (schemas/render-cloud-config.v1.json).
type Input struct {
	Token      string               `json:"token"`
	NodeName   string               `json:"node_name,omitempty"`
	Timeout    string               `json:"timeout,omitempty"`
	Install    Install              `json:"install"`
	Packages   []string             `json:"packages,omitempty"`
	Tasks      []string             `json:"tasks,omitempty"`
	AptSources map[string]AptSource `json:"apt_sources,omitempty"`
	Updates    bool                 `json:"updates,omitempty"`
	HostKeys   map[string]KeyPair   `json:"ssh_host_keys,omitempty"`
	WriteFiles []File               `json:"write_files,omitempty"`
	Scripts    Scripts              `json:"scripts,omitempty"`
	ConfigExec []string             `json:"config_exec,omitempty"`
	// Callback is callback-setup's document, kept as given: the schema
	// checked it, and callback-setup checks it again on the node.
	Callback  json.RawMessage `json:"callback,omitempty"`
	PhoneHome *PhoneHome      `json:"phone_home,omitempty"`
}

// Ways the node programs get onto the machine.
const (
	FromApt         = "apt"          // the nodejoin-node package from an apt source
	FromJoinService = "join-service" // the binaries join-service serves, pinned by SHA-256
	FromImage       = "image"        // already in the image
)

// Install says where the node programs come from.
type Install struct {
	From    string `json:"from"`
	Source  string `json:"source,omitempty"`
	Key     string `json:"key,omitempty"`
	Package string `json:"package,omitempty"`
}

// AptSource is one apt repository.
type AptSource struct {
	Source string `json:"source"`
	Key    string `json:"key,omitempty"`
}

// KeyPair is a given SSH host key.
type KeyPair struct {
	Private string `json:"private"`
	Public  string `json:"public"`
}

// File is one of the operator's files.
type File struct {
	Path        string `json:"path"`
	Content     string `json:"content"`
	Owner       string `json:"owner,omitempty"`
	Permissions string `json:"permissions,omitempty"`
	Defer       bool   `json:"defer,omitempty"`
}

// Scripts are the operator's commands by the time they run.
type Scripts struct {
	Boot       [][]string `json:"boot,omitempty"`
	BeforeJoin [][]string `json:"before_join,omitempty"`
	AfterJoin  [][]string `json:"after_join,omitempty"`
}

// PhoneHome is cloud-init's own phone_home, to the operator's inventory.
type PhoneHome struct {
	URL   string   `json:"url"`
	Post  []string `json:"post,omitempty"`
	Tries int      `json:"tries,omitempty"`
}

// Decode reads and checks the document: the schema, then the checks the
// schema cannot make. The token is parsed; its secret is never named in an
// error.
func Decode(r io.Reader) (*Input, joinapi.Token, error) {
	var in Input
	if err := jsondoc.Decode(r, schemas.Get(schemas.CloudConfig), &in); err != nil {
		return nil, joinapi.Token{}, explain(err)
	}
	tok, err := in.Check()
	if err != nil {
		return nil, joinapi.Token{}, err
	}
	return &in, tok, nil
}

// packageList is where a package name sits in the document.
var packageList = regexp.MustCompile(`^/(packages|tasks)/[0-9]+$|^/install/package$`)

// explain says in words what a package name's pattern means.
func explain(err error) error {
	var rej *problem.RejectedError
	if !errors.As(err, &rej) {
		return err
	}
	for i, p := range rej.Problems {
		if packageList.MatchString(p.Where) && strings.Contains(p.What, "does not match pattern") {
			rej.Problems[i].What = "not a Debian package name: lower-case letters, digits, '+', '-' and '.', " +
				"at least two characters, starting with a letter or a digit (Debian Policy 5.6.1)"
		}
	}
	return rej
}

// Check makes the checks the schema cannot: the token parses and names a
// slot (not a pool), paths are clean, durations parse, package names are
// still package names once a task's prefix is added.
func (in *Input) Check() (joinapi.Token, error) {
	var probs []problem.Problem
	add := func(where, what string) { probs = append(probs, problem.Problem{Where: where, What: what}) }
	tok, err := joinapi.ParseToken(strings.TrimPrefix(strings.TrimSpace(in.Token), joinapi.BootParamKey+"="))
	switch {
	case err != nil:
		add("/token", err.Error()+" (a token is "+joinapi.BootParamKey+"=<uuid>:<host>[:<port>]:<secret>:sha256=<pin>, as join-service slot add prints it)")
	case tok.UUID == joinapi.DynamicUUID:
		add("/token", "a dynamic pool's token: give one slot's own token (its state is checked, and each machine's user-data names its slot)")
	}
	if in.Timeout != "" {
		if d, err := time.ParseDuration(in.Timeout); err != nil || d <= 0 {
			add("/timeout", "not a positive duration")
		}
	}
	for i, t := range in.Tasks {
		if len("task-"+t) > 100 {
			add("/tasks/"+strconv.Itoa(i), "task-"+t+" is longer than a package name may be (100)")
		}
	}
	for i, f := range in.WriteFiles {
		where := "/write_files/" + strconv.Itoa(i) + "/path"
		if !path.IsAbs(f.Path) {
			add(where, "not an absolute path")
		} else if path.Clean(f.Path) != f.Path || strings.HasSuffix(f.Path, "/") {
			add(where, "not a clean absolute path (no //, /./, /../ or trailing /)")
		} else if f.Path == stageDir || strings.HasPrefix(f.Path, stageDir+"/") {
			add(where, "inside "+stageDir+", which render-cloud-config keeps for the token and removes after the join")
		}
	}
	if len(probs) > 0 {
		return joinapi.Token{}, &problem.RejectedError{Problems: probs}
	}
	return tok, nil
}
