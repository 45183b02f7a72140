package registry

import (
	"reflect"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

// hasPointers reports whether values of t hold pointers the garbage
// collector would have to scan.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	}
	return true
}

// TestBuiltinTablesPointerFree guards the point of the generated layout: the
// big built-in tables hold no pointers, so they are not in .data and the
// garbage collector does not scan them on every cycle.
func TestBuiltinTablesPointerFree(t *testing.T) {
	for name, v := range map[string]any{
		"builtinRows":    builtinRows,
		"builtinByName":  builtinByName,
		"builtinRanged":  builtinRanged,
		"builtinAliases": builtinAliases,
	} {
		if typ := reflect.TypeOf(v); hasPointers(typ) {
			t.Errorf("%s is a %v, which holds pointers", name, typ)
		}
	}
	if len(builtinAliasLists) > 1000 {
		t.Errorf("builtinAliasLists has %d lists; it holds pointers and was meant to stay small", len(builtinAliasLists))
	}
}

// TestBuiltinRows checks that every row reads back within builtinText and
// that the registry's accessors agree with All.
func TestBuiltinRows(t *testing.T) {
	r := Builtin()
	all := r.All()
	if len(all) != len(builtinRows) || r.Len() != len(builtinRows) {
		t.Fatalf("len(All()) = %d, Len() = %d; want %d rows", len(all), r.Len(), len(builtinRows))
	}
	for i := range builtinRows {
		w := &builtinRows[i]
		end := int(w.Text)
		for _, n := range w.Len[textDescription:] {
			end += int(n)
		}
		if end > len(builtinText) || int(w.Name)+int(w.Len[textName]) > len(builtinText) {
			t.Fatalf("builtinRows[%d] = %+v ends at %d, past builtinText (%d bytes)", i, *w, end, len(builtinText))
		}
		if int(w.Aliases) >= len(builtinAliasLists) {
			t.Fatalf("builtinRows[%d] = %+v; alias list out of range", i, *w)
		}
		if diff := gocmp.Diff(all[i], r.at(i)); diff != "" {
			t.Fatalf("at(%d) differs from All()[%d] (-all +at):\n%s", i, i, diff)
		}
		if got := r.nameAt(int32(i)); got != all[i].Name {
			t.Fatalf("nameAt(%d) = %q; want %q", i, got, all[i].Name)
		}
		if all[i].Aliases != nil && len(all[i].Aliases) == 0 {
			t.Errorf("All()[%d] has empty, not nil, aliases", i)
		}
	}
}

// TestBuiltinRowsAnswerAsSlice checks that lookups over the built-in rows
// answer as lookups over the same assignments held as a []Assignment, the
// representation of registries built from other data.
func TestBuiltinRowsAnswerAsSlice(t *testing.T) {
	rows := Builtin()
	slice := index(rows.All())
	if rows.rows == nil || slice.rows != nil {
		t.Fatal("want one registry of rows and one of a slice")
	}
	for p := range 65536 {
		if diff := gocmp.Diff(slice.Port(uint16(p), 0), rows.Port(uint16(p), 0)); diff != "" {
			t.Fatalf("Port(%d) over rows differs from over a slice (-slice +rows):\n%s", p, diff)
		}
	}
	names := rows.Names()
	if diff := gocmp.Diff(slice.Names(), names); diff != "" {
		t.Fatalf("Names() over rows differs from over a slice (-slice +rows):\n%s", diff)
	}
	for _, n := range names {
		if diff := gocmp.Diff(slice.Name(n, 0), rows.Name(n, 0)); diff != "" {
			t.Fatalf("Name(%q) over rows differs from over a slice (-slice +rows):\n%s", n, diff)
		}
	}
	for _, q := range []string{"postgres", "http", "remote desktop", "ms-wbt", "kerberos"} {
		if diff := gocmp.Diff(slice.Search(q, 0), rows.Search(q, 0)); diff != "" {
			t.Errorf("Search(%q) over rows differs from over a slice (-slice +rows):\n%s", q, diff)
		}
	}
}
