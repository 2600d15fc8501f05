"""SASL/OAUTHBEARER with real clients.

Unsecured JWS tokens (Kafka's development validator): librdkafka building its own
(`enable.sasl.oauthbearer.unsecure.jwt`), kafka-python with a token provider, the Java client's
unsecured login, ferrolog's tools, and the broker's own login between brokers; the token's `sub`
is the principal the ACLs see. Signed JWTs against a JWKS file (Kafka's
OAuthBearerValidatorCallbackHandler): RS256 and ES256 tokens from librdkafka's `oauth_cb`, the
Java client reading its token from a file; wrong audience, issuer, key, algorithm `none` and
expired tokens are refused with Kafka's `invalid_token`; a short-lived token is renewed by
re-authentication (KIP-368) while a producer keeps writing."""

import base64
import http.server
import json
import logging
import os
import ssl
import subprocess
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from kafka import KafkaConsumer, KafkaProducer
from kafka.net.sasl.oauth import AbstractTokenProvider

from conftest import ROOT, Ferrolog
from test_acls import java_tool
from test_sasl import KAFKA_LIB

MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
VALIDATOR = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
ISSUER = "https://idp.example"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims, alg="none", key=None, kid=None):
    header = {"alg": alg, "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    data = signing_input.encode()
    if alg == "none":
        sig = b""
    elif alg == "RS256":
        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input}.{b64(sig)}"


def claims(sub="alice", lifetime=600, **extra):
    now = int(time.time())
    return {"sub": sub, "iat": now, "exp": now + lifetime, **extra}


def unsecured_broker(extra=()):
    jaas = f'{MODULE} required unsecuredLoginStringClaim_sub="admin";'
    return Ferrolog([
        "listeners=SASL_PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
        "sasl.enabled.mechanisms=OAUTHBEARER",
        "sasl.mechanism.inter.broker.protocol=OAUTHBEARER",
        f"listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config={jaas}",
        *extra,
    ])


def oauth_conf(b, **extra):
    return {"bootstrap.servers": b.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "OAUTHBEARER", **extra}


def unsecured_conf(b, principal, **extra):
    return oauth_conf(b, **{"enable.sasl.oauthbearer.unsecure.jwt": True,
                            "sasl.oauthbearer.config": f"principal={principal}", **extra})


def delivery_errors(c, topic, n=10):
    errors = []
    p = Producer(c)
    for i in range(n):
        p.produce(topic, value=b"%d" % i, on_delivery=lambda err, _m: err and errors.append(err))
    assert p.flush(30) == 0
    return errors


