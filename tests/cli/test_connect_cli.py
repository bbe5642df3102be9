"""`vpndoctor connect` end to end on loopback against the scripted EAP responder: exit codes, each failure at
its stage with its Windows error, JSON that matches schema/connect.json, the --keys-out file, the ways a
password may (and may not) be given - and no password, NT hash or MSK in any output."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.ike.eap_responder import (
    DNS4,
    DNS6,
    DNS_SUFFIX,
    PASSWORD,
    USER,
    VIRTUAL_IP4,
    ConnectResponder,
)
from tests.ike.responder import UdpResponderThread, cert, make_cert
from vpndoctor.capture.decrypt import parse_keys
from vpndoctor.eap import mschapv2 as m

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schema" / "connect.json").read_text())
CLI = [sys.executable, "-m", "vpndoctor", "connect"]
ENV_VAR = "VPNDOCTOR_TEST_PASSWORD"


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "server.pem"
    path.write_bytes(x509.load_der_x509_certificate(cert()[1]).public_bytes(Encoding.PEM))
    return str(path)


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("other") / "other.pem"
    path.write_bytes(x509.load_der_x509_certificate(make_cert()[1]).public_bytes(Encoding.PEM))
    return str(path)


class Server(UdpResponderThread):
    def __init__(self, behaviour: str = "normal", **kw: Any) -> None:
        super().__init__("normal")
        self.responder = ConnectResponder(behaviour=behaviour, **kw)

    def __enter__(self) -> Server:
        super().__enter__()
        return self

    @property
    def connect(self) -> ConnectResponder:
        assert isinstance(self.responder, ConnectResponder)
        return self.responder


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    with Server(getattr(request, "param", "normal")) as s:
        yield s


def run(
    server: Server | None,
    *args: str,
    password: str | None = PASSWORD,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> subprocess.CompletedProcess[str]:
    where = ["--port", str(server.port), "--natt-port", str(server.natt_port)] if server else []
    if port is not None:
        where = ["--port", str(port), "--natt-port", str(port)]
    environ = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    environ["COLUMNS"] = "200"  # the terminal renderer wraps at the width it is given
    if password is not None:
        environ[ENV_VAR] = password
        args = ("--password-env", ENV_VAR, *args)
    environ.update(env or {})
    return subprocess.run(
        [*CLI, "127.0.0.1", "--user", USER, *where, *args],
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
        env=environ,
    )


def report(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in proc.stderr, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    jsonschema.validate(data, SCHEMA)
    return data


def finding(data: dict[str, Any], fid: str) -> dict[str, Any]:
    return next(f for f in data["findings"] if f["id"] == fid)


def test_connected_exit_0_with_address_dns_and_child_sa(server: Server, ca_file: str, tmp_path: Path) -> None:
    keys = tmp_path / "keys.csv"
    proc = run(server, "--ca", ca_file, "--json", "--keys-out", str(keys))
    data = report(proc)
    assert proc.returncode == 0, data
    assert (data["stage_reached"], data["connected"], data["cause"], data["windows_error"]) == (
        "CHILD_SA",
        True,
        None,
        None,
    )
    assert [s["result"] for s in data["stages"]] == ["ok"] * 4
    assert data["auth_result"] == "success" and data["eap_method"] == "MSCHAPV2"
    assert data["eap_requests"] == ["IDENTITY", "MSCHAPV2", "MSCHAPV2"]
    assert data["ike_sa_established"] is True and data["responder_auth_verified"] is True
    child = data["child_sa"]
    assert isinstance(child, dict)
    assert child["esp_proposal"] == "aes256gcm16"
    assert child["ts_i"] == [f"{VIRTUAL_IP4}/32", "2001:db8:99::2/128"] and child["ts_r"] == [
        "0.0.0.0/0",
        "::/0",
    ]
    assert len(child["spi_i"]) == 8 and len(child["spi_r"]) == 8
    assert data["config"] == {
        "ipv4": [VIRTUAL_IP4],
        "ipv6": ["2001:db8:99::2/128"],
        "dns": [DNS4, DNS6],
        "dns_suffix": [DNS_SUFFIX],
        "subnets": [],
        "other": [],
    }
    assert data["esp_proposals_offered"] == [
        "aes256-sha1",
        "aes128-sha1",
        "3des-sha1",
        "des-sha1",
        "null-sha1",
        "aes256gcm16",
    ]
    assert {f["id"]: f["status"] for f in data["findings"]} == {
        "auth.server": "pass",
        "auth.eap": "pass",
        "auth.ike-sa": "pass",
        "child_sa.established": "pass",
        "child_sa.proposal": "pass",
        "child_sa.config": "pass",
    }
    assert data["round_trips"] == 7 and data["left_sa_on_server"] is False
    assert server.connect.deleted
    # --keys-out: the IKE SA keys only, for `vpndoctor capture --keys`, readable by the owner alone
    assert data["keys_out"] == str(keys)
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    table = parse_keys(keys.read_text())
    assert table.has_sa(bytes.fromhex(str(data["spi_i"])), bytes.fromhex(str(data["spi_r"])))


def test_terminal_output(server: Server, ca_file: str) -> None:
    proc = run(server, "--ca", ca_file)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "connected (CHILD_SA established)" in out and "INFORMATIONAL request 6 [ D ]" in out
    assert VIRTUAL_IP4 in out and DNS_SUFFIX in out and "aes256gcm16" in out


@pytest.mark.parametrize(
    ("behaviour", "stage", "code", "fid"),
    [
        ("wrong-password", "EAP", 691, "auth.eap"),
        ("peap-only", "EAP", 812, "auth.eap"),
        ("auth-failed-final", "EAP", 13801, "auth.ike-sa"),
        ("bad-responder-auth", "EAP", 13801, "auth.ike-sa"),
        ("bad-server-auth", "IKE_AUTH", 13801, "auth.server"),
        ("no-eap", "IKE_AUTH", 13801, "auth.eap"),
        ("child-no-proposal", "CHILD_SA", 13868, "child_sa.established"),
        ("ts-unacceptable", "CHILD_SA", 13868, "child_sa.established"),
        ("single-pair-required", "CHILD_SA", 13868, "child_sa.established"),
        ("internal-address-failure", "CHILD_SA", 720, "child_sa.established"),
    ],
)
def test_each_failure_at_its_stage_with_its_windows_error(
    behaviour: str, stage: str, code: int, fid: str, ca_file: str
) -> None:
    with Server(behaviour) as server:
        proc = run(server, "--ca", ca_file, "--json")
    data = report(proc)
    assert proc.returncode == 1, data
    assert data["stage_reached"] == stage and data["connected"] is False
    error = data["windows_error"]
    assert isinstance(error, dict) and error["code"] == code, error
    assert error["why"]
    assert finding(data, fid)["status"] == "fail"
    assert code in finding(data, fid)["error_codes"]
    assert data["left_sa_on_server"] is False


def test_internal_address_failure_is_720_from_the_catalogue(ca_file: str) -> None:
    with Server("internal-address-failure") as server:
        data = report(run(server, "--ca", ca_file, "--json"))
    error = data["windows_error"]
    assert isinstance(error, dict)
    assert error["name"] == "ERROR_PPP_NO_PROTOCOLS_CONFIGURED" and error["meaning"]
    assert "INTERNAL_ADDRESS_FAILURE" in error["why"] and data["ike_sa_established"] is True


def test_an_untrusted_server_hears_nothing_of_the_user(other_ca: str) -> None:
    with Server() as server:
        proc = run(server, "--ca", other_ca, "--json")
        data = report(proc)
        assert proc.returncode == 1
        assert data["stage_reached"] == "IKE_AUTH" and data["cause"] == "server-untrusted"
        assert data["windows_error"]["code"] == 0x800B0109
        assert server.connect.eap is not None and server.connect.eap.log == []  # not even the identity
        assert not server.connect.half_open


def test_silence_in_the_middle_of_eap_is_809_at_eap(ca_file: str) -> None:
    with Server("eap-silent") as server:
        proc = run(server, "--ca", ca_file, "--json", "--timeout-s", "3")
    data = report(proc)
    assert proc.returncode == 1
    assert (data["stage_reached"], data["cause"], data["timeout_exchange"]) == (
        "EAP",
        "no-answer",
        "IKE_AUTH",
    )
    assert data["windows_error"]["code"] == 809
    assert finding(data, "auth.eap")["status"] == "fail" and "RADIUS" in str(
        finding(data, "auth.eap")["remedy"]
    )


def test_no_answer_at_all_is_exit_3(ca_file: str) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run(None, "--ca", ca_file, "--json", "--timeout-s", "1", port=port)
    data = report(proc)
    assert proc.returncode == 3
    assert (data["stage_reached"], data["cause"]) == ("IKE_SA_INIT", "no-answer")
    assert data["windows_error"]["code"] == 809


def test_no_password_and_no_tty_is_a_usage_error(ca_file: str) -> None:
    proc = run(None, "--ca", ca_file, password=None, port=9)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "--password-env" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--password-env", "NO_SUCH_VARIABLE_HERE"], "no such environment variable"),
        (["--eap", "peap"], "one of mschapv2, tls, peap-mschapv2, peap-tls"),
        (["--esp-proposal", "aes256-prfsha256"], "unknown algorithm 'prfsha256'"),
        (["--esp-proposal", "aes256gcm16-sha1"], "AEAD"),
        (["--keys-out", "/nonexistent/dir/keys"], "--keys-out"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], message: str) -> None:
    proc = run(None, *args, port=9)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert PASSWORD not in proc.stderr + proc.stdout


def test_password_file_modes(server: Server, ca_file: str, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    for mode, code, warned in ((0o644, 2, False), (0o640, 0, True), (0o600, 0, False)):
        secret.chmod(mode)
        proc = run(server, "--ca", ca_file, "--json", "--password-file", str(secret), password=None)
        assert proc.returncode == code, (mode, proc.stderr)
        assert ("group can read it" in proc.stderr) is warned
        assert PASSWORD not in proc.stderr + proc.stdout
    secret.write_text("")
    proc = run(server, "--ca", ca_file, "--password-file", str(secret), password=None)
    assert proc.returncode == 2 and "empty" in proc.stderr
    proc = run(server, "--ca", ca_file, "--password-file", str(secret))  # and --password-env
    assert proc.returncode == 2 and "not both" in proc.stderr


def test_no_secret_in_any_output(ca_file: str, tmp_path: Path) -> None:
    """The password, its NT hash and the MSK appear in no output: terminal, --json, errors - nor in the key
    file, which holds the IKE SA keys only."""
    keys = tmp_path / "keys"
    outputs: list[str] = []
    msks: list[bytes] = []
    for behaviour, extra in (
        ("normal", ["--json", "--keys-out", str(keys)]),
        ("normal", []),
        ("wrong-password", []),
        ("wrong-password", ["--json"]),
        ("child-no-proposal", []),
        ("eap-silent", ["--json", "--timeout-s", "2"]),
    ):
        with Server(behaviour) as server:
            proc = run(server, "--ca", ca_file, *extra)
            outputs.append(proc.stdout + proc.stderr)
            if server.connect.eap is not None and server.connect.eap.msk is not None:
                msks.append(server.connect.eap.msk)
    outputs.append(run(None, "--eap", "peap", port=9).stderr)
    outputs.append(run(None, "--esp-proposal", "bogus", port=9).stderr)
    outputs.append(keys.read_text())
    assert len(msks) >= 2
    nt_hash = m.nt_password_hash(PASSWORD)
    secrets = [PASSWORD, nt_hash.hex(), nt_hash.hex().upper()]
    for msk in msks:
        secrets += [msk.hex(), msk[:32].hex(), msk[:16].hex(), msk.hex().upper()]
    for text in outputs:
        for secret in secrets:
            assert secret not in text


def test_a_fifo_without_a_writer_is_refused_not_waited_for(ca_file: str, tmp_path: Path) -> None:
    """--password-file and --machine-key on a FIFO nobody writes: one line and exit 2 (it waited forever)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    proc = run(None, "--password-file", str(fifo), password=None, port=9)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "FIFO" in proc.stderr, proc.stderr
    proc = subprocess.run(
        [*CLI, "127.0.0.1", "--port", "9", "--machine-cert", ca_file, "--machine-key", str(fifo)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "FIFO" in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def user_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A user certificate and its key (mode 600) from a throwaway CA, and another key."""
    from datetime import UTC, datetime

    from vpndoctor.lab.pki import make_connect_pki, make_lab_pki

    now = datetime.now(UTC)
    directory = tmp_path_factory.mktemp("user-cert")
    lab = make_lab_pki("vpn.example", now=now)
    files = make_connect_pki(
        lab, now=now, user="dave@example", device="d.example", nps_name="nps.example"
    ).write(directory)
    return str(files.user_cert), str(files.user_key), str(files.machine_key)


def run_tls(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "127.0.0.1", "--port", "9", "--natt-port", "9", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_client_certificate_options_are_checked_before_anything_is_sent(
    user_cert: tuple[str, str, str], tmp_path: Path
) -> None:
    cert, key, other_key = user_cert
    key_text = Path(key).read_text()
    world = tmp_path / "world.key"
    world.write_text(key_text)
    world.chmod(0o644)
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo, 0o600)
    for args, message in (
        (["--eap", "tls"], "needs --client-cert and --client-key"),
        (["--eap", "peap-tls", "--client-cert", cert], "needs --client-cert and --client-key"),
        (["--eap", "tls", "--client-cert", cert, "--client-key", str(world)], "every user of this machine"),
        (["--eap", "tls", "--client-cert", cert, "--client-key", other_key], "is not the key of"),
        (["--eap", "tls", "--client-cert", cert, "--client-key", str(fifo)], "FIFO"),
        (
            ["--eap", "tls", "--client-cert", cert, "--client-key", key, "--password-env", "X"],
            "drop the password",
        ),
        (["--user", USER, "--client-cert", cert, "--client-key", key], "go with --eap tls or peap-tls"),
        (["--eap", "ttls", "--user", USER], "one of mschapv2, tls, peap-mschapv2, peap-tls"),
        (["--machine-cert", cert, "--machine-key", str(world)], "every user of this machine"),
    ):
        proc = run_tls(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and message in proc.stderr, (args, proc.stderr)
        for line in key_text.splitlines()[1:-1]:
            assert line not in proc.stderr + proc.stdout


def test_eap_tls_without_a_server_ends_in_no_answer(user_cert: tuple[str, str, str]) -> None:
    """The credentials load and the attempt runs (exit 3: nothing answers on port 9)."""
    cert, key, _ = user_cert
    proc = run_tls("--eap", "tls", "--client-cert", cert, "--client-key", key, "--timeout-s", "2", "--json")
    data = report(proc)
    assert proc.returncode == 3 and data["auth"] == "eap-tls" and data["user"] == "dave@example"
    assert data["eap_tls"]["client_certificate"] == "CN=dave@example"


@pytest.mark.parametrize("eap", ["peap-mschapv2", "tls"])
def test_a_server_that_runs_mschapv2_only_refuses_our_nak_with_812(
    eap: str, ca_file: str, user_cert: tuple[str, str, str]
) -> None:
    """The scripted gateway proposes EAP-MSCHAPv2 and answers our Nak (PEAP, TLS) with EAP-Failure: the
    server wants a method the client is not configured for, 812, at EAP."""
    cert, key, _ = user_cert
    creds = ["--user", USER] if eap == "peap-mschapv2" else ["--client-cert", cert, "--client-key", key]
    with Server("normal") as server:
        env = {ENV_VAR: PASSWORD} if eap == "peap-mschapv2" else {}
        proc = subprocess.run(
            [
                *CLI, "127.0.0.1", "--port", str(server.port), "--natt-port", str(server.natt_port),
                "--eap", eap, *creds, *(["--password-env", ENV_VAR] if env else []),
                "--ca", ca_file, "--json",
            ],
            capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
            env={**{k: v for k, v in os.environ.items() if k != ENV_VAR}, **env},
        )
        assert server.connect.eap is not None
        log = server.connect.eap.log
    data = report(proc)
    assert proc.returncode == 1 and data["stage_reached"] == "EAP" and data["cause"] == "eap-method"
    assert data["eap_nak"] == ["MSCHAPV2"] and data["windows_error"]["code"] == 812
    assert log[-1] == ("nak-19" if eap == "peap-mschapv2" else "nak-0d"), log
    assert finding(data, "auth.eap")["status"] == "fail"
