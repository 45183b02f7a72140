package probe

import (
	"bytes"
	"net"
	"strconv"
	"strings"
)

// LDAP (RFC 4511) messages are BER: a tag byte, a length (short form, or
// 0x8N and N bytes), the contents. The probe asks for the root DSE, the
// entry every LDAPv3 server describes itself in (RFC 4512 §5.1), with an
// anonymous search: base "", scope base, filter (objectClass=*).

// ldapMessageID is the message ID of ldapRootDSE; answers echo it.
const ldapMessageID = 0x70

// ldapRootDSE is a SearchRequest for the root DSE's user and operational
// attributes ("*" and "+"), message ID ldapMessageID.
func ldapRootDSE() []byte {
	attrs := berTLV(0x30, berTLV(0x04, []byte("*")), berTLV(0x04, []byte("+")))
	req := berTLV(0x63, // [APPLICATION 3] SearchRequest
		berTLV(0x04, nil),                   // baseObject ""
		berTLV(0x0a, []byte{0}),             // scope baseObject
		berTLV(0x0a, []byte{0}),             // derefAliases never
		berTLV(0x02, []byte{0}),             // sizeLimit
		berTLV(0x02, []byte{0}),             // timeLimit
		berTLV(0x01, []byte{0}),             // typesOnly false
		berTLV(0x87, []byte("objectClass")), // present filter
		attrs)
	return berTLV(0x30, berTLV(0x02, []byte{ldapMessageID}), req)
}

// berTLV encodes one BER element of tag whose contents are parts.
func berTLV(tag byte, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	out := []byte{tag}
	switch n := len(body); {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 0x100:
		out = append(out, 0x81, byte(n))
	default:
		out = append(out, 0x82, byte(n>>8), byte(n))
	}
	return append(out, body...)
}

// berNext reads the BER element at the start of b: its tag, its contents
// and what follows. ok is false when b does not hold a whole element of
// definite length (up to four length bytes).
func berNext(b []byte) (tag byte, body, rest []byte, ok bool) {
	if len(b) < 2 {
		return 0, nil, nil, false
	}
	tag, l := b[0], int(b[1])
	b = b[2:]
	if l&0x80 != 0 {
		k := l & 0x7f
		if k == 0 || k > 4 || len(b) < k {
			return 0, nil, nil, false
		}
		l = 0
		for _, c := range b[:k] {
			l = l<<8 | int(c)
		}
		b = b[k:]
	}
	if l < 0 || l > len(b) {
		return 0, nil, nil, false
	}
	return tag, b[:l], b[l:], true
}

// ldapComplete reports whether b holds the last answer to ldapRootDSE, a
// SearchResultDone, or an ExtendedResponse (a notice of disconnection).
func ldapComplete(b []byte) bool {
	for len(b) > 0 {
		tag, body, rest, ok := berNext(b)
		if !ok || tag != 0x30 {
			return false
		}
		if _, _, op, ok := berNext(body); ok && len(op) > 0 && (op[0] == 0x65 || op[0] == 0x78) {
			return true
		}
		b = rest
	}
	return false
}

// ldapVendors name the server from what its root DSE holds.
var ldapVendors = []struct{ attr, value, product string }{
	{"objectclass", "openldaprootdse", "OpenLDAP"},
	{"dsservicename", "", "Microsoft Windows Active Directory LDAP"},
	{"vendorname", "389 project", "389 Directory Server"},
	{"vendorname", "apache software foundation", "ApacheDS"},
	{"vendorname", "unboundid corp.", "UnboundID Directory Server"},
	{"vendorname", "oracle corporation", "Oracle Directory Server"},
}

// matchLDAP reads the answers to ldapRootDSE: LDAPMessages with its
// message ID, a SearchResultEntry and a SearchResultDone, or a
// SearchResultDone alone when anonymous reads are refused. The root DSE's
// vendorName, vendorVersion (RFC 3045) or a server's own attributes name
// the product.
func matchLDAP(b []byte) (Service, bool) {
	s := Service{Name: "ldap", Confidence: 10}
	attrs := map[string][]string{}
	found := false
	for len(b) > 0 {
		tag, msg, rest, ok := berNext(b)
		if !ok || tag != 0x30 {
			break
		}
		b = rest
		tag, id, msg, ok := berNext(msg)
		if !ok || tag != 0x02 || len(id) != 1 || id[0] != ldapMessageID {
			break
		}
		op, body, _, ok := berNext(msg)
		if !ok {
			break
		}
		switch op {
		case 0x64: // SearchResultEntry: objectName, attributes
			_, _, list, ok := berNext(body)
			if !ok {
				break
			}
			_, list, _, _ = berNext(list)
			for len(list) > 0 {
				var pa []byte
				if _, pa, list, ok = berNext(list); !ok {
					break
				}
				_, typ, vals, ok := berNext(pa)
				if !ok {
					break
				}
				_, set, _, _ := berNext(vals)
				key := strings.ToLower(printable(typ))
				for len(set) > 0 {
					var v []byte
					if _, v, set, ok = berNext(set); !ok {
						break
					}
					attrs[key] = append(attrs[key], printable(v))
				}
			}
			found = true
		case 0x65: // SearchResultDone: resultCode, matchedDN, diagnosticMessage
			tag, code, rest, ok := berNext(body)
			if !ok || tag != 0x0a || len(code) != 1 {
				return Service{}, false
			}
			if code[0] != 0 {
				s.add("result", strconv.Itoa(int(code[0])))
				if _, _, rest, ok = berNext(rest); ok {
					if _, diag, _, ok := berNext(rest); ok {
						s.add("error", printable(diag))
					}
				}
			}
			found = true
		default:
			return Service{}, false
		}
	}
	if !found {
		return Service{}, false
	}
	for _, v := range ldapVendors {
		for _, val := range attrs[v.attr] {
			if v.value == "" || strings.EqualFold(val, v.value) {
				s.Product = v.product
			}
		}
		if s.Product != "" {
			break
		}
	}
	if vv := attrs["vendorversion"]; len(vv) > 0 {
		s.Version = vv[0]
		if s.Product == "" {
			s.Product = vv[0]
			s.Version = ""
		}
	}
	s.add("naming contexts", strings.Join(attrs["namingcontexts"], ", "))
	s.add("ldap versions", strings.Join(attrs["supportedldapversion"], ", "))
	s.add("sasl", strings.Join(attrs["supportedsaslmechanisms"], " "))
	s.Evidence = Escape([]byte(strings.Join(append(attrs["objectclass"], attrs["vendorname"]...), " ")))
	if s.Evidence == "" {
		s.Evidence = "LDAP SearchResultDone"
	}
	return s, true
}

func (d *detector) probeLDAP(c net.Conn) (Service, bool) {
	return d.ask(c, "ldap-rootdse", ldapRootDSE(), ldapComplete, matchLDAP)
}
