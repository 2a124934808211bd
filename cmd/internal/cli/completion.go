package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/nodejoin/nodejoin/internal/problem"
)

// What a program's positional arguments are, for shell completion (Args).
const (
	ArgsHostnames = "hostnames" // host names, as bash knows them (compgen -A hostname)
	ArgsNodes     = "nodes"     // the cluster's nodes (the master's ssconf_node_list)
	ArgsFiles     = "files"
)

// Annotation keys that completion reads.
const (
	annotArgs   = "completion-args"   // on "help": the kind of the positional arguments
	annotValues = "completion-values" // on a flag: the values it takes
)

// Args says what the program's positional arguments are (ArgsHostnames,
// ArgsNodes, ArgsFiles), for --completion; a program with subcommands
// gives their flag sets instead (Flags.Subcommands).
func Args(fs *pflag.FlagSet, kind string) {
	_ = fs.SetAnnotation("help", annotArgs, []string{kind})
}

// Values says which values a flag takes, for --completion; the program
// still checks them itself.
func Values(fs *pflag.FlagSet, flag string, values ...string) {
	if err := fs.SetAnnotation(flag, annotValues, values); err != nil {
		panic("cli.Values: " + err.Error()) // a program's own flag name: a bug
	}
}

// printCompletion writes the bash completion script for fs: every flag
// (long and short; hidden ones left out), each value-taking flag's values
// completed by its kind (its Values, else its usage's placeholder: DIR
// completes directories, FILE and PATH files, anything else nothing),
// and the positional arguments as Args says. With subs, the words before
// the cursor that name a subcommand (its key's words, in order) choose
// whose flags are completed; a word that is a prefix of a subcommand's
// words completes to the next ones.
func printCompletion(w io.Writer, fs *pflag.FlagSet, subs map[string]*pflag.FlagSet, shell string) error {
	if shell != "bash" {
		return problem.Usagef("--completion: only bash is supported, not %q", shell)
	}
	if strings.Contains(fs.Name(), " ") {
		return problem.Usagef("--completion: ask the program, not a subcommand (%s)", fs.Name())
	}
	fn := "_nodejoin_" + strings.ReplaceAll(fs.Name(), "-", "_")
	var b strings.Builder
	fmt.Fprintf(&b, "# bash completion for %s, printed by \"%s --completion bash\" from its own flags.\n", fs.Name(), fs.Name())
	fmt.Fprintf(&b, "%s() {\n", fn)
	b.WriteString("\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev= i=$((COMP_CWORD - 1))\n")
	b.WriteString("\t[ \"$cur\" = = ] && cur=\n")
	b.WriteString("\t[ \"$i\" -gt 0 ] && [ \"${COMP_WORDS[i]}\" = = ] && i=$((i - 1))\n")
	b.WriteString("\t[ \"$i\" -gt 0 ] && prev=${COMP_WORDS[i]}\n")
	if len(subs) == 0 {
		flagCases(&b, fs, positional(fs))
	} else {
		// Every path of words, the subcommands' and their prefixes,
		// with the words that may follow it.
		next := map[string][]string{}
		at := map[string]bool{"": true}
		for key := range subs {
			words := strings.Fields(key)
			for i, w := range words {
				prefix := strings.Join(words[:i], " ")
				if !slices.Contains(next[prefix], w) {
					next[prefix] = append(next[prefix], w)
				}
				at[strings.Join(words[:i+1], " ")] = true
			}
		}
		paths := slices.Sorted(maps.Keys(at))
		var known []string
		for _, p := range paths[1:] { // paths[0] is "", the program itself
			known = append(known, "'"+p+"'")
		}
		b.WriteString("\tlocal sub= w\n")
		b.WriteString("\tfor w in \"${COMP_WORDS[@]:1:COMP_CWORD-1}\"; do\n")
		fmt.Fprintf(&b, "\t\tcase \"${sub:+$sub }$w\" in %s) sub=\"${sub:+$sub }$w\" ;; esac\n", strings.Join(known, "|"))
		b.WriteString("\tdone\n\tcase $sub in\n")
		for _, p := range paths {
			words := next[p]
			slices.Sort(words)
			reply := "COMPREPLY=($(compgen -W '" + strings.Join(words, " ") + "' -- \"$cur\"))"
			fmt.Fprintf(&b, "\t'%s')\n", p)
			switch set := subs[p]; {
			case p == "":
				flagCases(&b, fs, reply)
			case set != nil:
				flagCases(&b, set, positional(set))
			default: // words only: the program takes the next word as is
				fmt.Fprintf(&b, "\t%s\n", reply)
			}
			b.WriteString("\t;;\n")
		}
		b.WriteString("\tesac\n")
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, "complete -F %s %s\n", fn, fs.Name())
	_, err := io.WriteString(w, b.String())
	return err
}

// positional is the bash that completes fs's positional arguments, as
// Args says.
func positional(fs *pflag.FlagSet) string {
	help := fs.Lookup("help")
	args := ""
	if help != nil && len(help.Annotations[annotArgs]) > 0 {
		args = help.Annotations[annotArgs][0]
	}
	switch args {
	case ArgsHostnames:
		return "COMPREPLY=($(compgen -A hostname -- \"$cur\"))"
	case ArgsNodes:
		return "COMPREPLY=($(compgen -W \"$(cat /var/lib/ganeti/ssconf_node_list 2>/dev/null)\" -- \"$cur\"))"
	case ArgsFiles:
		return "COMPREPLY=($(compgen -f -- \"$cur\"))"
	}
	return "COMPREPLY=()"
}

// flagCases writes the bash that completes one flag set: a flag's value
// after it, a flag from "-", else the positional reply.
func flagCases(b *strings.Builder, fs *pflag.FlagSet, positional string) {
	var words []string
	kinds := map[string][]string{} // case pattern -> flags
	var order []string
	add := func(kind, name string) {
		if _, ok := kinds[kind]; !ok {
			order = append(order, kind)
		}
		kinds[kind] = append(kinds[kind], name)
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		names := []string{"--" + f.Name}
		if f.Shorthand != "" {
			names = append(names, "-"+f.Shorthand)
		}
		words = append(words, names...)
		if f.NoOptDefVal != "" { // a bool: no value follows
			return
		}
		placeholder, _ := pflag.UnquoteUsage(f)
		var reply string
		switch {
		case len(f.Annotations[annotValues]) > 0:
			reply = "COMPREPLY=($(compgen -W '" + strings.Join(f.Annotations[annotValues], " ") + "' -- \"$cur\"))"
		case placeholder == "DIR":
			reply = "COMPREPLY=($(compgen -d -- \"$cur\"))"
		case placeholder == "FILE" || placeholder == "PATH":
			reply = "COMPREPLY=($(compgen -f -- \"$cur\"))"
		default:
			reply = "COMPREPLY=()"
		}
		for _, n := range names {
			add(reply, n)
		}
	})
	if len(order) > 0 {
		b.WriteString("\tcase $prev in\n")
		for _, reply := range order {
			fmt.Fprintf(b, "\t%s) %s; return 0 ;;\n", strings.Join(kinds[reply], "|"), reply)
		}
		b.WriteString("\tesac\n")
	}
	fmt.Fprintf(b, "\tcase $cur in\n\t-*) COMPREPLY=($(compgen -W '%s' -- \"$cur\")); return 0 ;;\n\tesac\n", strings.Join(slices.Compact(words), " "))
	fmt.Fprintf(b, "\t%s\n", positional)
}
