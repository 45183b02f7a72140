package sshwire

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// User authentication (RFC 4252; keyboard-interactive RFC 4256).

// ErrAuth is wrapped when the server accepts none of the ways to log in
// that the Config holds.
var ErrAuth = errors.New("ssh: unable to authenticate")

const serviceConnection = "ssh-connection"

// disconnectNoMoreAuthMethods is SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE.
const disconnectNoMoreAuthMethods = 14

// authResult is the server's answer to one attempt.
type authResult struct {
	ok      bool
	partial bool
	methods []string // what the server still allows, after a failure
}

// readAuth reads the next message of the login, skipping banners and
// extension information. want lists the messages the step expects besides
// SUCCESS and FAILURE.
func (c *Conn) readAuth(want ...byte) ([]byte, error) {
	for {
		p, err := c.t.readPacket()
		if err != nil {
			return nil, err
		}
		switch p[0] {
		case msgUserAuthSuccess, msgUserAuthFailure:
			return p, nil
		case msgUserAuthBanner, msgIgnore, msgDebug:
			continue
		case msgExtInfo:
			c.extInfo(p)
			continue
		case msgDisconnect:
			err := disconnectError(p)
			var d *DisconnectError
			if errors.As(err, &d) && (d.Reason == disconnectNoMoreAuthMethods ||
				strings.Contains(strings.ToLower(d.Message), "authentication")) {
				// OpenSSH's "Too many authentication failures", say.
				err = fmt.Errorf("%w: %w", ErrAuth, err)
			}
			return nil, err
		case msgKexInit:
			return nil, errors.New("ssh: the server started a key exchange during the login")
		}
		if slices.Contains(want, p[0]) {
			return p, nil
		}
		return nil, fmt.Errorf("ssh: message %d during the login", p[0])
	}
}

// result reads SUCCESS or FAILURE.
func result(p []byte) (authResult, error) {
	if p[0] == msgUserAuthSuccess {
		return authResult{ok: true}, nil
	}
	if p[0] != msgUserAuthFailure {
		return authResult{}, fmt.Errorf("ssh: message %d during the login", p[0])
	}
	r := reader{b: p[1:]}
	res := authResult{methods: r.nameList(), partial: r.bool()}
	return res, r.err
}

// request starts a USERAUTH_REQUEST for method.
func (c *Conn) request(method string) writer {
	w := writer{msgUserAuthRequest}
	w.string(c.cfg.User)
	w.string(serviceConnection)
	w.string(method)
	return w
}

// authenticate logs in: "none" first, which tells the methods the server
// allows, then ours in order where allowed, until one succeeds.
func (c *Conn) authenticate() error {
	w := writer{msgServiceRequest}
	w.string("ssh-userauth")
	if err := c.sendKex(w); err != nil {
		return err
	}
	p, err := c.readAuth(msgServiceAccept)
	if err != nil {
		return err
	}
	if p[0] != msgServiceAccept {
		return fmt.Errorf("ssh: message %d instead of SERVICE_ACCEPT", p[0])
	}
	if err := c.sendKex(c.request("none")); err != nil {
		return err
	}
	p, err = c.readAuth()
	if err != nil {
		return err
	}
	res, err := result(p)
	if err != nil || res.ok {
		return err
	}
	type method struct {
		name string
		try  func() (authResult, error)
	}
	var ours []method
	if len(c.cfg.Signers) > 0 {
		ours = append(ours, method{"publickey", c.publicKey})
	}
	if c.cfg.KeyboardInteractive != nil {
		ours = append(ours, method{"keyboard-interactive", c.keyboardInteractive})
	}
	if c.cfg.Password != nil {
		ours = append(ours, method{"password", c.password})
	}
	// Each method once, the first of ours the server allows each time: a
	// partial success may allow one passed over before.
	tried := []string{"none"}
	for {
		i := slices.IndexFunc(ours, func(m method) bool {
			return slices.Contains(res.methods, m.name) && !slices.Contains(tried, m.name)
		})
		if i < 0 {
			return fmt.Errorf("%w: attempted methods %s, the server allows %s", ErrAuth,
				strings.Join(tried, ", "), strings.Join(res.methods, ", "))
		}
		tried = append(tried, ours[i].name)
		r, err := ours[i].try()
		if err != nil || r.ok {
			return err
		}
		if r.methods != nil { // no answer (no key signed, say): as before
			res = r
		}
	}
}

