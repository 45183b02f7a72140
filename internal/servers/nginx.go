package servers

import (
	"fmt"
	"path/filepath"
	"testing"
)

// PageTitle is the <title> of the page nginx, Apache and lighttpd serve
// at "/".
const PageTitle = "portctl test page"

// Nginx starts nginx serving plain HTTP: "/" is an HTML page titled
// PageTitle, and the Server header is "nginx/" and the upstream version.
func Nginx(t testing.TB) *Server {
	t.Helper()
	return nginx(t, "nginx", nil)
}

// NginxTLS starts nginx serving HTTPS with a self-signed certificate made
// as opts says (Server.Cert), HTTP/2 offered by ALPN ("h2", then
// "http/1.1"), and the page of Nginx.
func NginxTLS(t testing.TB, opts TLSOptions) *Server {
	t.Helper()
	return nginx(t, "nginx-tls", &opts)
}

// nginx starts nginx in the foreground (daemon off, one worker), over TLS
// when opts is not nil.
func nginx(t testing.TB, name string, opts *TLSOptions) *Server {
	t.Helper()
	var kp keyPair
	s := start(t, spec{
		name: name, pkg: "nginx", bin: "nginx", proto: "tcp",
		setup: func(dir string) {
			mkdir(t, filepath.Join(dir, "html"), "", 0o755)
			mkdir(t, filepath.Join(dir, "tmp"), "", 0o755)
			writeFile(t, filepath.Join(dir, "html", "index.html"), fmt.Sprintf(
				"<!DOCTYPE html>\n<html><head><title>%s</title></head><body><h1>%[1]s</h1></body></html>\n", PageTitle), 0o644)
			if opts != nil {
				kp = writeKeyPair(t, dir, *opts)
			}
		},
		args: func(dir string, port uint16) []string {
			user := asRoot("user www-data;") // workers run as the test's user unless it is root
			listen := fmt.Sprintf("listen 127.0.0.1:%d;", port)
			if opts != nil {
				protocols, ciphers := "TLSv1.2 TLSv1.3", "HIGH:!aNULL:!MD5"
				if opts.LegacyTLS {
					protocols, ciphers = "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3", "DEFAULT:@SECLEVEL=0"
				}
				listen = fmt.Sprintf(`listen 127.0.0.1:%d ssl http2;
		ssl_certificate %s;
		ssl_certificate_key %s;
		ssl_protocols %s;
		ssl_ciphers "%s";`, port, kp.certPEM, kp.keyPEM, protocols, ciphers)
			}
			conf := filepath.Join(dir, "nginx.conf")
			writeFile(t, conf, fmt.Sprintf(`daemon off;
%[3]s
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr notice;
events {
	worker_connections 64;
}
http {
	access_log off;
	client_body_temp_path %[1]s/tmp/body;
	proxy_temp_path %[1]s/tmp/proxy;
	fastcgi_temp_path %[1]s/tmp/fastcgi;
	uwsgi_temp_path %[1]s/tmp/uwsgi;
	scgi_temp_path %[1]s/tmp/scgi;
	default_type text/html;
	server {
		%[2]s
		server_name localhost;
		root %[1]s/html;
	}
}
`, dir, listen, user), 0o644)
			// -e: the log before the configuration is read, which would
			// otherwise go to /var/log/nginx.
			return []string{"-e", "stderr", "-p", dir, "-c", conf}
		},
	})
	s.Cert = kp.cert
	return s
}
