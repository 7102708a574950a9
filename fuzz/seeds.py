#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/corpus/<target>/ (docs/fuzzing.md).

Seeds are real-shaped inputs: the policies of tests/scenarios/*.yaml and of the engine's policy
tests, API Gateway's answers (design.md §3), probe reports as `pvtapi-operator probe` writes them
(docs/probe-report.md), the invoke URLs of the probe's tests, and DNS responses in wire format.
Run from anywhere: `python3 fuzz/seeds.py`. Files are named by what they are; re-running rewrites
the same files.
"""

import json
import re
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


# ---------------------------------------------------------------- policy --

def policy_seeds():
    seen = set()

    def add(name, text):
        if text in seen:
            return
        seen.add(text)
        write("policy", name, text)

    # tests/scenarios/*.yaml: resourcePolicy / endpointPolicy, single-quoted YAML scalars.
    for path in sorted((ROOT / "tests" / "scenarios").glob("*.yaml")):
        for line in path.read_text().splitlines():
            m = re.match(r"^(resourcePolicy|endpointPolicy): '(.*)'$", line)
            if not m:
                continue
            text = m.group(2).replace("''", "'")
            add(f"scenario-{path.stem}-{m.group(1)}.json", text)
            if "VPCE" in text:
                add(f"scenario-{path.stem}-{m.group(1)}-vpce.json", text.replace("VPCE", "vpce-0123456789abcdef0"))

    # engine/src/policy/tests.rs: every raw-string JSON object with a Statement.
    tests = (ROOT / "engine" / "src" / "policy" / "tests.rs").read_text()
    for i, m in enumerate(re.finditer(r'r#"(\{.*?)"#', tests, re.S)):
        text = m.group(1)
        if "Statement" in text:
            add(f"engine-test-{i:03}.json", text)

    # The escaped form GetRestApi returns, and a request after the NUL (an IAM role session
    # calling through another endpoint).
    usual = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"execute-api:Invoke",'
             '"Resource":"execute-api:/*"},{"Effect":"Deny","Principal":"*","Action":"execute-api:Invoke",'
             '"Resource":"execute-api:/*","Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-0123456789abcdef0"}}}]}')
    add("escaped-usual-private-api.json", json.dumps(usual))
    add("usual-with-request.bin", usual + "\0" + "\x03\x02\x01\x00\x05\x01\x02\x00\x03\x01\x02\x00\x01\x01")


# --------------------------------------------------------- invoke_answer --

ANON = ("User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
        "arn:aws:execute-api:us-east-1:123456789012:abcde12345/prod/GET/health")


def invoke_answer_seeds():
    common = "x-amzn-RequestId: 6f1b2c3d-1234-4a5b-9c8d-0123456789ab\nx-amz-apigw-id: AbCdEfGhIjKlMnO=\ncontent-type: application/json\n"
    cases = {
        "ok-200": ("200", "", '{"status":"ok"}'),
        "ok-204-expected": ("204 200,204", "", ""),
        "forbidden": ("403", "x-amzn-ErrorType: ForbiddenException\n", '{"message":"Forbidden"}'),
        "missing-authentication-token": (
            "403", "x-amzn-ErrorType: MissingAuthenticationTokenException\n", '{"message":"Missing Authentication Token"}'),
        "missing-token-uppercase-key": ("403", "", '{"MESSAGE":"Missing Authentication Token"}'),
        "anonymous-not-authorized": ("403", "x-amzn-ErrorType: AccessDeniedException\n", json.dumps({"Message": ANON})),
        "explicit-deny": (
            "403", "x-amzn-ErrorType: AccessDeniedException\n", json.dumps({"Message": ANON + " with an explicit deny"})),
        "incomplete-signature": (
            "403", "x-amzn-ErrorType: IncompleteSignatureException\n",
            '{"message":"Authorization header requires \'Credential\' parameter. Authorization header requires '
            '\'Signature\' parameter. Authorization=Bearer abc"}'),
        "invalid-signature-with-url": (
            "403", "x-amzn-ErrorType: InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/\n", "{}"),
        "authorizer-denied": (
            "403", "x-amzn-ErrorType: AccessDeniedException\n",
            '{"Message":"User is not authorized to access this resource with an explicit deny"}'),
        "waf-html": ("403", "content-type: text/html\n", "<html><head><title>403 Forbidden</title></head>\r\n<body>blocked</body></html>"),
        "unauthorized": ("401", "x-amzn-ErrorType: UnauthorizedException\n", '{"message":"Unauthorized"}'),
        "throttled": ("429", "x-amzn-ErrorType: TooManyRequestsException\n", '{"message":"Too Many Requests"}'),
        "internal-error": ("502", "x-amzn-ErrorType: InternalServerErrorException\n", '{"message": "Internal server error"}'),
        "timed-out": ("504", "", '{"message": "Endpoint request timed out"}'),
        "not-found-empty": ("404", "", ""),
        "binary-body": ("500", "", "\x00\x01\x02\xff"),
    }
    for name, (status, headers, body) in cases.items():
        write("invoke_answer", name, f"{status}\n{common}{headers}\n{body}".encode("latin-1" if name == "binary-body" else "utf-8"))


# ---------------------------------------------------------- probe_report --

TARGET = {"apiId": "abcde12345", "region": "us-east-1", "stage": "prod", "path": "/health", "method": "GET",
          "vpceId": "vpce-0123456789abcdef0"}
API = "abcde12345.execute-api.us-east-1.amazonaws.com"
ALIAS = "abcde12345-vpce-0123456789abcdef0.execute-api.us-east-1.amazonaws.com"
VPCE = "vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com"
ZONAL = "vpce-0123456789abcdef0-abcdefgh-us-east-1a.execute-api.us-east-1.vpce.amazonaws.com"


def report(**parts):
    r = {"version": "pvtapi.io/probe-report/v1", "target": TARGET,
         "access": {"mode": "privateDns", "reason": "auto: the API host resolves to private addresses (private DNS is on)"},
         "resolver": "system"}
    r.update(parts)
    return json.dumps(r, separators=(",", ":"))


def addr(ip, cls="private"):
    return {"ip": ip, "class": cls}


def probe_report_seeds():
    healthy_dns = [
        {"host": API, "role": "api", "outcome": "resolved", "addresses": [addr("10.0.1.10"), addr("10.0.2.10")], "ttl": 60, "ms": 3},
        {"host": ALIAS, "role": "endpointAlias", "outcome": "nxDomain", "error": "no record found for Query { name: Name(\"" + ALIAS + ".\"), query_type: A, query_class: IN }", "ms": 2},
        {"host": VPCE, "role": "endpointRegional", "outcome": "resolved", "addresses": [addr("10.0.1.10"), addr("10.0.2.10")], "ttl": 60, "ms": 2},
        {"host": ZONAL, "role": "endpointZonal", "outcome": "resolved", "addresses": [addr("10.0.1.10")], "ttl": 60, "ms": 2},
    ]
    tcp_ok = [{"ip": "10.0.1.10", "port": 443, "outcome": "connected", "ms": 1}, {"ip": "10.0.2.10", "port": 443, "outcome": "connected", "ms": 1}]
    tls_ok = {"sni": API, "ip": "10.0.1.10", "outcome": "ok", "version": "TLSv1_3", "cipher": "TLS13_AES_128_GCM_SHA256",
              "subject": "CN=*.execute-api.us-east-1.amazonaws.com", "sans": ["*.execute-api.us-east-1.amazonaws.com"],
              "notAfter": "2026-09-30T23:59:59Z", "ms": 6}
    invoke = {"url": f"https://{API}/prod/health", "hostHeader": API, "class": "Ok", "status": 200,
              "requestId": "6f1b2c3d-1234-4a5b-9c8d-0123456789ab", "apigwId": "AbCdEfGhIjKlMnO=", "bodyBytes": 15}
    timings = {"dnsMs": 3, "connectMs": 1, "tlsMs": 6, "ttfbMs": 12, "totalMs": 25}
    write("probe_report", "healthy.json", report(dns=healthy_dns, dnsComparison="same", tcp=tcp_ok, tls=tls_ok, invoke=invoke, timings=timings))

    denied = dict(invoke, **{"class": "AnonymousNotAuthorized", "status": 403, "errorType": "AccessDeniedException",
                            "message": ANON, "bodyBytes": 170})
    write("probe_report", "resource-policy-denied.json",
          report(dns=healthy_dns[:1], dnsComparison="notComparable", tcp=tcp_ok, tls=tls_ok, invoke=denied, timings=timings))

    timeout_tcp = [{"ip": "10.0.1.10", "port": 443, "outcome": "timeout", "ms": 5000, "error": "no answer within 5s"},
                   {"ip": "10.0.2.10", "port": 443, "outcome": "timeout", "ms": 5000, "error": "no answer within 5s"}]
    not_sent = {"url": f"https://{API}/prod/health", "hostHeader": API, "class": "ConnectionError", "bodyBytes": 0,
                "error": "not sent: no TCP connection to " + API + " (10.0.1.10:443 Timeout, 10.0.2.10:443 Timeout)"}
    write("probe_report", "security-group-blocked.json",
          report(dns=healthy_dns, dnsComparison="same", tcp=timeout_tcp, invoke=not_sent,
                 timings={"dnsMs": 3, "totalMs": 5004}))

    public = [{"host": API, "role": "api", "outcome": "resolved", "addresses": [addr("52.94.1.10", "public")], "ttl": 60,
               "cnames": ["d-abc123.execute-api.us-east-1.amazonaws.com."], "ms": 9}]
    write("probe_report", "private-dns-off-proxied-truncated.json",
          report(access={"mode": "endpointHost", "reason": "the URL as given (https://" + VPCE + "/prod/health), which amounts to EndpointHost access"},
                 resolver="10.0.0.2:53", dns=public, dnsComparison="notComparable",
                 tcp=[{"ip": "52.94.1.10", "port": 443, "outcome": "connected", "ms": 1}],
                 tls={"sni": VPCE, "ip": "52.94.1.10", "outcome": "nameMismatch", "error": "invalid peer certificate: NotValidForName", "ms": 4},
                 invoke={"url": "https://" + VPCE + "/prod/health", "hostHeader": VPCE, "apiIdHeader": "abcde12345",
                         "class": "Forbidden", "status": 403, "errorType": "ForbiddenException", "message": "Forbidden",
                         "bodySnippet": "<html>", "bodyBytes": 23, "bodyTruncated": True},
                 proxied=[{"host": API, "via": "http://proxy.corp.example:3128"}],
                 timings={"dnsMs": 9, "connectMs": 1, "tlsMs": 4, "totalMs": 20}, truncated=["invoke.bodySnippet", "errors"]))
    # The unit tests' report, and one for another check (wrong target).
    good = report(dns=[{"host": API, "role": "api", "outcome": "resolved", "addresses": [addr("10.0.1.10")], "ttl": 60, "ms": 3}],
                  dnsComparison="same", tcp=[{"ip": "10.0.1.10", "port": 443, "outcome": "connected", "ms": 1}],
                  timings={"dnsMs": 3, "connectMs": 1, "tlsMs": 5, "ttfbMs": 9, "totalMs": 20})
    write("probe_report", "unit-test-good.json", good + "\n")
    write("probe_report", "another-target.json", good.replace("abcde12345", "zzzzz99999"))
    write("probe_report", "ipv6-mapped.json", good.replace('"10.0.1.10"', '"::ffff:10.0.1.10"'))


# ------------------------------------------------------------ invoke_url --

def invoke_url_seeds():
    cases = {
        "vpce-host-no-header": f"https://{VPCE}/prod/health",
        "vpce-host-with-host-header": f"https://{VPCE}/prod/health\nHost: {API}",
        "vpce-host-with-api-id": f"https://{VPCE}/prod/health\nx-apigw-api-id: abcde12345",
        "zonal-vpce": f"https://{ZONAL}/prod/health\nHost: {API}",
        "private-dns": f"https://{API}/prod/health",
        "alias-with-query": f"https://{ALIAS}/prod/health?x=1",
        "custom-domain": "https://api.example.internal/v1",
        "ip-literal": "https://10.0.1.10/prod/health",
        "ipv6-literal": "https://[fd00::1]/prod/",
        "port": f"https://{VPCE}:8443/prod/\nHost: {API}:8443",
        "uppercase-scheme-and-host": f"HTTPS://{API.upper()}/prod/health",
        "http-refused": f"http://{API}/prod",
        "credentials-refused": "https://user:secret@host.example/prod",
        "fragment-refused": "https://host.example/prod#frag",
        "authorization-header-refused": f"https://{VPCE}/prod/health\nAuthorization: Bearer secret-token",
    }
    for name, text in cases.items():
        write("invoke_url", name, text)


# ------------------------------------------------------------ dns_answer --

def name(n):
    out = b""
    for label in n.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


QTYPE = {"A": 1, "CNAME": 5, "SOA": 6, "AAAA": 28, "OPT": 41, "TXT": 16}


def rr(owner, rtype, ttl, rdata, cls=1):
    return owner + struct.pack(">HHIH", QTYPE[rtype], cls, ttl, len(rdata)) + rdata


def a(ip):
    return bytes(int(x) for x in ip.split("."))


def aaaa(ip):
    import ipaddress
    return ipaddress.IPv6Address(ip).packed


def message(qname, qtype, answers=(), authorities=(), additionals=(), rcode=0, ident=0x1234):
    flags = 0x8180 | rcode  # response, recursion desired + available
    head = struct.pack(">HHHHHH", ident, flags, 1, len(answers), len(authorities), len(additionals))
    question = name(qname) + struct.pack(">HH", QTYPE[qtype], 1)
    return head + question + b"".join(answers) + b"".join(authorities) + b"".join(additionals)


PTR = b"\xc0\x0c"  # compression pointer to the question name


def dns_answer_seeds():
    write("dns_answer", "api-private-two-azs", message(API, "A", [rr(PTR, "A", 60, a("10.0.1.10")), rr(PTR, "A", 60, a("10.0.2.10"))]))
    write("dns_answer", "api-public-private-dns-off", message(API, "A", [rr(PTR, "A", 60, a("52.94.1.10")), rr(PTR, "A", 60, a("52.94.2.10"))]))
    vpce = name(VPCE)
    write("dns_answer", "api-cname-to-vpce", message(API, "A", [rr(PTR, "CNAME", 300, vpce), rr(vpce, "A", 60, a("10.0.1.10")), rr(vpce, "A", 30, a("10.0.2.10"))],
                                                     additionals=[rr(vpce, "AAAA", 60, aaaa("fd00:ec2::10"))]))
    soa = name("us-east-1.amazonaws.com") + name("ns-1.awsdns.com") + name("hostmaster.amazon.com") + struct.pack(">IIIII", 1, 7200, 900, 1209600, 60)
    write("dns_answer", "alias-nxdomain", message(ALIAS, "A", authorities=[rr(name("us-east-1.amazonaws.com"), "SOA", 60, soa)], rcode=3))
    write("dns_answer", "servfail", message(API, "A", rcode=2))
    write("dns_answer", "refused", message(API, "A", rcode=5))
    write("dns_answer", "many-addresses", message(VPCE, "A", [rr(PTR, "A", 60 - i, a(f"10.0.{i}.10")) for i in range(20)]))
    write("dns_answer", "mixed-classes", message(API, "AAAA", [rr(PTR, "AAAA", 60, aaaa("::ffff:10.0.0.1")), rr(PTR, "AAAA", 60, aaaa("fe80::1")),
                                                              rr(PTR, "A", 60, a("169.254.169.253")), rr(PTR, "A", 60, a("100.64.3.4")),
                                                              rr(PTR, "TXT", 60, b"\x05hello")]))
    opt = b"\0" + struct.pack(">HHIH", QTYPE["OPT"], 1232, 0, 0)
    write("dns_answer", "edns-opt", message(API, "A", [rr(PTR, "A", 60, a("10.0.1.10"))], additionals=[opt]))


if __name__ == "__main__":
    policy_seeds()
    invoke_answer_seeds()
    probe_report_seeds()
    invoke_url_seeds()
    dns_answer_seeds()
    for d in sorted(CORPUS.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")
