package term

// Style wraps text in ANSI attributes when colour is on. Colour never
// carries meaning alone: every styled word is also written out.
type Style struct{ on bool }

// Style returns the styler for stdout.
func (s *IO) Style() Style { return Style{on: s.color} }

func (st Style) wrap(code, text string) string {
	if !st.on || text == "" {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

// Bold makes text bold.
func (st Style) Bold(text string) string { return st.wrap("1", text) }

// Dim makes text faint.
func (st Style) Dim(text string) string { return st.wrap("2", text) }

// Red colours text red.
func (st Style) Red(text string) string { return st.wrap("31", text) }

// Yellow colours text yellow.
func (st Style) Yellow(text string) string { return st.wrap("33", text) }

// Green colours text green.
func (st Style) Green(text string) string { return st.wrap("32", text) }

// Cyan colours text cyan.
func (st Style) Cyan(text string) string { return st.wrap("36", text) }
