"""A single-node KRaft broker with TLS, SASL and ACLs, for tests/test_security.py.

Certificates are made with the ``openssl`` command line in the broker's
work directory (``Pki``): a test CA, a second CA nobody trusts (the
"wrong CA" case), a broker certificate for 127.0.0.1/localhost, one for
another host name and one whose validity ended in 2021 (``openssl ca``
with ``-startdate``/``-enddate``: ``openssl x509 -days`` cannot go
back in time, and OpenSSL 3.0 has no ``-not_before``).

The broker (``secure_broker``) has, besides the PLAINTEXT and CONTROLLER
listeners the harness needs:

- ``SSL``: TLS with the good certificate;
- ``SASL_SSL``: TLS plus SASL (SCRAM-SHA-512 for the users written at
  storage format time, PLAIN for the users in the listener's JAAS config);
- ``BADHOST``: TLS with a certificate for ``wrong.example`` only;
- ``EXPIRED``: TLS with the expired certificate.

``StandardAuthorizer`` guards everything; the PLAINTEXT listener's
ANONYMOUS principal (the harness's readiness check, the admin client of
the tests, the controller traffic) is a super user, and so is every TLS
client without SASL. ``alice`` (SCRAM) and ``carol`` (PLAIN) may use
every topic and group; ``dave`` (PLAIN) may only write to one topic
(``DAVE_TOPIC``) until a test grants him more.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

# Where confluent-kafka defines them (its admin package re-exports them
# without declaring so, which mypy --strict refuses).
from confluent_kafka.admin._acl import (
    AclBinding,
    AclOperation,
    AclPermissionType,
)
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType
from confluent_kafka.cimpl import NewTopic

from tests.kafkabroker import KafkaBroker, free_port

SCRAM_USERS = {
    "alice": "alice-secret",
}
PLAIN_USERS = {
    "carol": "carol-secret",
    "dave": "dave-secret",
    "erin": "erin-secret",  # no ACL at all
}
#: the one topic dave may write to (so that his idempotent producer's
#: InitProducerId is allowed: KIP-679 asks for WRITE on some topic)
DAVE_TOPIC = "dave-own-topic"
LISTENERS = ("SSL", "SASL_SSL", "BADHOST", "EXPIRED")


def _openssl(*args: str, cwd: Path) -> None:
    res = subprocess.run(
        ["openssl", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if res.returncode != 0:
        raise RuntimeError(
            f"openssl {' '.join(args)} failed ({res.returncode}):\n"
            f"{res.stdout}{res.stderr}"
        )


_CA_CNF = """\
[ ca ]
default_ca = ca_default
[ ca_default ]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}/newcerts
serial = {dir}/serial
default_md = sha256
policy = policy_any
copy_extensions = copy
unique_subject = no
email_in_dn = no
[ policy_any ]
commonName = supplied
[ server_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
"""


@dataclass(frozen=True)
class Pki:
    """Paths of the generated PEM files."""

    dir: Path
    ca: Path  #: the CA the clients trust
    other_ca: Path  #: a CA that signed nothing the broker has
    good: Path  #: key + chain for CN=127.0.0.1 (SAN IP/DNS 127.0.0.1, localhost)
    wrong_host: Path  #: key + chain for wrong.example only
    expired: Path  #: key + chain for 127.0.0.1, valid 2020-01-01..2021-01-01


def _make_ca(d: Path, name: str, cn: str) -> tuple[Path, Path]:
    key, cert = d / f"{name}.key", d / f"{name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
        "-out", str(cert), "-days", "30", "-subj", f"/CN={cn}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )
    return key, cert


def _make_server_cert(
    d: Path,
    ca_key: Path,
    ca_cert: Path,
    name: str,
    cn: str,
    san: str,
    validity: tuple[str, ...],
) -> Path:
    key, csr, cert = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem"
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
        "-out", str(csr), "-subj", f"/CN={cn}",
        "-addext", f"subjectAltName={san}",
        cwd=d,
    )
    _openssl(
        "ca", "-batch", "-notext", "-config", str(d / "ca.cnf"),
        "-cert", str(ca_cert), "-keyfile", str(ca_key),
        "-extensions", "server_ext", "-in", str(csr), "-out", str(cert),
        *validity,
        cwd=d,
    )
    # Kafka's PEM key store: an unencrypted PKCS#8 key, then the chain.
    bundle = d / f"{name}-keystore.pem"
    bundle.write_text(
        key.read_text() + cert.read_text() + ca_cert.read_text()
    )
    return bundle


def make_pki(d: Path) -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    (d / "newcerts").mkdir(exist_ok=True)
    (d / "index.txt").write_text("")
    (d / "serial").write_text("1000\n")
    (d / "ca.cnf").write_text(_CA_CNF.format(dir=d))
    ca_key, ca = _make_ca(d, "ca", "aiokafka_c test CA")
    _, other_ca = _make_ca(d, "other-ca", "some other CA")
    san = "IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost"
    good = _make_server_cert(
        d, ca_key, ca, "broker", "127.0.0.1", san, ("-days", "30")
    )
    wrong_host = _make_server_cert(
        d, ca_key, ca, "wrong-host", "wrong.example", "DNS:wrong.example",
        ("-days", "30"),
    )
    expired = _make_server_cert(
        d, ca_key, ca, "expired", "127.0.0.1", san,
        ("-startdate", "20200101000000Z", "-enddate", "20210101000000Z"),
    )
    return Pki(d, ca, other_ca, good, wrong_host, expired)


class SecureBroker:
    """The broker, its PKI and the address of each listener."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.pki = make_pki(workdir / "pki")
        names = ("PLAINTEXT", "CONTROLLER", *LISTENERS)
        ports: set[int] = set()
        while len(ports) < len(names):
            ports.add(free_port())
        self.ports = dict(zip(names, sorted(ports)))
        self.broker = KafkaBroker(
            workdir / "broker",
            self.ports["PLAINTEXT"],
            controller_port=self.ports["CONTROLLER"],
            config=self._config(),
            format_args=tuple(
                arg
                for user, password in SCRAM_USERS.items()
                for arg in (
                    "--add-scram",
                    f"SCRAM-SHA-512=[name={user},password={password}]",
                )
            ),
        )

    def _config(self) -> dict[str, str | int | bool]:
        pem = "PEM"
        jaas_plain = (
            "org.apache.kafka.common.security.plain.PlainLoginModule "
            "required "
            + " ".join(f'user_{u}="{p}"' for u, p in PLAIN_USERS.items())
            + ";"
        )
        return {
            "ssl.keystore.type": pem,
            "ssl.keystore.location": str(self.pki.good),
            "listener.name.badhost.ssl.keystore.type": pem,
            "listener.name.badhost.ssl.keystore.location": str(
                self.pki.wrong_host
            ),
            "listener.name.expired.ssl.keystore.type": pem,
            "listener.name.expired.ssl.keystore.location": str(
                self.pki.expired
            ),
            "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule "
                "required;"
            ),
            "listener.name.sasl_ssl.plain.sasl.jaas.config": jaas_plain,
            "authorizer.class.name": (
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
            ),
            "super.users": "User:ANONYMOUS",
            "allow.everyone.if.no.acl.found": False,
            "listeners": ",".join(
                f"{n}://127.0.0.1:{p}" for n, p in self.ports.items()
            ),
            "advertised.listeners": ",".join(
                f"{n}://127.0.0.1:{p}"
                for n, p in self.ports.items()
                if n != "CONTROLLER"
            ),
            "listener.security.protocol.map": (
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,"
                "SASL_SSL:SASL_SSL,BADHOST:SSL,EXPIRED:SSL"
            ),
        }

    def start(self) -> None:
        self.broker.start(timeout=90)
        self._grant_base_acls()
        admin = self.admin()
        futures = admin.create_topics(
            [NewTopic(DAVE_TOPIC, num_partitions=1, replication_factor=1)],
            operation_timeout=30,
            request_timeout=30,
        )
        futures[DAVE_TOPIC].result(timeout=60)

    def stop(self) -> None:
        self.broker.stop()

    # -- addresses ---------------------------------------------------------

    @property
    def plaintext(self) -> str:
        return self.broker.bootstrap

    def address(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"

    # -- ACLs (through PLAINTEXT, as the ANONYMOUS super user) --------------

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.plaintext})

    def create_acls(self, bindings: list[AclBinding]) -> None:
        admin = self.admin()
        for fut in admin.create_acls(bindings, request_timeout=30).values():
            fut.result(timeout=30)

    def _grant_base_acls(self) -> None:
        bindings = []
        for user in ("alice", "carol"):
            for rtype in (ResourceType.TOPIC, ResourceType.GROUP):
                bindings.append(acl(user, rtype, "*", AclOperation.ALL))
        bindings.append(acl("dave", ResourceType.TOPIC, DAVE_TOPIC,
                            AclOperation.WRITE))
        self.create_acls(bindings)


def acl(
    user: str,
    rtype: ResourceType,
    name: str,
    op: AclOperation,
) -> AclBinding:
    """ALLOW ``op`` on the literal resource ``name`` to ``User:user``."""
    return AclBinding(
        rtype,
        name,
        ResourcePatternType.LITERAL,
        f"User:{user}",
        "*",
        op,
        AclPermissionType.ALLOW,
    )
