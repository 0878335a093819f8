"""Node clients through the proxy, untouched: https-proxy-agent (CONNECT, also for http://
targets, as undici does) and socks-proxy-agent (socks5h), plain and TLS proxy URLs."""
import json
import os
import subprocess
from pathlib import Path

from conftest import PASSWORD

JS = Path(__file__).parent / "js"
# `make deps-test` installs node (Debian's, when missing) and runs `npm ci` here: no skipping.

SCRIPT = r"""
const http = require('http');
const { HttpsProxyAgent } = require('https-proxy-agent');
const { SocksProxyAgent } = require('socks-proxy-agent');
const [kind, proxyUrl, target] = process.argv.slice(1);
const agent = kind === 'socks' ? new SocksProxyAgent(proxyUrl) : new HttpsProxyAgent(proxyUrl);
http.get(target, { agent }, (res) => {
  let body = '';
  res.on('data', (d) => body += d);
  res.on('end', () => { console.log(JSON.stringify({ status: res.statusCode, body })); });
}).on('error', (e) => { console.log(JSON.stringify({ error: e.message })); process.exitCode = 3; });
"""


def run_node(kind, proxy_url, target, extra_env=None):
    env = dict(os.environ, **(extra_env or {}))
    r = subprocess.run(["node", "-e", SCRIPT, kind, proxy_url, target], cwd=JS, capture_output=True,
                       text=True, timeout=30, env=env)
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_https_proxy_agent_and_socks_proxy_agent(proxy, origin):
    origin.clear()
    target = f"http://127.0.0.1:{origin.port}/js"
    for kind, url in (("https", proxy.url()), ("socks", proxy.url().replace("http://", "socks5h://"))):
        for _ in range(2):
            out = run_node(kind, url, target)
            assert out["status"] == 200, out
            assert json.loads(out["body"])["origin"] in ("127.0.0.2", "127.0.0.3")
    assert set(origin.peers()) <= {"127.0.0.2", "127.0.0.3"} and len(origin.peers()) == 4


def test_wrong_credentials_never_reach_origin(proxy, origin):
    origin.clear()
    target = f"http://127.0.0.1:{origin.port}/js"
    out = run_node("https", f"http://alice:wrong@127.0.0.1:{proxy.port}", target)
    assert out.get("status") in (None, 407)
    out = run_node("socks", f"socks5h://alice:wrong@127.0.0.1:{proxy.port}", target)
    assert "error" in out
    assert origin.peers() == []


def test_https_proxy_url_with_node(proxy_factory, origin, password_hash, tmp_path):
    from conftest import base_config, free_port
    from test_tls_proxy import make_cert
    crt, key = make_cert(tmp_path)
    tport = free_port()
    p = proxy_factory(base_config(origin.port, password_hash,
                                  extra_proxy=f"tls_listen = 127.0.0.1:{tport}\ntls_cert = {crt}\ntls_key = {key}"))
    out = run_node("https", f"https://alice:{PASSWORD}@127.0.0.1:{tport}", f"http://127.0.0.1:{origin.port}/jtls",
                   {"NODE_EXTRA_CA_CERTS": str(crt)})
    assert out["status"] == 200, out
