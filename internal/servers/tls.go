package servers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

// TLSOptions describes the self-signed certificate a TLS server presents
// and the protocol versions it accepts. The zero value is a certificate
// for "localhost" and 127.0.0.1, valid from an hour ago for 30 days, and
// TLS 1.2 and 1.3 only.
type TLSOptions struct {
	// CommonName is the subject's CN; "localhost" when empty.
	CommonName string
	// DNSNames and IPAddresses are the subject alternative names; both
	// empty means DNS "localhost" and IP 127.0.0.1.
	DNSNames    []string
	IPAddresses []netip.Addr
	// NotBefore and NotAfter bound the validity; zero means an hour ago and
	// 30 days from now. A NotAfter in the past makes an expired certificate.
	NotBefore, NotAfter time.Time
	// LegacyTLS also offers TLS 1.0 and 1.1, with OpenSSL's security level
	// 0 so that OpenSSL 3 really negotiates them.
	LegacyTLS bool
}

// keyPair is a certificate and its key written as PEM files.
type keyPair struct {
	cert            *x509.Certificate
	certPEM, keyPEM string // paths
}

// writeKeyPair makes a self-signed ECDSA P-256 certificate as opts says
// and writes it and its key (PKCS #8, mode 0600) into dir.
func writeKeyPair(t testing.TB, dir string, opts TLSOptions) keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: opts.CommonName, Organization: []string{"portctl tests"}},
		NotBefore:             opts.NotBefore,
		NotAfter:              opts.NotAfter,
		DNSNames:              opts.DNSNames,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if tmpl.Subject.CommonName == "" {
		tmpl.Subject.CommonName = "localhost"
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = now.Add(30 * 24 * time.Hour)
	}
	for _, ip := range opts.IPAddresses {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	if len(opts.DNSNames) == 0 && len(opts.IPAddresses) == 0 {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("make certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	kp := keyPair{cert: cert, certPEM: filepath.Join(dir, "cert.pem"), keyPEM: filepath.Join(dir, "key.pem")}
	writeFile(t, kp.certPEM, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	writeFile(t, kp.keyPEM, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})), 0o600)
	return kp
}

// KeyPairFiles makes a self-signed certificate as opts says and returns
// the paths of its PEM certificate and key, for programs that read files.
func KeyPairFiles(t testing.TB, opts TLSOptions) (cert, key string) {
	t.Helper()
	kp := writeKeyPair(t, t.TempDir(), opts)
	return kp.certPEM, kp.keyPEM
}

// SelfSigned makes a self-signed certificate as opts says, for a server a
// test runs in-process (QUIC, which no Debian package of this release
// serves).
func SelfSigned(t testing.TB, opts TLSOptions) tls.Certificate {
	t.Helper()
	kp := writeKeyPair(t, t.TempDir(), opts)
	c, err := tls.LoadX509KeyPair(kp.certPEM, kp.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
