"""Processes that die with their parent (Linux's ``PR_SET_PDEATHSIG``), so that no orphan keeps calling models.

``valuelex run`` ties each process of its tree to its parent: papermill to ``valuelex``, a
notebook's kernel to papermill (``tie_kernel``, called when a notebook starts its run), and
``valuelex`` itself to ``run_all.sh`` (``tie_to_launcher``).
"""

from __future__ import annotations

import ctypes
import os
import signal

#: Set in a notebook's environment by ``valuelex run``: its kernel dies with papermill (``tie_kernel``).
TIE_KERNEL_ENV = "VALUELEX_TIE_KERNEL"
#: Set by ``run_all.sh`` to its own pid: ``valuelex`` dies with the script (``tie_to_launcher``).
PARENT_PID_ENV = "VALUELEX_PARENT_PID"
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)


def libc_prctl():
    """Linux's ``prctl`` from the C library, or None where there is none (then only signals stop the tree)."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(sig: int, parent: int) -> bool:
    """Have the kernel send ``sig`` to this process when ``parent``, its parent, dies; at once if it already has.

    False where Linux's ``PR_SET_PDEATHSIG`` is not available (nothing is changed then).
    """
    prctl = libc_prctl()
    if prctl is None or prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # the parent died before the call above: the signal would never come
        os.kill(os.getpid(), sig)
    return True


def tie_kernel() -> bool:
    """In a notebook's kernel started by ``execute``: die (SIGKILL) as soon as papermill does.

    jupyter_client starts the kernel in a session of its own and names papermill in
    ``JPY_PARENT_PID``; ipykernel itself only checks its parent once a second, enough time for a
    kernel to send dozens of paid calls after ``valuelex run`` was killed. Elsewhere (Jupyter Lab,
    the tests' own kernels) nothing changes; returns whether the kernel is tied.
    """
    parent = os.environ.get("JPY_PARENT_PID", "")
    if os.environ.get(TIE_KERNEL_ENV) != "1" or not parent.isdigit():
        return False
    return die_with_parent(signal.SIGKILL, int(parent))


def tie_to_launcher() -> bool:
    """In ``valuelex``: if ``run_all.sh`` started it (``VALUELEX_PARENT_PID``), get a TERM when the script dies.

    The TERM stops the running notebook as Ctrl-C would. The variable is removed so that no child inherits it.
    """
    parent = os.environ.pop(PARENT_PID_ENV, "")
    if not parent.isdigit():
        return False
    return die_with_parent(signal.SIGTERM, int(parent))
