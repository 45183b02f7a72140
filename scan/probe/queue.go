package probe

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/portctl/portctl/registry"
)

// This file holds the probes and matchers of message brokers and job
// queues: MQTT, AMQP 0-9-1, NATS, beanstalkd and Gearman.

// mqttVarint reads an MQTT remaining length (MQTT 3.1.1 §2.2.3) at the
// start of b: its value and how many bytes it took; n is 0 when b does
// not hold a whole one.
func mqttVarint(b []byte) (v, n int) {
	mult := 1
	for i := 0; i < 4 && i < len(b); i++ {
		v += int(b[i]&0x7f) * mult
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
		mult *= 128
	}
	return 0, 0
}

// mqttPackets splits b into whole MQTT control packets: each packet
// type (the first byte's high nibble) and its contents.
func mqttPackets(b []byte) (types []byte, bodies [][]byte) {
	for len(b) >= 2 {
		l, n := mqttVarint(b[1:])
		if n == 0 || 1+n+l > len(b) {
			break
		}
		types = append(types, b[0]>>4)
		bodies = append(bodies, b[1+n:1+n+l])
		b = b[1+n+l:]
	}
	return types, bodies
}

// mqttUTF8 is an MQTT UTF-8 string: a two-byte length and the bytes.
func mqttUTF8(s string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...)
}

// mqttTopicVersion is where Mosquitto and other brokers publish their
// version, retained.
const mqttTopicVersion = "$SYS/broker/version"

// mqttConnect is an MQTT 3.1.1 CONNECT (§3.1) with a clean session and no
// credentials, followed by a SUBSCRIBE (§3.8) to mqttTopicVersion: a
// broker that lets anonymous clients in answers CONNACK, SUBACK and then
// the retained version.
func mqttConnect() []byte {
	vh := append(mqttUTF8("MQTT"), 4, 0x02, 0, 60) // protocol level 4, clean session, keep alive 60 s
	body := append(vh, mqttUTF8("portctl-probe")...)
	b := append([]byte{0x10, byte(len(body))}, body...)
	sub := append([]byte{0, 1}, mqttUTF8(mqttTopicVersion)...) // packet identifier 1
	sub = append(sub, 0)                                       // QoS 0
	return append(b, append([]byte{0x82, byte(len(sub))}, sub...)...)
}

// mqttDone reports whether the answer to mqttConnect is complete: a
// CONNACK refusing, or a PUBLISH after it.
func mqttDone(b []byte) bool {
	types, bodies := mqttPackets(b)
	for i, t := range types {
		if t == 2 && len(bodies[i]) == 2 && bodies[i][1] != 0 || t == 3 {
			return true
		}
	}
	return false
}

// mqttReturnCodes are CONNACK's refusals (MQTT 3.1.1 §3.2.2.3).
var mqttReturnCodes = map[byte]string{1: "unacceptable protocol version", 2: "identifier rejected",
	3: "server unavailable", 4: "bad user name or password", 5: "not authorized"}

// matchMQTT reads the answers to mqttConnect: a CONNACK first, then, when
// the broker publishes it, its version.
func matchMQTT(b []byte) (Service, bool) {
	types, bodies := mqttPackets(b)
	if len(types) == 0 || types[0] != 2 || len(bodies[0]) != 2 || bodies[0][0] > 1 || bodies[0][1] > 5 {
		return Service{}, false
	}
	s := Service{Name: "mqtt", Confidence: 10, Evidence: Escape(b[:4])}
	if rc := bodies[0][1]; rc != 0 {
		s.add("connect", mqttReturnCodes[rc])
		s.add("auth", "required")
		return s, true
	}
	s.add("auth", "none")
	s.Findings = append(s.Findings, noAuth("The MQTT broker", "read and publish messages"))
	for i, t := range types {
		if t != 3 || len(bodies[i]) < 2 {
			continue
		}
		p := bodies[i]
		n := int(binary.BigEndian.Uint16(p))
		if 2+n > len(p) || string(p[2:2+n]) != mqttTopicVersion {
			continue
		}
		payload := printable(p[2+n:])
		s.Evidence = Escape([]byte(mqttTopicVersion + " " + payload))
		if v, ok := strings.CutPrefix(payload, "mosquitto version "); ok {
			s.Product, s.Version = "Mosquitto", v
		} else {
			s.add("version", payload)
		}
	}
	return s, true
}

func (d *detector) probeMQTT(c net.Conn) (Service, bool) {
	b := d.exchange(c, mqttConnect(), mqttDone)
	s, ok := matchMQTT(b)
	if ok {
		s.Probe = "mqtt-connect"
		c.Write([]byte{0xe0, 0}) // DISCONNECT
	}
	return s, ok
}

