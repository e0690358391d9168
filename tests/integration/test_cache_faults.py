"""The parse cache under faults: two processes filling one cache at once, and a process
killed (kill -9) at a random moment while it parses and writes; the cache is never left
corrupt and every later load is correct."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

ROWS = "interactions  100,836"


def _info(env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jaxrec.cli", "data", "info",
                             "ml-latest-small"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)


@pytest.fixture
def env(data_dir, tmp_path):
    out = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    out.update(JAXREC_DATA_DIR=data_dir, JAXREC_CACHE_DIR=str(tmp_path / "cache"))
    return out


def _cache_files(env) -> list[str]:
    root = os.path.join(env["JAXREC_CACHE_DIR"], "parsed")
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


@pytest.mark.slow
def test_two_processes_fill_one_cache_at_once(env):
    procs = [_info(env), _info(env)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0 and ROWS in out, out[-2000:]
    assert not [f for f in _cache_files(env) if ".tmp" in f]
    again = _info(env).communicate(timeout=300)[0]  # from the cache now
    assert ROWS in again, again[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kill_9_while_parsing_or_writing_leaves_a_usable_cache(env, seed):
    proc = _info(env)
    time.sleep(random.Random(seed).uniform(0.5, 4.0))  # somewhere in start-up, parse, write
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    after = _info(env).communicate(timeout=300)[0]
    assert ROWS in after, after[-2000:]
    assert not [f for f in _cache_files(env) if ".tmp" in f]
    assert ROWS in _info(env).communicate(timeout=300)[0]
