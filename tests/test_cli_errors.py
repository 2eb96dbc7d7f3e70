"""Bad input to the ``mqttsim`` commands gets one line naming what is wrong, never a traceback.

Each case of issue 13's "tracebacks instead of one-line errors" is run as a user runs it (a
separate process, or ``mqttsim.cli.main`` in this process where that is the same code path
and faster): the exit status is not 0, stderr is one line, and that line names the file,
option or value at fault.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mqttsim.cli import main

pytestmark = pytest.mark.realtime  # subprocesses of mqttsim (tests/conftest.py)

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "data" / "scenarios" / "seed-sensor.toml"


def mqttsim(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mqttsim", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def one_line(stderr: str, *words: str) -> str:
    """The single line of ``stderr``, checked to contain each of ``words``."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def run_main(capsys, *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    return status, capsys.readouterr().err


# --- mqttsim run: files the TOML reader cannot take


def test_run_of_a_binary_file_says_it_is_not_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "firmware.toml"
    path.write_bytes(bytes(range(128, 256)) * 4)
    done = mqttsim("run", str(path))
    assert done.returncode == 2
    one_line(done.stderr, str(path), "not UTF-8", "0x80")


def test_run_of_deeply_nested_arrays_says_they_nest_too_deeply(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    done = mqttsim("run", str(path))
    assert done.returncode == 2
    one_line(done.stderr, str(path), "nested too deeply")


def test_nesting_the_parser_takes_but_a_deep_copy_would_not_is_refused_too() -> None:
    from mqttsim.scenario import Scenario, ScenarioError

    deep: list = []
    for _ in range(2000):
        deep = [deep]
    with pytest.raises(ScenarioError, match=r"<dict>: x(\[0\])+: .*nested more than 32"):
        Scenario.from_dict({"x": deep})


def test_run_of_a_folder_or_missing_file_names_it(capsys, tmp_path: Path) -> None:
    status, err = run_main(capsys, "run", str(tmp_path))
    assert status == 2
    one_line(err, str(tmp_path), "cannot read", "Is a directory")
    status, err = run_main(capsys, "run", str(tmp_path / "missing.toml"))
    assert status == 2
    one_line(err, "missing.toml", "No such file")


@pytest.mark.parametrize("client, written", [
    ('name = "sensor\\u0000a"', "clients[0].name = 'sensor\\x00a'"),
    ('name = "sensor"\nclient_id = "\\u0000"', "clients[0].client_id = '\\x00'"),
])
def test_run_refuses_a_client_id_with_u0000_when_loading(tmp_path: Path, client: str,
                                                          written: str) -> None:
    """[MQTT-1.5.3-2]: no U+0000 in a UTF-8 string; it used to fail mid-run with a
    MalformedPacket traceback, encoding the client's CONNECT."""
    path = tmp_path / "nul.toml"
    path.write_text(f'duration = 5\n[[clients]]\n{client}\nsubscribe = ["t"]\n')
    done = mqttsim("run", str(path))
    assert done.returncode == 2, done.stdout
    one_line(done.stderr, str(path), written, "U+0000", "[MQTT-1.5.3-2]")


def test_v5_client_id_with_u0000_names_the_v5_statement() -> None:
    from mqttsim.scenario import Scenario, ScenarioError

    with pytest.raises(ScenarioError, match=r"\[MQTT-1\.5\.4-2\]"):
        Scenario.from_dict({"version": 5, "clients": [{"name": "a\0b"}]})


# --- mqttsim run: outputs that cannot be written, refused before the run


@pytest.mark.parametrize("option, target, words", [
    ("--out", "{file}/tables", ["is a file, not a folder"]),
    ("--out", "/proc/mqttsim-tables", ["cannot write in /proc"]),
    ("--pcap", "{tmp}/missing/run.pcap", ["the folder", "does not exist"]),
    ("--pcap", "{file}/run.pcap", ["is a file, not a folder"]),
    ("--pcap", "{tmp}", ["is a folder; give a file name"]),
    ("--pcap", "/proc/run.pcap", ["cannot write in /proc"]),
])
def test_run_refuses_outputs_it_cannot_write_before_running(
        capsys, tmp_path: Path, option: str, target: str, words: list[str]) -> None:
    (tmp_path / "afile").write_text("not a folder")
    target = target.format(file=tmp_path / "afile", tmp=tmp_path)
    status, err = run_main(capsys, "run", str(SEED), option, target)
    assert status == 2
    one_line(err, f"mqttsim run: {option} {target}", *words)
    assert "sub: sensor 12" not in capsys.readouterr().out  # refused before the run


def test_run_pcap_of_a_datagram_scenario_is_refused_before_running(capsys) -> None:
    status, err = run_main(capsys, "run", str(SEED), "--set", "transport=datagram",
                           "--pcap", "x.pcap")
    assert status == 2
    one_line(err, "--pcap", "datagram transport has no TCP segments")


def test_run_out_into_a_new_folder_still_creates_it(capsys, tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper"
    assert main(["run", str(SEED), "--out", str(out), "--pcap", str(tmp_path / "r.pcap")]) == 0
    assert (out / "summary.csv").exists() and (tmp_path / "r.pcap").stat().st_size > 24


def test_compare_out_that_cannot_be_written_is_refused_before_running(capsys,
                                                                      tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    status, err = run_main(capsys, "compare", str(SEED), "--out", str(tmp_path / "afile" / "x"))
    assert status == 2
    one_line(err, "mqttsim compare: --out", "is a file, not a folder")


# --- mqttsim broker / pub / sub: ports, hosts, certificate files


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_broker_refuses_a_port_outside_0_to_65535(port: str) -> None:
    """It used to raise OverflowError (-1) or listen on 99999 mod 65536 = 34463."""
    done = mqttsim("broker", "-p", port, timeout=10)
    assert done.returncode == 1
    one_line(done.stderr, f"-p {port}", f"invalid port {port}", "0 to 65535")


@pytest.mark.parametrize("tool", ["pub", "sub"])
@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_pub_and_sub_refuse_an_invalid_port_instead_of_connection_refused(
        tool: str, port: str) -> None:
    done = mqttsim(tool, "-p", port, "-t", "t", "-m", "x") if tool == "pub" else \
        mqttsim(tool, "-p", port, "-t", "t")
    assert done.returncode == 1
    line = one_line(done.stderr, f"invalid port {port}", "1 to 65535")
    assert "refused" not in line


def test_pub_names_a_host_that_does_not_resolve(capsys, monkeypatch) -> None:
    """No DNS traffic leaves the machine: getaddrinfo fails as glibc does for an unknown
    name (EAI_NONAME, -2), which used to print "Error: Unknown error -2"."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "broker.example.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    status, err = run_main(capsys, "pub", "-h", "broker.example.invalid", "-t", "t", "-m", "x")
    assert status == 1
    one_line(err, "cannot resolve host broker.example.invalid", "Name or service not known")


@pytest.mark.parametrize("cafile, words", [
    ("/nonexistent/ca.pem", ["No such file or directory"]),
    ("{tmp}", ["Is a directory"]),
    ("{junk}", ["OpenSSL"]),
])
def test_pub_cafile_that_cannot_be_loaded_is_named(tmp_path: Path, cafile: str,
                                                   words: list[str]) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    cafile = cafile.format(tmp=tmp_path, junk=tmp_path / "junk.pem")
    done = mqttsim("pub", "--cafile", cafile, "-t", "t", "-m", "x")
    assert done.returncode == 1
    one_line(done.stderr, f"--cafile {cafile}", "cannot load CA certificates", *words)


def test_cert_that_cannot_be_loaded_is_named(tmp_path: Path) -> None:
    from mqttsim.net.cli_clients import UsageError, _tls_context

    ca = tmp_path / "ca.pem"
    ca.write_text(_self_signed_pem())
    args = argparse.Namespace(cafile=str(ca), cert=str(tmp_path / "missing.crt"), key=None,
                              insecure=False)
    with pytest.raises(UsageError, match="--cert .*missing.crt: cannot load .*No such file"):
        _tls_context(args)


def _self_signed_pem() -> str:
    """Any valid PEM certificate, to get past --cafile: the test's own, made with openssl."""
    done = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                           "-keyout", "/dev/null", "-subj", "/CN=test", "-days", "1"],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip("openssl not available")
    return done.stdout


@pytest.mark.parametrize("argv", [["run", "{bad}"], ["run", "--help"], ["compare", "{bad}"]])
def test_a_refused_scenario_and_help_answer_without_loading_pandas(tmp_path, argv):
    """Saying what is wrong with a file (or how to call the command) needs no tables: pandas
    is loaded only once there is a run to show (it costs most of a second)."""
    bad = tmp_path / "bad.toml"
    bad.write_text("x = [\n")
    argv = [arg.format(bad=bad) for arg in argv]
    probe = ("import sys\nfrom mqttsim.cli import main\n"
             f"try:\n    code = main({argv!r})\nexcept SystemExit as exit:\n    code = exit.code\n"
             "print('pandas' in sys.modules, code)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=30, check=False)
    loaded, code = out.stdout.split()[-2:]
    assert loaded == "False", out.stdout + out.stderr
    assert code in ("0", "2"), out.stdout + out.stderr