// amqpHeader is the AMQP 0-9-1 protocol header (AMQP 0-9-1 §4.2.2).
var amqpHeader = []byte("AMQP\x00\x00\x09\x01")

// matchAMQP reads a server's answer to amqpHeader: a Connection.Start
// method frame (type 1, channel 0, class 10, method 10) whose
// server-properties table names the product and version, or, from a
// server that speaks another version, its own protocol header.
func matchAMQP(b []byte) (Service, bool) {
	s := Service{Name: "amqp", Confidence: 10}
	if len(b) >= 8 && bytes.HasPrefix(b, []byte("AMQP")) {
		s.add("protocol", strconv.Itoa(int(b[5]))+"-"+strconv.Itoa(int(b[6]))+"-"+strconv.Itoa(int(b[7])))
		s.Evidence = Escape(b[:8])
		return s, true
	}
	if len(b) < 7+4+2 || b[0] != 1 || b[1] != 0 || b[2] != 0 {
		return Service{}, false
	}
	size := int(binary.BigEndian.Uint32(b[3:7]))
	if size < 4+2+4 || 7+size+1 > len(b) || b[7+size] != 0xce {
		return Service{}, false
	}
	p := b[7 : 7+size]
	if binary.BigEndian.Uint16(p) != 10 || binary.BigEndian.Uint16(p[2:]) != 10 {
		return Service{}, false
	}
	s.add("protocol", strconv.Itoa(int(p[4]))+"-"+strconv.Itoa(int(p[5])))
	props := amqpTable(p[6:])
	s.Product, s.Version = props["product"], props["version"]
	s.add("platform", props["platform"])
	s.Evidence = Escape([]byte("product=" + props["product"] + " version=" + props["version"]))
	return s, true
}

// amqpTable reads the string fields of an AMQP field table (a 4-byte
// size, then name, type and value each); it stops at the first field of
// a type it does not skip.
func amqpTable(b []byte) map[string]string {
	out := map[string]string{}
	if len(b) < 4 {
		return out
	}
	n := int(binary.BigEndian.Uint32(b))
	if n > len(b)-4 {
		return out
	}
	t := b[4 : 4+n]
	for len(t) > 1 {
		k := int(t[0])
		if 1+k+1 > len(t) {
			break
		}
		name, typ := string(t[1:1+k]), t[1+k]
		t = t[2+k:]
		switch typ {
		case 'S', 'F': // long string, nested table: a 4-byte length
			if len(t) < 4 || int(binary.BigEndian.Uint32(t)) > len(t)-4 {
				return out
			}
			l := int(binary.BigEndian.Uint32(t))
			if typ == 'S' {
				out[name] = printable(t[4 : 4+l])
			}
			t = t[4+l:]
		case 't', 'b', 'B':
			if len(t) < 1 {
				return out
			}
			t = t[1:]
		default:
			return out
		}
	}
	return out
}

func (d *detector) probeAMQP(c net.Conn) (Service, bool) {
	return d.ask(c, "amqp", amqpHeader, func(b []byte) bool {
		return len(b) >= 8 && bytes.HasPrefix(b, []byte("AMQP")) || len(b) > 7 && len(b) >= 8+int(binary.BigEndian.Uint32(b[3:7]))
	}, matchAMQP)
}

// matchNATS reads a NATS server's greeting (NATS client protocol, INFO):
// "INFO " and a JSON object with the server's version.
func matchNATS(b []byte) (Service, bool) {
	line, ok := bytes.CutPrefix(firstLine(b), []byte("INFO {"))
	if !ok {
		return Service{}, false
	}
	var info struct {
		Version string `json:"version"`
		Go      string `json:"go"`
		Proto   *int   `json:"proto"`
		Auth    bool   `json:"auth_required"`
		TLS     bool   `json:"tls_required"`
	}
	if err := json.Unmarshal(append([]byte("{"), line...), &info); err != nil || info.Version == "" || info.Proto == nil {
		return Service{}, false
	}
	s := Service{Name: "nats", Product: "NATS Server", Version: printable([]byte(info.Version)), Confidence: 10}
	s.add("go", printable([]byte(info.Go)))
	if info.Auth {
		s.add("auth", "required")
	} else {
		s.add("auth", "none")
	}
	if info.TLS {
		s.add("tls", "required")
	}
	return s, true
}

