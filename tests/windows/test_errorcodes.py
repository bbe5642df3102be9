"""The error code catalogue (`data/error_codes.yaml`) and the decoding of every written form of a code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vpndoctor.errors import UsageError
from vpndoctor.windows import errorcodes
from vpndoctor.windows.errorcodes import forms, lookup, lookup_nps, parse_catalogue, parse_code

# The codes the events issue asks the catalogue to cover.
REQUIRED = (
    691, 720, 732, 766, 789, 800, 809, 812, 853, 858, 864, 868,
    13801, 13806, 13817, 13825, 13826, 13827, 13834, 13843, 13847, 13848, 13868,
    0x800B0101, 0x800B0109, 0x80092013, 0x80070040,
)  # fmt: skip
REQUIRED_NPS = (16, 48, 49, 65, 66, 258)

# Constant names as in winerror.h / raserror.h (checked against the mingw-w64 10.0.0 headers).
NAMES = {
    691: "ERROR_AUTHENTICATION_FAILURE",
    720: "ERROR_PPP_NO_PROTOCOLS_CONFIGURED",
    732: "ERROR_PPP_NOT_CONVERGING",
    766: "ERROR_NO_CERTIFICATE",
    789: "ERROR_OAKLEY_GENERAL_PROCESSING",
    800: "ERROR_AUTOMATIC_VPN_FAILED",
    809: "ERROR_VPN_TIMEOUT",
    812: "ERROR_SERVER_POLICY",
    853: "ERROR_EAP_USER_CERT_INVALID",
    858: "ERROR_EAP_SERVER_CERT_EXPIRED",
    864: "ERROR_EAP_SERVER_ROOT_CERT_NOT_FOUND",
    868: "ERROR_DNSNAME_NOT_RESOLVABLE",
    13801: "ERROR_IPSEC_IKE_AUTH_FAIL",
    13806: "ERROR_IPSEC_IKE_NO_CERT",
    13817: "ERROR_IPSEC_IKE_CRL_FAILED",
    13825: "ERROR_IPSEC_IKE_NO_POLICY",
    13826: "ERROR_IPSEC_IKE_INVALID_SIGNATURE",
    13827: "ERROR_IPSEC_IKE_KERBEROS_ERROR",
    13834: "ERROR_IPSEC_IKE_PROCESS_ERR_ID",
    13843: "ERROR_IPSEC_IKE_INVALID_PAYLOAD",
    13847: "ERROR_IPSEC_IKE_NO_PEER_CERT",
    13848: "ERROR_IPSEC_IKE_PEER_CRL_FAILED",
    13868: "ERROR_IPSEC_IKE_POLICY_MATCH",
    0x800B0101: "CERT_E_EXPIRED",
    0x800B0109: "CERT_E_UNTRUSTEDROOT",
    0x80092013: "CRYPT_E_REVOCATION_OFFLINE",
    0x80070040: "ERROR_NETNAME_DELETED",
}


@pytest.mark.parametrize("code", REQUIRED, ids=lambda c: forms(c).hex)
def test_every_required_code_has_an_entry_with_a_microsoft_source(code: int) -> None:
    entry = lookup(code)
    assert entry is not None
    assert entry.code == code
    assert entry.source.startswith("https://learn.microsoft.com/")
    assert entry.meaning and entry.fix and entry.causes and entry.checks


@pytest.mark.parametrize("code", REQUIRED_NPS)
def test_every_required_nps_reason_code_has_an_entry(code: int) -> None:
    entry = lookup_nps(code)
    assert entry is not None and entry.family == "nps"
    assert entry.source.startswith("https://learn.microsoft.com/")


@pytest.mark.parametrize(("code", "name"), sorted(NAMES.items()))
def test_names_match_the_windows_headers(code: int, name: str) -> None:
    entry = lookup(code)
    assert entry is not None and entry.name == name


def test_ike_codes_follow_the_winerror_h_order() -> None:
    # ERROR_IPSEC_IKE_NEG_STATUS_BEGIN = 13800; the catalogue must not drift from the header's numbering.
    for code in (13801, 13806, 13817, 13825, 13826, 13827, 13834, 13843, 13847, 13848, 13868):
        entry = lookup(code)
        assert entry is not None and entry.family == "ike" and entry.name
        assert entry.name.startswith("ERROR_IPSEC_IKE_")


def test_meanings_quote_microsoft() -> None:
    assert lookup(13801).meaning == "IKE authentication credentials are unacceptable."  # type: ignore[union-attr]
    assert lookup(13868).meaning == "Policy match error."  # type: ignore[union-attr]
    assert lookup(809).meaning.startswith(  # type: ignore[union-attr]
        "The network connection between your computer and the VPN server could not be established"
    )


@pytest.mark.parametrize("text", ["0x80092013", "0X80092013", "-2146885613", "2148081683"])
def test_forms_of_0x80092013(text: str) -> None:
    assert parse_code(text) == 0x80092013


def test_three_forms_of_0x80092013_decode_to_the_same_entry() -> None:
    entries = {id(lookup(parse_code(t))) for t in ("0x80092013", "-2146885613", "2148081683")}
    assert len(entries) == 1
    assert lookup(parse_code("-2146885613")).name == "CRYPT_E_REVOCATION_OFFLINE"  # type: ignore[union-attr]


def test_bare_hex_word_and_names() -> None:
    assert parse_code("800B0109") == 0x800B0109
    assert parse_code("ERROR_VPN_TIMEOUT") == 809
    assert parse_code("error_ipsec_ike_policy_match") == 13868
    assert parse_code(" 809 ") == 809
    # All digits is decimal, even when it reads like an HRESULT: a bare hex word needs a letter.
    assert parse_code("80092013") == 80092013


def test_signed_hresult_of_cert_e_expired() -> None:
    # RasClient 20227 prints CERT_E_EXPIRED as -2146762495 (decimal, signed).
    assert parse_code("-2146762495") == 0x800B0101
    assert forms(0x800B0101).signed == -2146762495


def test_hresult_from_win32_resolves_both_ways() -> None:
    assert parse_code("0x80070040") == 0x80070040
    assert forms(0x80070040).win32 == 64
    assert lookup(64) is lookup(0x80070040)
    # HRESULT_FROM_WIN32(809) is the same failure as 809.
    assert lookup(0x80070329) is lookup(809)
    assert forms(809).hresult == "0x80070329"


def test_unknown_code_is_none_and_nps_codes_are_apart() -> None:
    assert lookup(12345) is None
    assert lookup_nps(809) is None
    assert lookup(16) is None  # 16 is an NPS reason code, not a catalogued Win32 error


@pytest.mark.parametrize(
    "text", ["", "abc!", "0x1234567890", "99999999999", "-2147483649", "NOT_A_KNOWN_NAME"]
)
def test_bad_input_is_one_line_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_code(text)
    assert "\n" not in str(exc.value)


def test_forms_text() -> None:
    assert forms(0x80092013).text() == "decimal 2148081683, hex 0x80092013, signed -2146885613"
    assert forms(0x80070040).text().endswith("Win32 64")
    assert forms(809).hex == "0x329"


def test_catalogue_validation_names_the_bad_entry() -> None:
    good = "error_codes: []\nnps_reason_codes: []\n"
    assert parse_catalogue(good).errors == {}
    bad = (
        "error_codes:\n  - code: 809\n    family: ras\n    meaning: m\n    fix: f\n"
        "    source: http://example.com\nnps_reason_codes: []\n"
    )
    with pytest.raises(ValueError, match="0x329: sources must be https URLs"):
        parse_catalogue(bad)
    dup = (
        "error_codes:\n"
        + "  - {code: 1, family: win32, meaning: m, fix: f, source: 'https://x'}\n" * 2
        + "nps_reason_codes: []\n"
    )
    with pytest.raises(ValueError, match="appears twice"):
        parse_catalogue(dup)
    with pytest.raises(ValueError, match="unknown field"):
        parse_catalogue(
            "error_codes:\n  - {code: 1, family: win32, meaning: m, fix: f, source: 'https://x', oops: 1}\n"
            "nps_reason_codes: []\n"
        )


def test_every_check_command_is_a_vpndoctor_command_line() -> None:
    cat = errorcodes.load_catalogue()
    commands = [c.command for e in (*cat.errors.values(), *cat.nps.values()) for c in e.checks if c.command]
    assert commands
    from vpndoctor.cli.app import COMMANDS

    for command in commands:
        assert command.split()[0] == "vpndoctor" and command.split()[1] in COMMANDS, command
    # The entries the issue names point at the commands that check them.
    assert "vpndoctor diagnose NAME" in [c.command for c in lookup(809).checks]  # type: ignore[union-attr]
    assert any(
        (c.command or "").startswith("vpndoctor ike NAME --proposal")
        for c in lookup(13868).checks  # type: ignore[union-attr]
    )


# --- hostile forms: only ASCII digits, no underscores (int() takes "1_6" and Arabic-Indic digits) ----------


@pytest.mark.parametrize(
    "text", ["1_6", "0x1_6", "0X80_092013", "8009_2013", "\u0661\u0666", "16\u00b2", "-1_6"]
)
def test_codes_with_underscores_or_non_ascii_digits_are_refused(text: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_code(text)
    assert "\n" not in str(exc.value)


def test_constant_names_are_ascii() -> None:
    # Under re.IGNORECASE a dotless i (U+0131) matches [A-Z], and "\u0131".upper() == "I" then finds the name.
    with pytest.raises(UsageError):
        parse_code("ERROR_VPN_T\u0131MEOUT")
    assert parse_code("error_vpn_timeout") == 809


@pytest.mark.parametrize(("text", "value"), [("16", 16), (" 66 ", 66), ("0", 0), ("4294967295", 0xFFFFFFFF)])
def test_nps_reason_code_plain_decimal(text: str, value: int) -> None:
    assert errorcodes.parse_nps_code(text) == value


@pytest.mark.parametrize(
    "text", ["1_6", "0x10", "+16", "-1", "\u0661\u0666", "16\u00b2", "", "4294967296", "1" * 5000]
)
def test_nps_reason_code_refuses_anything_else(text: str) -> None:
    with pytest.raises(UsageError) as exc:
        errorcodes.parse_nps_code(text)
    assert "\n" not in str(exc.value) and str(exc.value).startswith("--nps ")


@pytest.mark.parametrize("code", ["1_6", "\u0661\u0666"])
def test_explain_nps_with_underscore_is_a_usage_error_through_the_real_main(code: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vpndoctor", "explain", "--nps", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == "" and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("vpndoctor: error: --nps ") and "decimal number" in proc.stderr


def test_the_compiled_catalogue_is_the_yaml() -> None:
    """The commands read data/error_codes.json; it must be exactly the YAML people edit, compiled."""
    from scripts.gen_catalogue import compiled_text
    from vpndoctor.windows.errorcodes import COMPILED

    assert COMPILED.read_text(encoding="utf-8") == compiled_text(), "run scripts/gen_catalogue.py"


def test_the_commands_do_not_import_yaml_for_the_catalogue() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from vpndoctor.windows.errorcodes import lookup; lookup(809); "
        "print('yaml' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr
