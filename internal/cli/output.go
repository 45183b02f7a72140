package cli

import (
	"encoding/json"
	"io"
)

// writeJSON writes v as indented JSON with a final newline. Field names are
// a stable contract: add fields, never rename them.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
