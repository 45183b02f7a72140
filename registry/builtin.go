package registry

import "sync"

// The built-in assignments are generated (zz_generated.go) as data without
// pointers. Go's garbage collector scans every global variable that holds
// pointers (the .data section) on every cycle, whether or not the program
// looks at it; as a []Assignment, with ten strings and a slice per entry,
// the 12,600 built-in assignments were 2.2 MB there, and a process that
// collects often (the SSH tunnel, hundreds of times a second) spent a tenth
// of its CPU scanning them. As builtinRows, numbers and offsets into the
// constant builtinText, they are 450 KB in .noptrdata and the text is in
// .rodata, neither of which the collector scans. An Assignment is built
// from a row when it is asked for: its strings are pieces of builtinText,
// so that costs no allocation.

// builtinRow is a built-in assignment. Its string fields are pieces of
// builtinText of the lengths in Len, in the order Name, Description,
// Reference, Assignee, Contact, Registered, Modified, Notes,
// UnauthorizedUse: the name at Name, the others back to back from Text.
// The names are together at the start of builtinText, in the order of
// builtinByName, so that a lookup by name touches few pages of it.
type builtinRow struct {
	Port, Last uint16
	Proto      Protocol
	Aliases    uint16 // index in builtinAliasLists; 0, a nil list, for none
	Name       uint32
	Text       uint32
	Len        [9]uint16
}

// The fields of builtinRow.Len.
const (
	textName = iota
	textDescription
	textReference
	textAssignee
	textContact
	textRegistered
	textModified
	textNotes
	textUnauthorizedUse
)

// assignment returns the row as an Assignment.
func (w *builtinRow) assignment() Assignment {
	var f [len(w.Len)]string
	f[textName] = w.name()
	s := builtinText[w.Text:]
	for k := textDescription; k < len(f); k++ {
		n := w.Len[k]
		f[k], s = s[:n], s[n:]
	}
	return Assignment{
		Port:            w.Port,
		Last:            w.Last,
		Proto:           w.Proto,
		Name:            f[textName],
		Aliases:         builtinAliasLists[w.Aliases],
		Description:     f[textDescription],
		Reference:       f[textReference],
		Assignee:        f[textAssignee],
		Contact:         f[textContact],
		Registered:      f[textRegistered],
		Modified:        f[textModified],
		Notes:           f[textNotes],
		UnauthorizedUse: f[textUnauthorizedUse],
	}
}

// name returns the row's Name without building the whole Assignment.
func (w *builtinRow) name() string {
	return builtinText[w.Name : w.Name+uint32(w.Len[textName])]
}

// description returns the row's Description.
func (w *builtinRow) description() string {
	return builtinText[w.Text : w.Text+uint32(w.Len[textDescription])]
}

// builtinAssignments returns the built-in rows as Assignments, built on the
// first call: only All needs them all at once.
var builtinAssignments = sync.OnceValue(func() []Assignment {
	all := make([]Assignment, len(builtinRows))
	for i := range builtinRows {
		all[i] = builtinRows[i].assignment()
	}
	return all
})
