// Package nmapdb reads nmap's service probe database, the
// nmap-service-probes file, and matches service responses against it.
//
// Parse reads the file: the probes to send (Probe), and for each the match
// lines that recognise a response and fill in the product, version and
// other fields from it (Match). nmap's patterns are PCRE; they are
// translated to the dialect of github.com/dlclark/regexp2, which has
// backreferences and lookaround, and matched against responses byte for
// byte (each byte is the rune of the same value, so \xff matches byte 0xff).
// A pattern is compiled the first time it is used, and gives up on a
// response after MatchTimeout.
//
// DB.ForPort gives the probes to send to a port, in order, and DB.MatchAll
// identifies a response with a probe's match lines and its fallbacks', as
// nmap does.
//
// The package reads the user's installed file; portctl does not ship one.
// A DB is safe for concurrent use once Parse has returned it.
package nmapdb
