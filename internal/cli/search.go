package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/registry"
)

// searchOptions are the flags and arguments of `portctl search`.
type searchOptions struct {
	Words string
	Limit int
	JSON  bool
}

// newSearchCmd builds `search`; runF, when not nil, replaces the real run.
func newSearchCmd(streams *term.IO, runF func(searchOptions) error) *cobra.Command {
	var opts searchOptions
	cmd := &cobra.Command{
		Use:   "search WORDS...",
		Short: "Find ports by service name, alias, description or de facto use",
		Long: `Search the IANA registry and the de facto table. Every word must match a
name, an alias, a description or a known use; exact names rank first, then
names that start with the words, then descriptions, and ports people
actually meet rank above obscure ones.`,
		Example: `  portctl search postgres
  portctl search "remote desktop"
  portctl search kafka --limit 3 --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("search needs at least one word, such as 'portctl search postgres'")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Words = strings.Join(args, " ")
			if runF != nil {
				return runF(opts)
			}
			return runSearch(streams, loadRegistry(streams), opts)
		},
	}
	cmd.Flags().IntVarP(&opts.Limit, "limit", "n", 10, "show at most N results (0 for all)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

// searchResult is the JSON document `search --json` prints.
type searchResult struct {
	Query   string           `json:"query"`
	Results []registry.Match `json:"results"`
}

func runSearch(streams *term.IO, reg *registry.Registry, opts searchOptions) error {
	if opts.Limit < 0 {
		return usageErrorf("--limit %d: want 0 (all) or more", opts.Limit)
	}
	if strings.TrimSpace(opts.Words) == "" {
		return usageErrorf("search needs at least one word, such as 'portctl search postgres'")
	}
	matches := reg.Search(opts.Words, opts.Limit)
	if opts.JSON {
		if matches == nil {
			matches = []registry.Match{}
		}
		if err := writeJSON(streams.Out, searchResult{Query: opts.Words, Results: matches}); err != nil {
			return err
		}
	}
	if len(matches) == 0 {
		return negativef("nothing matches %q; try fewer or shorter words", opts.Words)
	}
	if opts.JSON {
		return nil
	}
	st := streams.Style()
	t := term.NewTable("PORT", "PROTO", "NAME", "DESCRIPTION")
	for _, m := range matches {
		port := fmt.Sprint(m.Port)
		if m.Last > m.Port {
			port = fmt.Sprintf("%d-%d", m.Port, m.Last)
		}
		name := strings.Join(m.Names, ", ")
		if name == "" {
			name = "-"
		}
		desc := m.Description
		if len(m.Uses) > 0 {
			if desc != "" {
				desc += st.Dim(" · ")
			}
			desc += st.Dim("in practice: ") + strings.Join(m.Uses, "; ")
		}
		t.Row(port, m.Protos.String(), name, desc)
	}
	return t.Render(streams.Out, streams.Width(), st)
}