// signingAlgorithm picks the algorithm to sign with for a key: for RSA
// the SHA-2 ones the server lists in server-sig-algs (RFC 8332), SHA-512
// first as OpenSSH does, and ssh-rsa when the server lists none.
func (c *Conn) signingAlgorithm(s ssh.Signer) (alg, sigAlg string) {
	t := s.PublicKey().Type()
	const cert = "-cert-v01@openssh.com"
	base, isCert := strings.CutSuffix(t, cert)
	if base != ssh.KeyAlgoRSA {
		return t, ""
	}
	if _, ok := s.(ssh.AlgorithmSigner); !ok {
		return t, ""
	}
	for _, a := range []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256} {
		if slices.Contains(c.serverSigAlgs, a) {
			if isCert {
				return a + cert, a
			}
			return a, a
		}
	}
	return t, ""
}

// publicKey offers each key, and signs with those the server would take.
// Its result has no methods when the server never answered a signature.
func (c *Conn) publicKey() (authResult, error) {
	var res authResult
	for _, s := range c.cfg.Signers {
		alg, sigAlg := c.signingAlgorithm(s)
		blob := s.PublicKey().Marshal()
		q := c.request("publickey")
		q.bool(false)
		q.string(alg)
		q.bytes(blob)
		if err := c.sendKex(q); err != nil {
			return res, err
		}
		p, err := c.readAuth(msgUserAuthPKOK)
		if err != nil {
			return res, err
		}
		if p[0] != msgUserAuthPKOK {
			if res, err = result(p); err != nil || res.ok {
				return res, err
			}
			continue
		}
		var data writer
		data.bytes(c.sessionID)
		data = append(data, c.request("publickey")...)
		data.bool(true)
		data.string(alg)
		data.bytes(blob)
		var sig *ssh.Signature
		if sigAlg != "" {
			sig, err = s.(ssh.AlgorithmSigner).SignWithAlgorithm(rand.Reader, data, sigAlg)
		} else {
			sig, err = s.Sign(rand.Reader, data)
		}
		if err != nil {
			continue // an agent that refuses to sign, say: the next key
		}
		req := c.request("publickey")
		req.bool(true)
		req.string(alg)
		req.bytes(blob)
		req.bytes(ssh.Marshal(sig))
		if err := c.sendKex(req); err != nil {
			return res, err
		}
		if p, err = c.readAuth(); err != nil {
			return res, err
		}
		if res, err = result(p); err != nil || res.ok {
			return res, err
		}
		if res.partial || !slices.Contains(res.methods, "publickey") {
			return res, nil
		}
	}
	return res, nil
}

// keyboardInteractive answers the server's prompts (RFC 4256).
func (c *Conn) keyboardInteractive() (authResult, error) {
	w := c.request("keyboard-interactive")
	w.string("") // language
	w.string("") // submethods
	if err := c.sendKex(w); err != nil {
		return authResult{}, err
	}
	for {
		p, err := c.readAuth(msgUserAuthPKOK)
		if err != nil {
			return authResult{}, err
		}
		if p[0] != msgUserAuthPKOK {
			return result(p)
		}
		r := reader{b: p[1:]}
		name, instruction := r.string(), r.string()
		r.string() // language
		n := r.uint32()
		if n > 64 {
			return authResult{}, fmt.Errorf("ssh: keyboard-interactive: %d prompts", n)
		}
		questions := make([]string, n)
		echos := make([]bool, n)
		for i := range questions {
			questions[i], echos[i] = r.string(), r.bool()
		}
		if r.err != nil {
			return authResult{}, fmt.Errorf("ssh: keyboard-interactive: %w", r.err)
		}
		answers, err := c.cfg.KeyboardInteractive(name, instruction, questions, echos)
		if err != nil {
			return authResult{}, err
		}
		if len(answers) != len(questions) {
			return authResult{}, fmt.Errorf("ssh: keyboard-interactive: %d answers to %d questions", len(answers), len(questions))
		}
		resp := writer{msgUserAuthInfoResp}
		resp.uint32(uint32(len(answers)))
		for _, a := range answers {
			resp.string(a)
		}
		if err := c.sendKex(resp); err != nil {
			return authResult{}, err
		}
	}
}

// password sends the password; a request to change it counts as a
// refusal.
func (c *Conn) password() (authResult, error) {
	pw, err := c.cfg.Password()
	if err != nil {
		return authResult{}, err
	}
	w := c.request("password")
	w.bool(false)
	w.string(pw)
	if err := c.sendKex(w); err != nil {
		return authResult{}, err
	}
	p, err := c.readAuth(msgUserAuthPKOK)
	if err != nil {
		return authResult{}, err
	}
	if p[0] == msgUserAuthPKOK {
		return authResult{}, nil
	}
	return result(p)
}
