"""Small threaded servers the black-box tests stand up on loopback: TcpServer runs a handler per
accepted connection, HttpServer serves a BaseHTTPRequestHandler class, Nginx runs Debian's nginx
with a site file. Every wait is bounded; close() stops accepting, closes the sockets and joins
the threads the server started. Subclass TcpServer/HttpServer for a server with state of its
own (see gate_util.Upstream, test_inbound.Backend)."""
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

JOIN_TIMEOUT = 5.0


def recv_exact(c, n):
    """Exactly n bytes from c; EOFError when the peer closes first."""
    data = b""
    while len(data) < n:
        d = c.recv(n - len(data))
        if not d:
            raise EOFError(f"closed after {len(data)} of {n} bytes")
        data += d
    return data


def echo_until_eof(c, bufsize=65536):
    """Sends back every byte until the peer half-closes, then half-closes too."""
    while True:
        d = c.recv(bufsize)
        if not d:
            c.shutdown(socket.SHUT_WR)
            return
        c.sendall(d)


class TcpServer:
    """A TCP listener on host (127.0.0.1 by default, any free port) that calls handler(conn, peer)
    for every connection, on a thread of its own (threaded) or on the accept thread, and closes
    the connection when the handler returns. handler=None holds every connection open until
    close(). An OSError in a handler (the peer went away) ends that connection quietly."""

    def __init__(self, handler, host="127.0.0.1", port=0, backlog=64, threaded=True,
                 reuse_addr=False):
        self.handler, self.threaded = handler, threaded
        self.accepted = 0                 # connections accepted so far
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        if reuse_addr:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(backlog)
        self.sock.settimeout(0.5)         # the accept loop sees close() even if shutdown() does not wake it
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns, self._threads = set(), []
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                c, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(None)
            with self._lock:
                if self._stop.is_set():
                    c.close()
                    return
                self.accepted += 1
                self._conns.add(c)
                if self.threaded and self.handler is not None:
                    t = threading.Thread(target=self._run_handler, args=(c, peer), daemon=True)
                    self._threads.append(t)
                    t.start()
            if not self.threaded and self.handler is not None:
                self._run_handler(c, peer)

    def _run_handler(self, c, peer):
        try:
            self.handler(c, peer)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(c)
            c.close()

    def close(self):
        self._stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)     # wakes a blocked accept() on Linux
        except OSError:
            pass
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for c in conns:                              # wakes handlers blocked in recv()
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(timeout=JOIN_TIMEOUT)
        for t in threads:
            t.join(timeout=JOIN_TIMEOUT)
        self.sock.close()
        for c in conns:
            c.close()


class HttpServer:
    """A ThreadingHTTPServer on 127.0.0.1 (port 0: any free one) serving handler_class on a
    thread of its own; tls=(cert file, key file) makes it HTTPS."""

    def __init__(self, handler_class, port=0, tls=None):
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler_class)
        self.server.daemon_threads = True
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            # accept() on the wrapped listener hands each handler a TLS connection
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=JOIN_TIMEOUT)


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def have_nginx():
    return os.path.exists(NGINX)


def nginx_example(name):
    """The text of etc/nginx/<name>, the example site the docs ship."""
    return (Path(__file__).resolve().parents[2] / "etc" / "nginx" / name).read_text()


class Nginx:
    """Debian's nginx in the foreground with one worker and prefix dir `tmp`, serving `site`
    (server/upstream blocks, e.g. a file of etc/nginx/) with each placeholder named in addrs
    (GATE_ADDR="127.0.0.1:8080", ...) and LISTEN_ADDR (127.0.0.1:<a free port>, self.port)
    filled in. Running when the constructor returns (its port answers); stop() ends it by PID."""

    def __init__(self, tmp, site, worker_connections=256, **addrs):
        from conftest import free_port, wait_port  # here, not on top: conftest imports servers
        self.dir = t = str(tmp)
        self.port = free_port()
        for name, addr in {**addrs, "LISTEN_ADDR": f"127.0.0.1:{self.port}"}.items():
            site = site.replace(name, addr)
        left = set(re.findall(r"\b[A-Z][A-Z_]*_ADDR\b", site)) - {"REMOTE_ADDR"}
        if left:
            raise ValueError(f"nginx site placeholders not filled in: {sorted(left)}")
        for d in ("logs", "tmp"):
            os.makedirs(os.path.join(t, d), exist_ok=True)
        with open(os.path.join(t, "site.conf"), "w") as f:
            f.write(site)
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = os.path.join(t, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"{user}worker_processes 1;\ndaemon off;\npid {t}/nginx.pid;\n"
                    f"error_log {t}/logs/error.log warn;\n"
                    f"events {{ worker_connections {worker_connections}; }}\n"
                    f"http {{\n access_log off;\n client_body_temp_path {t}/tmp/body;\n"
                    f" proxy_temp_path {t}/tmp/proxy;\n fastcgi_temp_path {t}/tmp/fcgi;\n"
                    f" uwsgi_temp_path {t}/tmp/uwsgi;\n scgi_temp_path {t}/tmp/scgi;\n"
                    f" include {t}/site.conf;\n}}\n")
        self.proc = subprocess.Popen([NGINX, "-p", t, "-c", conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_port("127.0.0.1", self.port)
        except TimeoutError:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise AssertionError("nginx did not start: " + self.proc.stderr.read().decode())

    def stop(self):
        from conftest import stop_process
        stop_process(self.proc)
        self.proc.stderr.close()
        return self.proc.returncode