def consume(c, topic, n, group):
    consumer = Consumer({**c, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while len(got) < n and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value())
    consumer.close()
    return got


def auth_error(c):
    """The SASL error a client with config `c` gets from the broker, if any."""
    errors = []
    p = Producer({**c, "error_cb": errors.append})
    deadline = time.time() + 15
    while not errors and time.time() < deadline:
        p.poll(0.2)
    return " ".join(str(e) for e in errors)


@pytest.fixture(scope="module")
def unsecured():
    b = unsecured_broker([
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:admin",
    ])
    yield b
    b.stop()


def test_unsecured_tokens_from_librdkafka_kafka_python_java_and_ferrologs_tools(unsecured, tmp_path):
    b = unsecured
    admin = tmp_path / "admin.properties"
    admin.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\n"
                     f'sasl.jaas.config={MODULE} required unsecuredLoginStringClaim_sub="admin";\n')
    # ferrolog's own tool authenticates with an unsecured token (sub=admin, a super user)
    for args in (["--operation", "All", "--topic", "oauth-", "--resource-pattern-type", "prefixed"],
                 ["--operation", "Read", "--group", "oauth-", "--resource-pattern-type", "prefixed"]):
        out = b.cli("--command-config", str(admin), "acls", "--bootstrap-server", b.bootstrap, "add",
                    "--allow-principal", "User:alice", *args)
        assert out.returncode == 0, out.stderr
    admin_client = AdminClient(unsecured_conf(b, "admin"))
    admin_client.create_topics([NewTopic("oauth-t", 1, 1)])["oauth-t"].result(30)
    # librdkafka: the token's principal is the one the ACLs know
    alice = unsecured_conf(b, "alice")
    assert delivery_errors(alice, "oauth-t") == []
    assert len(consume(alice, "oauth-t", 10, "oauth-g")) == 10
    errors = delivery_errors({**unsecured_conf(b, "mallory"), "message.timeout.ms": 5000}, "oauth-t", 1)
    assert errors and errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, errors

    # kafka-python with a token provider
    class Provider(AbstractTokenProvider):
        def token(self):
            return jwt(claims("alice"))

    kp = dict(bootstrap_servers=b.bootstrap, security_protocol="SASL_PLAINTEXT", sasl_mechanism="OAUTHBEARER",
              sasl_oauth_token_provider=Provider())
    p = KafkaProducer(**kp)
    for i in range(5):
        p.send("oauth-t", b"kp%d" % i).get(timeout=30)
    p.close()
    c = KafkaConsumer("oauth-t", group_id="oauth-kp", auto_offset_reset="earliest", consumer_timeout_ms=10000, **kp)
    assert len([m for m in c]) == 15
    c.close()

    # the Java client's unsecured login (Kafka's console producer and consumer)
    java = tmp_path / "alice.properties"
    java.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\n"
                    f'sasl.jaas.config={MODULE} required unsecuredLoginStringClaim_sub="alice";\n')
    out = subprocess.run(["java", "-cp", os.path.join(KAFKA_LIB, "*"),
                          "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", b.bootstrap,
                          "--producer.config", str(java), "--topic", "oauth-t"],
                         input="".join(f"j{i}\n" for i in range(5)), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    out = java_tool(tmp_path, "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", b.bootstrap,
                    "--consumer.config", str(java), "--topic", "oauth-t", "--group", "oauth-java",
                    "--from-beginning", "--max-messages", "20", "--timeout-ms", "30000")
    assert out.returncode == 0 and len(out.stdout.split()) == 20, out.stdout + out.stderr[-3000:]


def test_transactions_use_the_brokers_own_oauth_login(unsecured):
    """Transaction markers go broker to broker: the broker logs in with its unsecured token
    (sub=admin, a super user)."""
    c = unsecured_conf(unsecured, "admin")
    t = Producer({**c, "transactional.id": "oauth-tx"})
    t.init_transactions(30)
    t.begin_transaction()
    t.produce("oauth-txn", value=b"v")
    t.commit_transaction(30)
    got = consume({**c, "isolation.level": "read_committed"}, "oauth-txn", 1, "oauth-txn-g")
    assert got == [b"v"]


def test_expired_and_malformed_unsecured_tokens_are_refused(unsecured):
    for token in [jwt(claims(lifetime=-60)), jwt({"sub": "alice"}), jwt(claims(sub=""))]:
        why = auth_error(oauth_conf(unsecured, oauth_cb=lambda _cfg, t=token: (t, time.time() + 60, "alice")))
        assert "invalid_token" in why, why


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    """Signing keys and the JWKS file holding their public halves (the second RSA key is not
    in it)."""
    d = tmp_path_factory.mktemp("idp")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    n = rsa_key.public_key().public_numbers()
    point = ec_key.public_key().public_numbers()
    int_bytes = lambda i, size=None: i.to_bytes(size or (i.bit_length() + 7) // 8, "big")  # noqa: E731
    jwks = {"keys": [
        {"kty": "RSA", "kid": "rsa1", "use": "sig", "alg": "RS256", "n": b64(int_bytes(n.n)), "e": b64(int_bytes(n.e))},
        {"kty": "EC", "kid": "ec1", "crv": "P-256", "x": b64(int_bytes(point.x, 32)), "y": b64(int_bytes(point.y, 32))},
    ]}
    path = d / "jwks.json"
    path.write_text(json.dumps(jwks))
    return {"dir": d, "jwks": path, "rsa": rsa_key, "ec": ec_key, "stranger": stranger}


def signed(idp, alg="RS256", **claim_overrides):
    key, kid = (idp["rsa"], "rsa1") if alg == "RS256" else (idp["ec"], "ec1")
    c = claims(**{"aud": "kafka", "iss": ISSUER, **claim_overrides})
    return jwt(c, alg, key, kid)


@pytest.fixture(scope="module")
def jwks_broker(idp):
    # the broker itself presents a signed token from a file, as Kafka's login handler reads one
    broker_token = idp["dir"] / "broker.jwt"
    broker_token.write_text(signed(idp, sub="broker", lifetime=3600))
    b = Ferrolog([
        "listeners=SASL_PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
        "sasl.enabled.mechanisms=OAUTHBEARER",
        "sasl.mechanism.inter.broker.protocol=OAUTHBEARER",
        f"listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config={MODULE} required;",
        f"listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class={VALIDATOR}",
        "listener.name.sasl_plaintext.oauthbearer.sasl.login.callback.handler.class="
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
        # what Apache Kafka 4.1 needs to check signatures at all (its default validator checks
        # none); ferrolog checks them either way
        "sasl.oauthbearer.jwt.validator.class=org.apache.kafka.common.security.oauthbearer.BrokerJwtValidator",
        f"sasl.oauthbearer.jwks.endpoint.url=file://{idp['jwks']}",
        f"sasl.oauthbearer.token.endpoint.url=file://{broker_token}",
        "sasl.oauthbearer.expected.audience=kafka,kafka-admin",
        f"sasl.oauthbearer.expected.issuer={ISSUER}",
        "connections.max.reauth.ms=600000",
    ])
    yield b
    b.stop()


def test_signed_tokens_are_checked_against_the_jwks(jwks_broker, idp):
    b = jwks_broker
    for alg in ["RS256", "ES256"]:
        c = oauth_conf(b, oauth_cb=lambda _cfg, a=alg: (signed(idp, a), time.time() + 600, "alice"))
        assert delivery_errors(c, f"jwks-{alg}") == []
        assert len(consume(c, f"jwks-{alg}", 10, f"jwks-{alg}")) == 10
    c = claims(aud="kafka", iss=ISSUER)
    refused = {
        "wrong audience": signed(idp, aud="web"),
        "wrong issuer": signed(idp, iss="https://evil.example"),
        "expired": signed(idp, lifetime=-120),
        "no subject": signed(idp, sub=""),
        "alg none": jwt(c),
        "a key not in the JWKS": jwt(c, "RS256", idp["stranger"], "rsa1"),
        "unsecured style": jwt({"sub": "alice", "exp": c["exp"]}),
    }
    for what, token in refused.items():
        why = auth_error(oauth_conf(b, oauth_cb=lambda _cfg, t=token: (t, time.time() + 60, "alice")))
        assert "invalid_token" in why, f"{what}: {why}"
    with open(os.path.join(b.dir, "server.log"), errors="replace") as f:
        log = f.read()
    assert "OAUTHBEARER token refused: Audience (aud) claim" in log


def test_transactions_with_the_brokers_token_from_a_file(jwks_broker, idp):
    c = oauth_conf(jwks_broker, oauth_cb=lambda _cfg: (signed(idp), time.time() + 600, "alice"))
    t = Producer({**c, "transactional.id": "jwks-tx"})
    t.init_transactions(30)
    t.begin_transaction()
    t.produce("jwks-txn", value=b"v")
    t.commit_transaction(30)


def test_java_client_reads_a_signed_token_from_a_file(jwks_broker, idp, tmp_path):
    token = tmp_path / "alice.jwt"
    token.write_text(signed(idp, aud="kafka-admin"))
    props = tmp_path / "java.properties"
    props.write_text("\n".join([
        "security.protocol=SASL_PLAINTEXT", "sasl.mechanism=OAUTHBEARER",
        f"sasl.jaas.config={MODULE} required;",
        "sasl.login.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
        f"sasl.oauthbearer.token.endpoint.url=file://{token}", ""]))
    allow = [f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=file://{token}",
             f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.files={token}"]
    lib = os.path.join(KAFKA_LIB, "*")
    out = subprocess.run(["java", *allow, "-cp", lib, "org.apache.kafka.tools.ConsoleProducer",
                          "--bootstrap-server", jwks_broker.bootstrap, "--producer.config", str(props),
                          "--topic", "jwks-java"], input="a\nb\nc\n", capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    out = subprocess.run(["java", *allow, "-cp", lib, "org.apache.kafka.tools.consumer.ConsoleConsumer",
                          "--bootstrap-server", jwks_broker.bootstrap, "--consumer.config", str(props),
                          "--topic", "jwks-java", "--from-beginning", "--max-messages", "3", "--timeout-ms", "30000"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["a", "b", "c"], out.stdout + out.stderr[-3000:]


def test_short_lived_tokens_are_renewed_by_reauthentication(jwks_broker, idp):
    """The session lives as long as the token (KIP-368): librdkafka fetches a new token and
    re-authenticates before the 6 s token ends, and a producer writing for 15 s loses nothing."""
    issued = []

    def cb(_cfg):
        issued.append(time.time())
        return signed(idp, lifetime=6), time.time() + 6, "alice"

    class Lines(logging.Handler):
        def __init__(self):
            super().__init__()
            self.lines = []

        def emit(self, record):
            self.lines.append(record.getMessage())

    lines = Lines()
    logger = logging.getLogger("oauth-reauth")
    logger.addHandler(lines)
    logger.setLevel(logging.DEBUG)
    errors = []
    p = Producer(oauth_conf(jwks_broker, oauth_cb=cb, debug="security", logger=logger, **{"linger.ms": 5}))
    acked = [0]
    deadline = time.time() + 15
    i = 0
    while time.time() < deadline:
        p.produce("jwks-reauth", value=b"%d" % i,
                  on_delivery=lambda err, _m: errors.append(err) if err else acked.__setitem__(0, acked[0] + 1))
        p.poll(0.05)
        i += 1
    assert p.flush(30) == 0
    assert errors == [] and acked[0] == i
    assert len(issued) >= 3, f"the token was fetched {len(issued)} times in 15 s"
    # the broker gave each session the token's remaining life (not connections.max.reauth.ms, 10
    # minutes), and the connection re-authenticated instead of being dropped
    lifetimes = [int(line.split("Received session lifetime ")[1].split()[0])
                 for line in lines.lines if "Received session lifetime" in line]
    assert lifetimes and max(lifetimes) <= 6000, lifetimes
    assert sum("Auth in state REAUTH" in line for line in lines.lines) >= 2, lines.lines[-20:]


def jwk_of(key, kid):
    n = key.public_key().public_numbers()
    int_bytes = lambda i: i.to_bytes((i.bit_length() + 7) // 8, "big")  # noqa: E731
    return {"kty": "RSA", "kid": kid, "use": "sig", "n": b64(int_bytes(n.n)), "e": b64(int_bytes(n.e))}


def test_jwks_from_an_https_endpoint_follows_key_rotation(tmp_path):
    """The JWKS served over HTTPS (trusted through the JAAS entry's ssl.truststore.* options, as
    Kafka's): a token signed by a key the set does not hold yet makes the broker fetch it again,
    so a rotated key is accepted within seconds, without waiting for the hourly refresh."""
    certs = tmp_path / "certs"
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "test-certs.sh"), str(certs)], check=True,
                   capture_output=True)
    old, new = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    served = {"jwks": {"keys": [jwk_of(old, "old")]}, "gets": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            served["gets"] += 1
            body = json.dumps(served["jwks"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(f"{certs}/server-bundle.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://localhost:{server.server_address[1]}/jwks"
    base = [
        "listeners=SASL_PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
        "sasl.enabled.mechanisms=OAUTHBEARER",
        "sasl.mechanism.inter.broker.protocol=OAUTHBEARER",
        f"listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class={VALIDATOR}",
        f"sasl.oauthbearer.jwks.endpoint.url={url}",
    ]
    try:
        # without a trust store for it, the endpoint's certificate is not trusted: no start
        with pytest.raises(RuntimeError) as e:
            Ferrolog([*base, f"listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config={MODULE} required "
                              'unsecuredLoginStringClaim_sub="broker";'])
        assert "sasl.oauthbearer.jwks.endpoint.url" in str(e.value), str(e.value)[:2000]
        token_file = tmp_path / "broker.jwt"
        token_file.write_text(jwt(claims("broker", 3600), "RS256", old, "old"))
        b = Ferrolog([*base,
                      f"listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config={MODULE} required "
                      f'ssl.truststore.location="{certs}/truststore.pem" ssl.truststore.type="PEM";',
                      f"sasl.oauthbearer.token.endpoint.url=file://{token_file}"])
        try:
            def conf(key, kid):
                return oauth_conf(b, oauth_cb=lambda _cfg: (jwt(claims(), "RS256", key, kid), time.time() + 600,
                                                            "alice"))
            assert delivery_errors(conf(old, "old"), "https-jwks") == []
            gets = served["gets"]
            served["jwks"] = {"keys": [jwk_of(old, "old"), jwk_of(new, "new")]}
            deadline = time.time() + 40
            while True:
                if auth_error(conf(new, "new")) == "":
                    break
                assert time.time() < deadline, "the rotated key was never fetched"
            assert served["gets"] > gets
        finally:
            b.stop()
    finally:
        server.shutdown()
