package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portctl/portctl/registry"
)

// allSuites are every cipher suite Go implements, the insecure ones too:
// detection must complete a handshake with whatever the server accepts.
var allSuites = func() []uint16 {
	var ids []uint16
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		ids = append(ids, s.ID)
	}
	return ids
}()

// handshake runs a TLS client handshake over c between the versions given,
// offering alpn.
func (d *detector) handshake(c net.Conn, minV, maxV uint16, alpn []string) (*tls.Conn, error) {
	tc := tls.Client(c, &tls.Config{
		ServerName:         d.t.Host, // a name, never an address (Target.Host)
		InsecureSkipVerify: true,     // identifying, not trusting: the certificate is reported
		NextProtos:         alpn,
		MinVersion:         minV,
		MaxVersion:         maxV,
		CipherSuites:       allSuites,
	})
	ctx, cancel := context.WithTimeout(d.ctx, d.wait())
	defer cancel()
	return tc, tc.HandshakeContext(ctx)
}

// probeTLS tries a TLS handshake; on success it reports the handshake and
// the certificate, checks whether TLS 1.0 or 1.1 is accepted too, and
// identifies the service inside.
func (d *detector) probeTLS(c net.Conn) (Service, bool) {
	d.probes++
	tc, err := d.handshake(c, tls.VersionTLS10, tls.VersionTLS13, []string{"h2", "http/1.1"})
	if err != nil {
		return Service{}, false
	}
	st := tc.ConnectionState()
	info := handshakeInfo(st, d.cfg.Now())
	// Inside: what the server says or answers to GET, over HTTP/1.1.
	var inner Service
	var ok bool
	if st.NegotiatedProtocol != "h2" {
		inner, ok = d.inside(tc)
	}
	tc.Close()
	if !ok && d.more() {
		if c2, err := d.dial("tcp"); err == nil {
			if tc2, err := d.handshake(c2, tls.VersionTLS10, tls.VersionTLS13, []string{"http/1.1"}); err == nil {
				inner, ok = d.inside(tc2)
				tc2.Close()
			}
			c2.Close()
		}
	}
	if !ok {
		inner = Service{Name: "ssl", Confidence: 10, Probe: "tls"}
	}
	if inner.HTTP == nil && st.NegotiatedProtocol == "h2" {
		inner.Name, inner.HTTP = "http", &HTTPInfo{Protocol: "HTTP/2"}
	}
	inner.TLS = info
	if inner.Evidence == "" {
		inner.Evidence = info.Version + " " + info.Cipher
	}
	// Old versions, each on its own connection.
	if st.Version >= tls.VersionTLS12 {
		for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
			if !d.more() {
				break
			}
			c3, err := d.dial("tcp")
			if err != nil {
				break
			}
			d.probes++
			if tc3, err := d.handshake(c3, v, v, nil); err == nil {
				info.Legacy = append(info.Legacy, tls.VersionName(v))
				tc3.Close()
			}
			c3.Close()
		}
	}
	inner.Findings = append(inner.Findings, tlsFindings(info)...)
	return inner, true
}

// handshakeInfo describes a completed handshake as of now.
func handshakeInfo(st tls.ConnectionState, now time.Time) *TLSInfo {
	info := &TLSInfo{
		Version: tls.VersionName(st.Version),
		Cipher:  tls.CipherSuiteName(st.CipherSuite),
		ALPN:    st.NegotiatedProtocol,
	}
	if len(st.PeerCertificates) > 0 {
		info.Cert = certInfo(st.PeerCertificates[0], now)
	}
	return info
}

// inside identifies the service in an established TLS connection: a
// greeting (IMAPS, POP3S, SMTPS, FTPS) or an HTTP answer.
func (d *detector) inside(tc *tls.Conn) (Service, bool) {
	b, _ := d.readAnswer(tc, d.cfg.bannerWait(), nil)
	if len(b) > 0 {
		if s, ok := matchBanner(b); ok {
			s = d.follow(tc, s)
			// The finding is for plain text; this is inside TLS.
			s.Findings = slices.DeleteFunc(s.Findings, func(f Finding) bool { return f.ID == "plaintext-login" })
			return s, true
		}
		return Service{}, false
	}
	b = d.exchange(tc, httpRequest(d.hostHeader()), nil)
	s, ok := matchHTTP(b)
	if ok {
		s.Probe = "tls+http"
	}
	return s, ok
}

// certInfo summarises a certificate as of now.
func certInfo(c *x509.Certificate, now time.Time) *CertInfo {
	ci := &CertInfo{
		Subject:   c.Subject.String(),
		Issuer:    c.Issuer.String(),
		NotBefore: c.NotBefore.UTC(),
		NotAfter:  c.NotAfter.UTC(),
		DaysLeft:  daysUntil(now, c.NotAfter),
	}
	ci.SANs = append(ci.SANs, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		ci.SANs = append(ci.SANs, ip.String())
	}
	ci.SANs = append(ci.SANs, c.EmailAddresses...)
	for _, u := range c.URIs {
		ci.SANs = append(ci.SANs, u.String())
	}
	// Signed by its own key (CheckSignatureFrom would also want it to be
	// a CA, which a server's self-signed leaf usually is not).
	ci.SelfSigned = string(c.RawIssuer) == string(c.RawSubject) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
	return ci
}

// daysUntil counts whole days from now to t, rounding toward the past:
// -1 on the first day after expiry.
func daysUntil(now, t time.Time) int {
	d := t.Sub(now)
	days := int(d / (24 * time.Hour))
	if d < 0 && d%(24*time.Hour) != 0 {
		days--
	}
	return days
}

// expiringDays is how close to expiry a certificate draws a warning.
const expiringDays = 30

// tlsFindings are the warnings about a TLS service.
func tlsFindings(info *TLSInfo) []Finding {
	var fs []Finding
	if len(info.Legacy) > 0 {
		fs = append(fs, Finding{Severity: registry.SevMedium, ID: "tls-legacy",
			Message: strings.Join(info.Legacy, " and ") + " accepted: both are deprecated (RFC 8996); allow TLS 1.2 and 1.3 only"})
	}
	if c := info.Cert; c != nil {
		switch {
		case c.DaysLeft < 0:
			fs = append(fs, Finding{Severity: registry.SevHigh, ID: "cert-expired",
				Message: "the certificate expired on " + c.NotAfter.Format(time.DateOnly)})
		case c.DaysLeft < expiringDays:
			fs = append(fs, Finding{Severity: registry.SevMedium, ID: "cert-expiring",
				Message: "the certificate expires on " + c.NotAfter.Format(time.DateOnly) + ", in " + plural(c.DaysLeft, "day")})
		}
		if c.SelfSigned {
			fs = append(fs, Finding{Severity: registry.SevInfo, ID: "cert-self-signed",
				Message: "the certificate is self-signed: clients cannot verify it without pinning it"})
		}
	}
	return fs
}

func plural(n int, unit string) string {
	s := strconv.Itoa(n) + " " + unit
	if n != 1 {
		s += "s"
	}
	return s
}