// matchBeanstalkd reads the answer to "stats": "OK <bytes>" and a YAML
// document with the server's version.
func matchBeanstalkd(b []byte) (Service, bool) {
	if !bytes.HasPrefix(b, []byte("OK ")) || !bytes.Contains(b, []byte("\n---\n")) {
		return Service{}, false
	}
	doc := string(b)
	if !strings.Contains(doc, "\ncurrent-jobs-ready:") && !strings.Contains(doc, "\ncurrent-jobs-urgent:") {
		return Service{}, false
	}
	s := Service{Name: "beanstalkd", Product: "beanstalkd", Confidence: 10}
	for _, l := range strings.Split(doc, "\n") {
		if v, ok := strings.CutPrefix(l, "version: "); ok {
			s.Version = strings.Trim(printable([]byte(v)), `"`)
			s.Evidence = Escape([]byte(l))
		}
	}
	if s.Evidence == "" {
		s.Evidence = Escape(firstLine(b))
	}
	return s, true
}

func (d *detector) probeBeanstalkd(c net.Conn) (Service, bool) {
	return d.ask(c, "beanstalkd-stats", []byte("stats\r\n"), func(b []byte) bool {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			return false
		}
		n, err := strconv.Atoi(string(bytes.TrimPrefix(b[:i], []byte("OK "))))
		return err != nil || len(b) >= i+2+n+2
	}, matchBeanstalkd)
}

// gearmanEcho is a Gearman ECHO_REQ packet (Gearman protocol, binary
// packets: "\0REQ", type 16, size, data) followed by the text admin
// command "version".
func gearmanEcho() []byte {
	b := []byte("\x00REQ")
	b = binary.BigEndian.AppendUint32(b, 16)
	b = binary.BigEndian.AppendUint32(b, uint32(len("portctl")))
	b = append(b, "portctl"...)
	return append(b, "version\r\n"...)
}

var gearmanVersionRE = regexp.MustCompile(`^OK ([0-9][0-9.]*)`)

// matchGearman reads the answers to gearmanEcho: an ECHO_RES packet
// ("\0RES", type 17) carrying the data back, then "OK <version>".
func matchGearman(b []byte) (Service, bool) {
	if len(b) < 12 || !bytes.HasPrefix(b, []byte("\x00RES")) || binary.BigEndian.Uint32(b[4:]) != 17 {
		return Service{}, false
	}
	n := int(binary.BigEndian.Uint32(b[8:]))
	if n != len("portctl") || len(b) < 12+n || string(b[12:12+n]) != "portctl" {
		return Service{}, false
	}
	s := Service{Name: "gearman", Product: "Gearman job server", Confidence: 10, Evidence: Escape(b[:12+n])}
	if m := gearmanVersionRE.FindSubmatch(b[12+n:]); m != nil {
		s.Version = string(m[1])
		s.Evidence = Escape(b[:12+n]) + " " + Escape(firstLine(b[12+n:]))
	}
	return s, true
}

func (d *detector) probeGearman(c net.Conn) (Service, bool) {
	return d.ask(c, "gearman-echo", gearmanEcho(), func(b []byte) bool { return len(b) > 19 && bytes.HasSuffix(b, []byte("\n")) }, matchGearman)
}

// noAuth is the finding for a service that lets anyone in.
func noAuth(what, can string) Finding {
	return Finding{Severity: registry.SevHigh, ID: "no-auth",
		Message: what + " answers without authentication: anyone who reaches the port can " + can}
}

// epmdNames is an EPMD NAMES_REQ (Erlang's distribution protocol: a
// two-byte length, then 'n').
var epmdNames = []byte{0, 1, 'n'}

// matchEPMD reads epmd's answer to epmdNames: its own port, four bytes,
// which must be the port asked, then a line per Erlang node it knows:
// "name NODE at port PORT".
func matchEPMD(b []byte, port uint16) (Service, bool) {
	if len(b) < 4 || binary.BigEndian.Uint32(b) != uint32(port) {
		return Service{}, false
	}
	rest := string(b[4:])
	if rest != "" && !strings.HasPrefix(rest, "name ") {
		return Service{}, false
	}
	s := Service{Name: "epmd", Product: "Erlang Port Mapper Daemon", Confidence: 9, Evidence: Escape(b[:min(len(b), 80)])}
	var nodes []string
	for _, l := range strings.Split(rest, "\n") {
		if f := strings.Fields(l); len(f) == 5 && f[0] == "name" && f[2] == "at" && f[3] == "port" {
			nodes = append(nodes, printable([]byte(f[1]+":"+f[4])))
		}
	}
	if len(nodes) > 0 {
		s.Confidence = 10
	}
	s.add("nodes", strings.Join(nodes, ", "))
	return s, true
}

func (d *detector) probeEPMD(c net.Conn) (Service, bool) {
	b := d.exchange(c, epmdNames, nil)
	s, ok := matchEPMD(b, d.t.Addr.Port())
	if ok {
		s.Probe = "epmd-names"
	}
	return s, ok
}
