// Package spa is single-packet authorization: one UDP datagram that asks a
// guarded host to open a port to its sender, authenticated with a key, fresh
// and never accepted twice.
//
// The package encodes and checks two packet formats, and reads the key
// files both use. It is a pure library: it opens no sockets and keeps no
// files; the caller receives the datagram, hands it to a Verifier, and
// stores the ReplayCache where it likes (Save, LoadReplayCache).
//
// # portctl's packet
//
// One binary datagram, 78 to 126 bytes, all integers big-endian:
//
//	offset size  field
//	0      4     magic "pSPA"
//	4      1     version, 1
//	5      1     algorithm: 1 HMAC-SHA-256, 2 Ed25519
//	6      8     key ID: the first 8 bytes of SHA-256("portctl-spa key id\x00" || key),
//	             key being the HMAC secret or the Ed25519 public key
//	14     8     timestamp: Unix seconds, signed
//	22     16    nonce: random bytes
//	38     1     protocol: 6 TCP, 17 UDP (IANA protocol numbers)
//	39     2     port, 1-65535
//	41     4     duration asked for, in seconds; 0 asks for the server's default
//	45     1     address length: 0 (none named), 4 or 16
//	46     0/4/16 the address to open for, as the client sees itself
//	...    32/64 tag: HMAC-SHA-256 with the shared secret, or an Ed25519
//	             signature, over every byte before it
//
// Decoding is strict: the length must be exactly what the address length
// and the algorithm say, the version and algorithm known, the protocol TCP
// or UDP, the port not 0, and an IPv4-mapped IPv6 address is refused (it
// is sent as 4 bytes).
//
// # The address to open for, and NAT
//
// Without an address in the packet the port is opened for the packet's
// source address. A client behind NAT does not know its public address by
// its source; it may name an address in the packet (the address it is
// seen from, found some other way), and then the port is opened for that
// address instead. The packet is authenticated, so only a holder of the
// key can name an address; a third party that captures the packet cannot
// change it, and cannot send it again (see Replay). The other way round, a
// packet that names no address opens for whichever source it arrives from
// first: an attacker on the path who races a captured packet to the server
// gets the port instead of its sender. Naming the address closes that gap.
//
// # Key files
//
// A key file is text, one key a line; blank lines and lines starting with
// '#' are skipped; a comment may follow the key on its line:
//
//	portctl-spa hmac-sha256 BASE64        a shared secret, 16 to 64 bytes
//	portctl-spa ed25519-private BASE64    a client's Ed25519 seed, 32 bytes
//	portctl-spa ed25519-public BASE64     a client's Ed25519 public key, 32 bytes
//	fwknop-rijndael BASE64                fwknop's Rijndael key, 1 to 32 bytes
//	fwknop-hmac-sha256 BASE64             fwknop's HMAC key, 1 to 128 bytes
//
// BASE64 is standard base64, with or without padding (a passphrase given
// to fwknop with --key-rijndael is written here as the base64 of its bytes). fwknop's own
// spelling of the last two, as `fwknop --key-gen` prints them
// (KEY_BASE64: and HMAC_KEY_BASE64:), is read too. A client's file holds
// the one key it signs with; a server's file may hold several HMAC
// secrets and public keys (a private key there stands for its public key)
// and fwknop keys, each fwknop-rijndael key paired with the
// fwknop-hmac-sha256 key next to it.
//
// # fwknop's packet
//
// The Verifier also accepts the packets of fwknop's client (`fwknop -A
// tcp/22 …`), in the format of fwknop's libfko (FKO protocol 3): the
// datagram is base64 text (without '=' padding) of OpenSSL-style "Salted__"
// AES-256-CBC ciphertext, with the base64 of "Salted__" ("U2FsdGVkX1")
// left off, followed by 43 characters of base64 HMAC-SHA-256 computed over
// the whole ciphertext's base64, prefix included. The AES key and IV
// come from the Rijndael key and the 8-byte salt by OpenSSL's
// EVP_BytesToKey with MD5 and one round. The plaintext is fields separated
// by ':':
//
//	random (16 digits) : base64 user : timestamp : version : message type :
//	base64 "IP,proto/port" [: base64 server auth] [: client timeout] : base64 SHA-256 digest
//
// the digest being over every field before it, colons included. Access
// messages (type 1) and access messages with a client timeout (type 3)
// asking for one TCP or UDP port are accepted; command and NAT messages,
// server auth, several ports in one message, and digests other than
// SHA-256 are refused with ErrUnsupported. An allow IP of 0.0.0.0 (the
// client's -s) means the packet's source. The digest is what the replay
// cache remembers.
//
// # Replay
//
// A packet is checked in this order: authentication, then its timestamp
// must lie within the Verifier's maximum age of now (either side), then
// its nonce (fwknop: its digest) must not be in the ReplayCache, which
// then records it until twice the maximum age has passed: by then the
// timestamp check refuses the packet anyway.
package spa
