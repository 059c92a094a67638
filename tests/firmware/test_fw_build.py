"""Every firmware file compiles for the ESP32, and the firmware type-checks against
MicroPython's ESP32 stubs (a mypy run of its own: firmware/mypy.ini)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = sorted((ROOT / "firmware").glob("*.py"))
STUBS = "micropython-esp32-stubs==1.29.0.post1"  # the stubs of the MicroPython we run


def _bin(name: str) -> str:
    exe = Path(sys.executable).parent / name
    return str(exe) if exe.exists() else shutil.which(name) or name


def test_every_firmware_file_compiles_for_xtensawin(tmp_path: Path) -> None:
    assert len(FIRMWARE) >= 20
    for src in FIRMWARE:
        out = tmp_path / (src.stem + ".mpy")
        done = subprocess.run(
            [_bin("mpy-cross"), "-march=xtensawin", "-o", str(out), str(src)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"{src.name}: {done.stderr}"
        # .mpy header: 'M', version 6, then the arch in the top bits of byte 2.
        head = out.read_bytes()[:3]
        assert head[:2] == b"M\x06", src.name


def test_a_syntax_error_fails_the_compile(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n")
    done = subprocess.run([_bin("mpy-cross"), "-march=xtensawin", str(bad)], capture_output=True)
    assert done.returncode != 0


def test_firmware_type_checks_against_the_esp32_stubs() -> None:
    typings = ROOT / "typings"
    if not (typings / "machine.pyi").exists():
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", str(typings), STUBS],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.fail(f"could not install {STUBS} into {typings}:\n{done.stderr}", pytrace=False)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "firmware/mypy.ini"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_flash_stage_holds_every_library_module_and_no_test_code(tmp_path: Path) -> None:
    out = tmp_path / "stage"
    done = subprocess.run(
        ["bash", str(ROOT / "firmware" / "flash.sh"), "--stage", str(out)],
        capture_output=True,
        text=True,
        env={"BIN": str(Path(_bin("mpy-cross")).parent), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    staged = {p.name for p in (out / "lib" / "firmware").iterdir()}
    expected = {p.stem + ".mpy" for p in FIRMWARE} - {"boot.mpy", "main.mpy", "hal_fake.mpy"}
    assert staged == expected
    assert {p.name for p in out.iterdir() if p.is_file()} >= {"boot.py", "main.py", "config.json"}
    if not (ROOT / "firmware" / "config.local.json").exists():
        assert not (out / "config.local.json").exists()
