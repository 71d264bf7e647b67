"""allocator=auto (dd_runner/core/allocator.py): glibc keeps the big blocks a step frees, so the next step does
not fault them in again; allocator=system, a user's own MALLOC_* settings and other C libraries leave malloc
alone."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from dd_runner.core import allocator

# A LeNet's forward and backward on a batch of 1,024 MNIST-sized images, repeated as outer steps repeat
# them: minor page faults per step after warm-up steps (with raised thresholds the heap settles within the
# first steps).
ROUNDS = textwrap.dedent("""
    import resource, sys, torch
    from dd_runner.core.allocator import configure
    from dd_runner.models.lenet import LeNet
    print(configure(sys.argv[1]), file=sys.stderr)
    torch.set_num_threads(1)
    net, x = LeNet(), torch.randn(1024, 1, 28, 28)
    def step():
        torch.autograd.grad(net(x).square().mean(), list(net.parameters()))
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        step()
    start = faults()
    for _ in range(5):
        step()
    print((faults() - start) / 5)
""")


def faults_per_round(mode: str) -> float:
    proc = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return float(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(allocator.glibc() is None, reason="glibc only")
def test_auto_stops_the_page_faults_of_a_reallocated_block():
    system, auto = faults_per_round("system"), faults_per_round("auto")
    assert system > 2_000  # the activations' pages, mapped and zeroed again at every step
    assert auto < system / 20, (system, auto)


class FakeLibc:
    def __init__(self, accept: bool = True):
        self.calls, self.accept = [], accept

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return 1 if self.accept else 0


@pytest.fixture
def fake_glibc(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(allocator, "glibc", lambda: libc)
    monkeypatch.setattr(allocator, "_applied", None)
    for name in allocator.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return libc


def test_auto_raises_the_three_thresholds_once(fake_glibc):
    said = allocator.configure("auto")
    assert "keeps freed blocks" in said
    assert fake_glibc.calls == [(-3, 2**31 - 1), (-1, -1), (-2, 256 << 20)]
    assert allocator.configure("auto") == said and len(fake_glibc.calls) == 3  # a sweep's next run: done
    assert allocator.configure("system") == said  # mallopt cannot be undone: it says what is in force


def test_system_and_the_users_own_settings_leave_malloc_alone(fake_glibc, monkeypatch):
    assert allocator.configure("system") == "system malloc, as configured"
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    assert "MALLOC_TRIM_THRESHOLD_" in allocator.configure("auto")
    assert fake_glibc.calls == []


def test_other_c_libraries_and_refusals_change_nothing(fake_glibc, monkeypatch):
    monkeypatch.setattr(allocator, "glibc", lambda: None)
    assert "not glibc" in allocator.configure("auto")
    refusing = FakeLibc(accept=False)
    monkeypatch.setattr(allocator, "glibc", lambda: refusing)
    assert "refused" in allocator.configure("auto") and allocator._applied is None


def test_the_setting_is_a_checked_top_level_option():
    from dd_runner.config.schema import all_settings

    setting = next(s for s in all_settings() if s.key == "allocator")
    assert setting.default == "auto" and "glibc" in setting.help
    from dd_runner.config.fields import allowed

    assert allowed(setting.choices) == ("auto", "system")
