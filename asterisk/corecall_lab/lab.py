#!/usr/bin/env python3
"""The corecall Asterisk lab: a real Asterisk 22 plus sipp "carriers", all on loopback.

Asterisk comes from Debian unstable, unpacked with mmdebstrap into a chroot (built once,
cached at ``/var/cache/corecall-lab/root`` or ``$CORECALL_LAB_ROOT``). Each lab *instance* has
its own configuration, run, log, spool and db directories inside the chroot
(``ROOT/run/corecall-lab/<instance>/``), so several Asterisks can run side by side. Each trunk
of an instance is answered by one sipp UAS (``asterisk/sipp/carrier.xml``) on its own loopback
address, which logs every INVITE it receives.

Command line (as root, on Debian)::

    .venv/bin/corecall-lab build     # build the chroot if missing
    .venv/bin/corecall-lab up        # start the default instance, print how to reach it
    .venv/bin/corecall-lab status
    .venv/bin/corecall-lab down
    .venv/bin/corecall-lab cli "pjsip show endpoints"   # Asterisk CLI of the running lab
    .venv/bin/corecall-lab render    # rewrite asterisk/*.conf from corecall_asterisk.render

(``corecall-lab`` is the console script of the ``corecall-lab`` distribution in ``asterisk/``,
installed by ``./scripts/test``; ``python -m corecall_lab`` is the same.)

Programmatic use (tests, benchmarks)::

    lab = Lab(instance="t1", ami_port=0, sip_port=0,   # 0: the lab picks free ports
              carriers={"corecall-main": "127.0.0.2:0", "corecall-dev": "127.0.0.3:0"})
    lab.start()            # builds the chroot if needed, waits until AMI says FullyBooted
    lab.ami_host, lab.ami_port, lab.ami_user, lab.ami_secret
    lab.invites("corecall-main")   # [Invite(ruri_user, from_user), ...] in arrival order
    lab.clear_invites()
    lab.stop_carrier("corecall-dev"); lab.start_carrier("corecall-dev")
    lab.restart_asterisk(); lab.cli("core show channels")
    lab.stop()             # kills every process group it started

``die_with_parent=True`` (what the tests use) makes the instance throw-away: its processes get
PR_SET_PDEATHSIG (forked from one long-lived thread, so restarting Asterisk from a
short-lived thread is safe), a later start reaps it if its owner died, and stop() deletes its
directory (unless ``CORECALL_LAB_KEEP=1``). ``CORECALL_LAB_VERBOSE=3`` adds a ``full.log``
with verbose and debug lines.

Asterisk runs with ``LD_PRELOAD`` of ``bind_loopback.c`` (compiled into the chroot), which
turns wildcard binds into loopback binds: pjproject's DNS resolver otherwise always binds
0.0.0.0:0 and [::]:0. See docs/asterisk-lab.md.

Ports given as 0 are chosen by the lab at start(), race-free across processes: under a lock
shared by every instance on the machine (``ROOT/run/corecall-lab/.ports.lock``), from
``PORT_RANGE`` (below the kernel's ephemeral range, so no ``bind(0)`` elsewhere takes them),
skipping every port a live instance has reserved in its state file (kept reserved while its
Asterisk is stopped or restarting).

Each carrier knows the caller IDs the operator owns on its trunk (``owned_caller_ids``;
default :data:`DEFAULT_OWNED_CALLER_IDS`, the routes' numbers in the corecall configuration
``up --corecall-config FILE`` writes) and answers ``403 Forbidden`` to any other From.

Errors: :class:`LabUnavailable` when this machine cannot run the lab at all (not root, not
Debian, tools cannot be installed); :class:`LabError` for everything else.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import ctypes
import fcntl
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

# The render and the one Originate builder are the Asterisk plugin's own (neither imports
# panoramisk), so the lab cannot drift from what the driver sends.
from corecall_asterisk import render as asterisk_conf
from corecall_asterisk.actions import originate_headers

# The Asterisk side of the repository (asterisk/): conf files, sipp scenarios, the shim.
HERE = Path(__file__).resolve().parents[1]
REPO = HERE.parent
SCENARIO = HERE / "sipp" / "carrier.xml"
SHIM_SOURCE = HERE / "bind_loopback.c"
SHIM_INSIDE = "/usr/local/lib/corecall-lab/bind_loopback.so"
DEFAULT_ROOT = Path("/var/cache/corecall-lab/root")
INSIDE_BASE = "/run/corecall-lab"  # per-instance directories, as seen inside the chroot
BUILD_MARKER = ".corecall-lab-complete"
TOOLS = {"sipp": "sip-tester", "mmdebstrap": "mmdebstrap", "gcc": "gcc"}  # binary -> package

DEFAULT_INSTANCE = "default"
DEFAULT_SECRET = "corecall-lab-secret"
DEFAULT_CARRIERS = {"corecall-main": "127.0.0.2:5060", "corecall-dev": "127.0.0.3:5060"}
#: The numbers the operator owns per trunk: the caller IDs of the routes that use it (route M
#: on corecall-main, route D on corecall-dev in the configuration ``up --corecall-config``
#: writes). A carrier refuses (403) an INVITE whose From user is not one of its trunk's.
DEFAULT_OWNED_CALLER_IDS: dict[str, tuple[str, ...]] = {
    "corecall-main": ("+12125550100", "+12125550101"),
    "corecall-dev": ("+12125550199",),
}
#: Ports the lab picks from when asked for port 0: below the kernel's ephemeral range
#: (32768-60999), above the RTP ranges the lab uses (10000-29999).
PORT_RANGE = (30000, 32767)
#: Debian sip-tester's RTP captures (DTMF per RFC 4733, a PCMA greeting) the carriers play.
PCAP_DIR = Path("/usr/share/sip-tester")

# Modules the lab loads; every other module found in the chroot gets a noload line. Keeps
# startup near 1 s and makes sure nothing listens beyond loopback (chan_iax2, pbx_dundi,
# chan_unistim, res_hep, ... would bind 0.0.0.0).
LOAD_MODULES = frozenset(
    {
        "chan_pjsip",
        "res_pjproject",
        "res_pjsip",
        "res_pjsip_session",
        "res_pjsip_sdp_rtp",
        "res_pjsip_pubsub",
        "res_pjsip_endpoint_identifier_ip",
        "res_pjsip_authenticator_digest",
        "res_pjsip_outbound_authenticator_digest",
        "res_pjsip_caller_id",
        "res_pjsip_rfc3326",
        "res_pjsip_nat",
        "res_pjsip_logger",
        "res_pjsip_dlg_options",
        "res_sorcery_config",
        "res_sorcery_memory",
        "res_sorcery_memory_cache",
        "res_sorcery_astdb",
        "res_rtp_asterisk",
        "res_timing_timerfd",
        "res_http_websocket",
        "bridge_simple",
        "bridge_native_rtp",
        "bridge_builtin_features",
        "bridge_holding",
        "pbx_config",
        "app_dial",
        "app_userevent",
        "func_pjsip_endpoint",  # corecall asterisk check: PJSIP_ENDPOINT() via Getvar
        "func_dialplan",  # corecall asterisk check: DIALPLAN_EXISTS() via Getvar
        "app_stack",
        "app_verbose",
        "app_read",  # the agent's confirmation key (Read)
        "app_playback",
        "app_while",  # the prompt says the target's digits one by one
        "format_gsm",  # Asterisk's own sound files (en_US_f_Allison) are GSM
        "codec_gsm",
        "func_strings",
        "func_channel",
        "func_callerid",
        "func_hangupcause",
        "func_logic",
        "func_cut",
        "codec_ulaw",
        "codec_alaw",
        "codec_a_mu",
        "format_pcm",
    }
)

_INSTANCE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class LabError(RuntimeError):
    """The lab could not do what was asked."""


class LabUnavailable(LabError):
    """This machine cannot run the lab (not root, not Debian, tools missing)."""


class Invite(NamedTuple):
    """One INVITE a carrier received."""

    ruri_user: str
    from_user: str


# ----------------------------------------------------------------------------- helpers


def lab_root(root: str | os.PathLike[str] | None = None) -> Path:
    if root is not None:
        return Path(root)
    return Path(os.environ.get("CORECALL_LAB_ROOT") or DEFAULT_ROOT)


def _log(message: str) -> None:
    print(f"[corecall-lab] {message}", file=sys.stderr, flush=True)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} not readable)"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def _proc_start_time(pid: int) -> int | None:
    """Start time (clock ticks since boot) of a live, non-zombie process, else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _alive(pid: int | None, start_time: int | None = None) -> bool:
    if not pid:
        return False
    started = _proc_start_time(pid)
    if started is None:
        return False
    return start_time is None or started == start_time


def _kill_group(pid: int, start_time: int | None, timeout: float = 5.0) -> None:
    """SIGTERM the process group led by pid, then SIGKILL what is left after timeout."""
    if not _alive(pid, start_time):
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not _alive(pid, start_time) and not _group_alive(pid):
                return
            time.sleep(0.02)
    if _alive(pid, start_time):
        raise LabError(f"process {pid} survived SIGKILL")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(0) succeeds for zombies too; look for a live member.
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process. So
# throw-away processes are always forked from this one long-lived thread: a lab started or
# restarted from a short-lived thread (e.g. asyncio's run_in_executor) does not die with it,
# yet everything dies with the test process.
_SPAWNER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lab-spawn")


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port that is free on host right now (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _split_hostport(value: str, default_port: int = 5060) -> tuple[str, int]:
    host, sep, port = value.partition(":")
    return host, int(port) if sep else default_port


# ------------------------------------------------------------------ environment & build


def check_environment() -> None:
    """Raise LabUnavailable unless this is Debian and we are root."""
    if os.geteuid() != 0:
        raise LabUnavailable("the Asterisk lab needs root (it uses chroot and mmdebstrap)")
    if not Path("/etc/debian_version").exists():
        raise LabUnavailable("the Asterisk lab needs Debian (it builds a Debian unstable chroot)")
    if shutil.which("chroot") is None:
        raise LabUnavailable("chroot(8) is not installed")


def ensure_tools(install: bool = True) -> None:
    """Make sure sipp, mmdebstrap and gcc exist, installing them with apt-get if allowed."""
    check_environment()
    missing = sorted({pkg for binary, pkg in TOOLS.items() if not shutil.which(binary)})
    if not missing:
        return
    if not install:
        raise LabUnavailable(f"missing packages: {' '.join(missing)} (apt-get install -y ...)")
    _log(f"installing {' '.join(missing)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", *missing]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True)
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0 or any(not shutil.which(b) for b in TOOLS):
        raise LabUnavailable(
            f"could not install {' '.join(missing)}:\n{(result.stdout + result.stderr)[-2000:]}"
        )


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return []
    return [m for line in lines if (m := line.split()[1]).startswith(prefix)]


def root_ready(root: Path) -> bool:
    return (root / BUILD_MARKER).exists() and (root / "usr/sbin/asterisk").exists()


def ensure_root(root: str | os.PathLike[str] | None = None) -> Path:
    """Build the Debian unstable chroot with Asterisk unless it is already there.

    Builds into a temporary sibling directory and renames it into place, under a lock, so
    a half-built root is never used and concurrent callers build it once.
    """
    root = lab_root(root)
    if root_ready(root):
        return root
    ensure_tools()
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if root_ready(root):
            return root
        if root.exists():
            raise LabError(
                f"{root} exists but is not a complete lab root (no {BUILD_MARKER}); "
                "remove it and try again"
            )
        for stale in root.parent.glob(f".{root.name}.build-*"):
            if _mounts_under(stale):
                _log(f"leaving {stale} alone: something is still mounted inside it")
            else:
                shutil.rmtree(stale, ignore_errors=True)
        tmp = root.parent / f".{root.name}.build-{os.getpid()}"
        _log(f"building the Asterisk chroot in {root} (Debian unstable, about 30 s)")
        started = time.monotonic()
        cmd = [
            "mmdebstrap",
            "--variant=apt",
            '--aptopt=Acquire::Check-Valid-Until "false"',
            "--include=asterisk,asterisk-modules",
            "sid",
            str(tmp),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not (tmp / "usr/sbin/asterisk").exists():
            if not _mounts_under(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
            raise LabError(
                f"mmdebstrap failed ({result.returncode}):\n"
                + (result.stdout + result.stderr)[-3000:]
            )
        (tmp / BUILD_MARKER).write_text(f"built {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
        os.rename(tmp, root)
        _log(f"chroot ready in {time.monotonic() - started:.0f} s")
    return root


def prepare_root(root: Path) -> None:
    """Per-run fix-ups of the chroot: the loopback bind shim and a DNS-free resolv.conf."""
    shim = root / SHIM_INSIDE.lstrip("/")
    stamp = shim.with_suffix(".src")
    source = SHIM_SOURCE.read_bytes()
    if not shim.exists() or not stamp.exists() or stamp.read_bytes() != source:
        shim.parent.mkdir(parents=True, exist_ok=True)
        tmp = shim.with_suffix(f".{os.getpid()}.tmp")
        result = subprocess.run(
            ["gcc", "-O2", "-shared", "-fPIC", "-o", str(tmp), str(SHIM_SOURCE)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise LabError(f"could not build {SHIM_SOURCE.name}:\n{result.stderr}")
        os.replace(tmp, shim)
        stamp.write_bytes(source)
    # The lab never resolves names. A regular file (never a socket or anything unreadable:
    # Asterisk ignores res_ninit() failures and then close()s fd 0) pointing at loopback.
    resolv = root / "etc/resolv.conf"
    wanted = "# corecall lab: no DNS needed, nothing is resolved\nnameserver 127.0.0.1\n"
    if resolv.is_symlink() or not resolv.is_file() or resolv.read_text() != wanted:
        tmp = resolv.with_name(f".resolv.conf.{os.getpid()}")
        tmp.write_text(wanted)
        os.replace(tmp, resolv)


def asterisk_version(root: str | os.PathLike[str] | None = None) -> str:
    root = lab_root(root)
    result = subprocess.run(["chroot", str(root), "asterisk", "-V"], capture_output=True, text=True)
    return result.stdout.strip()


# --------------------------------------------------------------------------- configs


def render_asterisk_conf(inside: str, moddir: str) -> str:
    return f"""\
[directories]
astetcdir => {inside}/etc
astmoddir => {moddir}
astvarlibdir => /var/lib/asterisk
astdbdir => {inside}/db
astkeydir => /var/lib/asterisk
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => {inside}/spool
astrundir => {inside}/run
astlogdir => {inside}/log
astcachedir => {inside}/cache
astsbindir => /usr/sbin

[options]
verbose = {os.environ.get("CORECALL_LAB_VERBOSE", "0")}
debug = 0
documentation_language = en_US
hideconnect = yes
live_dangerously = no
transmit_silence = no
"""


def render_modules_conf(available: list[str]) -> str:
    noload = sorted(m for m in available if m.removesuffix(".so") not in LOAD_MODULES)
    lines = ["[modules]", "autoload=yes"]
    lines += [f"noload => {m}" for m in noload]
    return "\n".join(lines) + "\n"


def originate_action(
    call_id: str,
    agent: str,
    target: str,
    *,
    trunk: str = "corecall-main",
    caller_id: str | None = None,
    agent_ring_timeout: int = 30,
    confirm: str = "key",
    confirm_timeout: int = 10,
    dial_timeout: int = 10,
    exten: str | None = None,
    variables: str | None = None,
) -> dict[str, str]:
    """The Originate exactly as corecall's AMI driver sends it, from the driver's own builder
    (:func:`corecall_asterisk.actions.originate_headers`, which validates every value), for
    the lab's own checks, recordings and tests. ``agent_ring_timeout`` and ``dial_timeout``
    are seconds. ``caller_id`` (default: the trunk's first owned number, see
    :data:`DEFAULT_OWNED_CALLER_IDS`) is presented on both legs.

    ``exten`` and ``variables`` replace those headers *after* the builder, unchecked: they
    exist to show that the bridge dialplan itself refuses what the driver never sends.
    """
    if caller_id is None:
        caller_id = DEFAULT_OWNED_CALLER_IDS.get(trunk, ("+12125550100",))[0]
    action = originate_headers(
        call_id=call_id,
        agent=agent,
        target=target,
        endpoint=trunk,
        caller_id=caller_id,
        agent_ring_timeout=agent_ring_timeout,
        target_ring_timeout=dial_timeout,
        confirm=confirm,
        confirm_timeout=confirm_timeout,
        action_id=False,
    )
    if exten is not None:
        action["Exten"] = exten
    if variables is not None:
        action["Variable"] = variables
    return action


def render_logger_conf() -> str:
    full = "notice,warning,error,verbose,debug" if os.environ.get("CORECALL_LAB_VERBOSE") else ""
    lines = ["[general]", "[logfiles]", "messages.log => notice,warning,error"]
    if full:
        lines.append(f"full.log => {full}")
    return "\n".join(lines) + "\n"


def render_rtp_conf(start: int, end: int) -> str:
    return f"[general]\nrtpstart={start}\nrtpend={end}\n"


# ------------------------------------------------------------------------------ Lab


class Lab:
    """One lab instance: an Asterisk and one sipp carrier per trunk."""

    def __init__(
        self,
        instance: str = DEFAULT_INSTANCE,
        *,
        root: str | os.PathLike[str] | None = None,
        ami_host: str = "127.0.0.1",
        ami_port: int = 5038,
        sip_host: str = "127.0.0.1",
        sip_port: int = 5060,
        carriers: Mapping[str, str] | None = None,
        owned_caller_ids: Mapping[str, Any] | None = None,
        rtp_ports: tuple[int, int] = (10000, 20000),
        ami_user: str = "corecall",
        ami_secret: str | None = None,
        die_with_parent: bool = False,
        start_timeout: float = 30.0,
    ) -> None:
        if not _INSTANCE_RE.match(instance):
            raise ValueError(f"instance must match {_INSTANCE_RE.pattern}, got {instance!r}")
        self.instance = instance
        self.root = lab_root(root)
        self.ami_host = ami_host
        self.ami_port = ami_port
        self.sip_host = sip_host
        self.sip_port = sip_port
        self.carriers: dict[str, tuple[str, int]] = {
            name: _split_hostport(addr) for name, addr in (carriers or DEFAULT_CARRIERS).items()
        }
        for host, _ in self.carriers.values():
            if not host.startswith("127."):
                raise ValueError(f"carriers must be on loopback, got {host}")
        owned = DEFAULT_OWNED_CALLER_IDS if owned_caller_ids is None else owned_caller_ids
        self.owned_caller_ids: dict[str, tuple[str, ...]] = {
            name: tuple(owned.get(name, ())) for name in self.carriers
        }
        for name, numbers in self.owned_caller_ids.items():
            for number in numbers:
                if not re.fullmatch(r"\+[1-9][0-9]{6,14}", number):
                    raise ValueError(f"owned caller ID of {name} must be E.164, got {number!r}")
        if not (ami_host.startswith("127.") and sip_host.startswith("127.")):
            raise ValueError("the lab listens on loopback only")
        self.rtp_ports = rtp_ports
        self.ami_user = ami_user
        self.ami_secret = ami_secret or secrets.token_urlsafe(18)
        self.die_with_parent = die_with_parent
        self.start_timeout = start_timeout
        self.inside = f"{INSIDE_BASE}/{instance}"
        self.dir = self.root / self.inside.lstrip("/")
        self._procs: dict[str, dict[str, Any]] = {}  # "asterisk" / "carrier:<name>" -> info
        self._invite_marks: dict[str, int] = {}
        self._carrier_media: dict[str, tuple[int, int]] = {}

    # ---------------------------------------------------------------- properties & paths

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def asterisk_conf_inside(self) -> str:
        return f"{self.inside}/etc/asterisk.conf"

    def carrier_log(self, name: str) -> Path:
        return self.dir / "carriers" / f"{name}.invites.log"

    @property
    def asterisk_output(self) -> Path:
        return self.dir / "asterisk.out"

    @property
    def asterisk_messages(self) -> Path:
        return self.dir / "log" / "messages.log"

    @property
    def secret_location(self) -> str:
        """Where the AMI secret can be read (mode 0600), for messages that must not show it."""
        return f"{self.state_file} (config.ami_secret)"

    def describe(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "root": str(self.root),
            "ami": f"{self.ami_host}:{self.ami_port}",
            "ami_user": self.ami_user,
            # never the secret itself (it is printed and logged): where to read it
            "ami_secret_in": self.secret_location,
            "sip": f"{self.sip_host}:{self.sip_port}",
            "carriers": {n: f"{h}:{p}" for n, (h, p) in self.carriers.items()},
            "config_dir": str(self.dir / "etc"),
            "log_dir": str(self.dir / "log"),
        }

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Lab:
        """Build the chroot if needed, write configs, start carriers and Asterisk, wait ready."""
        check_environment()
        ensure_tools()
        ensure_root(self.root)
        prepare_root(self.root)
        reap_stale(self.root)
        with _ports_lock(self.root):
            if self.state_file.exists():
                other = Lab.from_state(self.instance, root=self.root)
                if other.running():
                    raise LabError(
                        f"lab instance {self.instance!r} is already running "
                        f"(AMI {other.ami_host}:{other.ami_port}); stop it first"
                    )
                other.stop()
            self._reserve_ports(reserved_ports(self.root, skip=self.instance))
            self._write_configs()
            self._save_state()  # the reservation: other instances skip these ports from now
        try:
            for name in self.carriers:
                self.start_carrier(name)
            self.start_asterisk()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, *, keep_files: bool | None = None) -> None:
        """Stop everything this instance started; no process is left behind.

        The instance directory (configs, logs, INVITE logs) is deleted when ``keep_files`` is
        False; by default it is deleted for throw-away instances only, and never when
        ``CORECALL_LAB_KEEP`` is set.
        """
        errors = []
        for key in list(self._procs):
            info = self._procs.pop(key)
            try:
                _kill_group(info["pid"], info.get("start"))
            except LabError as exc:
                errors.append(str(exc))
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        if errors:
            raise LabError("; ".join(errors))
        if keep_files is None:
            keep_files = not self.die_with_parent
        if not keep_files and not os.environ.get("CORECALL_LAB_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def running(self) -> bool:
        return any(_alive(i["pid"], i.get("start")) for i in self._procs.values())

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- asterisk

    def start_asterisk(self) -> None:
        if "asterisk" in self._procs and _alive(self._procs["asterisk"]["pid"]):
            raise LabError("Asterisk is already running")
        out = open(self.asterisk_output, "ab")
        out.write(f"--- starting {time.strftime('%H:%M:%S')}\n".encode())
        out.flush()
        cmd = [
            "chroot", str(self.root),
            "/usr/bin/env", f"LD_PRELOAD={SHIM_INSIDE}",
            "asterisk", "-C", self.asterisk_conf_inside, "-f", "-n",
        ]  # fmt: skip
        proc = self._spawn("asterisk", cmd, out)
        out.close()
        try:
            self._wait_ready(proc)
        except BaseException:
            self.stop_asterisk()
            raise

    def stop_asterisk(self) -> None:
        info = self._procs.pop("asterisk", None)
        if info:
            _kill_group(info["pid"], info.get("start"))
        self._save_state()

    def restart_asterisk(self) -> None:
        self.stop_asterisk()
        self.start_asterisk()

    def cli(self, command: str, timeout: float = 10.0) -> str:
        """Run an Asterisk CLI command on this instance (asterisk -rx) and return its output."""
        cmd = [
            "chroot",
            str(self.root),
            "asterisk",
            "-C",
            self.asterisk_conf_inside,
            "-rx",
            command,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return result.stdout

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        """Log in to AMI as the corecall user and wait for FullyBooted."""
        deadline = time.monotonic() + self.start_timeout
        last_error = "no connection yet"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LabError(
                    f"Asterisk exited with status {proc.returncode} while starting.\n"
                    + self._asterisk_report()
                )
            try:
                if self._ami_fully_booted(min(2.0, deadline - time.monotonic())):
                    return
                last_error = "logged in, no FullyBooted yet"
            except OSError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.05)
        raise LabError(
            f"Asterisk did not become ready on AMI {self.ami_host}:{self.ami_port} within "
            f"{self.start_timeout:.0f} s ({last_error}).\n" + self._asterisk_report()
        )

    def _ami_fully_booted(self, timeout: float) -> bool:
        with socket.create_connection((self.ami_host, self.ami_port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            buf = b""
            login = (
                f"Action: Login\r\nUsername: {self.ami_user}\r\nSecret: {self.ami_secret}\r\n"
                "Events: on\r\n\r\n"
            )
            sock.sendall(login.encode())
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    break
                if not chunk:
                    break
                buf += chunk
                if b"Response: Error" in buf:
                    raise LabError(f"AMI login refused: {buf.decode(errors='replace')}")
                if b"Event: FullyBooted" in buf:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"Action: Logoff\r\n\r\n")
                    return True
        return False

    def _asterisk_report(self) -> str:
        return (
            f"--- {self.asterisk_output} (tail):\n{_tail(self.asterisk_output)}\n"
            f"--- {self.asterisk_messages} (tail):\n{_tail(self.asterisk_messages)}"
        )

    # ---------------------------------------------------------------- carriers

    def start_carrier(self, name: str) -> None:
        host, port = self.carriers[name]
        key = f"carrier:{name}"
        if key in self._procs and _alive(self._procs[key]["pid"]):
            raise LabError(f"carrier {name} is already running")
        media_port, control_port = self._carrier_media[name]
        log = self.carrier_log(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch()
        scenario = self.dir / "carriers" / f"{name}.xml"
        scenario.write_text(render_carrier_scenario(self.owned_caller_ids[name]))
        out = open(self.dir / "carriers" / f"{name}.out", "ab")
        cmd = [
            "sipp",
            "-sf", str(scenario),
            "-i", host, "-p", str(port), "-bind_local",
            "-mi", host, "-mp", str(media_port),
            "-ci", host, "-cp", str(control_port),
            "-nostdin",
            "-trace_logs", "-log_file", str(log), "-log_overwrite", "false",
            "-trace_err", "-error_file", str(self.dir / "carriers" / f"{name}.errors.log"),
            "-error_overwrite", "false",
            "-max_recv_loops", "1000",
            "-timer_resol", "1",
        ]  # fmt: skip
        proc = self._spawn(key, cmd, out)
        out.close()
        # sipp binds its socket within a few ms; make sure it did.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LabError(
                    f"sipp carrier {name} on {host}:{port} exited ({proc.returncode}):\n"
                    + _tail(self.dir / "carriers" / f"{name}.out")
                )
            if all(_udp_bound(host, p) for p in (port, media_port, control_port)):
                time.sleep(0.02)
                if proc.poll() is None:
                    return
            time.sleep(0.02)
        raise LabError(
            f"sipp carrier {name} did not bind {host}:{port}:\n"
            + _tail(self.dir / "carriers" / f"{name}.out")
        )

    def stop_carrier(self, name: str) -> None:
        info = self._procs.pop(f"carrier:{name}", None)
        if info:
            _kill_group(info["pid"], info.get("start"))
        self._save_state()

    def invites(self, carrier: str) -> list[Invite]:
        """INVITEs the carrier received since start (or the last clear_invites), in order."""
        return [Invite(*row[:2]) for row in self.invite_rows(carrier)]

    def invite_rows(self, carrier: str) -> list[tuple[str, str, str]]:
        """(ruri_user, from_user, sip_call_id) rows, like :meth:`invites`."""
        path = self.carrier_log(carrier)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        data = data[self._invite_marks.get(carrier, 0) :]
        rows = []
        for line in data.decode(errors="replace").splitlines():
            parts = line.strip().split("|")
            if len(parts) >= 4 and parts[0] == "INVITE":
                rows.append((parts[1], parts[2], parts[3]))
        return rows

    def clear_invites(self, carrier: str | None = None) -> None:
        for name in [carrier] if carrier else list(self.carriers):
            path = self.carrier_log(name)
            self._invite_marks[name] = path.stat().st_size if path.exists() else 0

    # ---------------------------------------------------------------- internals

    def _spawn(self, key: str, cmd: list[str], out: Any) -> subprocess.Popen[bytes]:
        popen = _SPAWNER.submit if self.die_with_parent else _call_now
        proc = popen(
            subprocess.Popen,
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if self.die_with_parent else None,
            close_fds=True,
        ).result()
        self._procs[key] = {"pid": proc.pid, "start": _proc_start_time(proc.pid), "cmd": cmd}
        self._save_state()
        return proc

    def _save_state(self) -> None:
        if not self.dir.exists():
            return
        state = {
            "owner": os.getpid() if self.die_with_parent else None,
            "owner_start": _proc_start_time(os.getpid()) if self.die_with_parent else None,
            "procs": self._procs,
            "config": {
                "ami_host": self.ami_host,
                "ami_port": self.ami_port,
                "sip_host": self.sip_host,
                "sip_port": self.sip_port,
                "carriers": {n: f"{h}:{p}" for n, (h, p) in self.carriers.items()},
                "carrier_media": {n: list(m) for n, m in self._carrier_media.items()},
                "owned_caller_ids": {n: list(o) for n, o in self.owned_caller_ids.items()},
                "rtp_ports": list(self.rtp_ports),
                "ami_user": self.ami_user,
                "ami_secret": self.ami_secret,
            },
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.state_file)

    @classmethod
    def from_state(cls, instance: str = DEFAULT_INSTANCE, *, root: Any = None) -> Lab:
        """Rebuild a handle on an instance started elsewhere (e.g. by ``corecall-lab up``)."""
        root = lab_root(root)
        path = root / INSIDE_BASE.lstrip("/") / instance / "state.json"
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise LabError(f"no lab instance {instance!r} found ({path}: {exc})") from exc
        cfg = state["config"]
        lab = cls(
            instance,
            root=root,
            ami_host=cfg["ami_host"],
            ami_port=cfg["ami_port"],
            sip_host=cfg["sip_host"],
            sip_port=cfg["sip_port"],
            carriers=cfg["carriers"],
            rtp_ports=tuple(cfg["rtp_ports"]),
            ami_user=cfg["ami_user"],
            ami_secret=cfg["ami_secret"],
        )
        lab._procs = state.get("procs", {})
        lab._carrier_media = {n: tuple(m) for n, m in cfg.get("carrier_media", {}).items()}
        if "owned_caller_ids" in cfg:
            lab.owned_caller_ids = {n: tuple(o) for n, o in cfg["owned_caller_ids"].items()}
        lab._owner = (state.get("owner"), state.get("owner_start"))
        lab.die_with_parent = state.get("owner") is not None  # throw-away instance
        return lab

    def ports(self) -> set[tuple[str, int]]:
        """Every (address, port) this instance listens on (0 = not chosen yet)."""
        ports = {(self.ami_host, self.ami_port), (self.sip_host, self.sip_port)}
        ports |= set(self.carriers.values())
        for name, media in self._carrier_media.items():
            host = self.carriers[name][0]
            ports |= {(host, media[0]), (host, media[0] + 2), (host, media[1])}
        return ports

    def _reserve_ports(self, reserved: set[tuple[str, int]]) -> None:
        """Choose the ports given as 0 and every carrier's media/control ports; check the
        ones given explicitly. Runs under :func:`_ports_lock`."""
        taken = set(reserved)

        def pick(host: str, kind: int, what: str, port: int = 0, span: int = 0) -> int:
            if port:
                clash = (host, port) in taken or not _bindable(host, port, kind)
                if clash:
                    raise LabError(f"{what} address {host}:{port} is in use")
                taken.add((host, port))
                return port
            low, high = PORT_RANGE
            for candidate in random.sample(range(low, high + 1 - span), high + 1 - span - low):
                group = [candidate, candidate + span] if span else [candidate]
                if any((host, c) in taken or not _bindable(host, c, kind) for c in group):
                    continue
                taken.update((host, c) for c in group)
                return candidate
            raise LabError(f"no free port for {what} on {host} in {low}-{high}")

        self.ami_port = pick(self.ami_host, socket.SOCK_STREAM, "AMI", self.ami_port)
        self.sip_port = pick(self.sip_host, socket.SOCK_DGRAM, "SIP", self.sip_port)
        for name, (host, port) in list(self.carriers.items()):
            sip = pick(host, socket.SOCK_DGRAM, f"carrier {name}", port)
            self.carriers[name] = (host, sip)
            # sipp binds media and media+2 (RTP of audio and video) and a control port.
            media = pick(host, socket.SOCK_DGRAM, f"carrier {name} media", span=2)
            control = pick(host, socket.SOCK_DGRAM, f"carrier {name} control")
            self._carrier_media[name] = (media, control)

    def _write_configs(self) -> None:
        for sub in ("etc", "run", "log", "spool", "db", "cache", "carriers"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        for old in [*(self.dir / "carriers").glob("*"), *(self.dir / "log").glob("*")]:
            if old.is_file():
                old.unlink()
        self._invite_marks.clear()
        moddirs = sorted(self.root.glob("usr/lib/*/asterisk/modules"))
        if not moddirs:
            raise LabError(f"no Asterisk modules directory in {self.root}")
        moddir = moddirs[0]
        trunks = [
            {"name": name, "provider_host": host, "provider_port": port}
            for name, (host, port) in self.carriers.items()
        ]
        etc = self.dir / "etc"
        files = {
            "asterisk.conf": render_asterisk_conf(
                self.inside, "/" + str(moddir.relative_to(self.root))
            ),
            "modules.conf": render_modules_conf(sorted(p.name for p in moddir.glob("*.so"))),
            "logger.conf": render_logger_conf(),
            "rtp.conf": render_rtp_conf(*self.rtp_ports),
            "pjsip.conf": asterisk_conf.render_pjsip(
                trunks, bind=f"{self.sip_host}:{self.sip_port}", media_address=self.sip_host
            ),
            "extensions.conf": asterisk_conf.render_extensions(),
            "manager.conf": asterisk_conf.render_manager(
                self.ami_user,
                self.ami_secret,
                permit="127.0.0.0/255.0.0.0",
                bind=self.ami_host,
                port=self.ami_port,
            ),
        }
        indications = self.root / "etc/asterisk/indications.conf"
        if indications.exists():
            files["indications.conf"] = indications.read_text()
        for name, text in files.items():
            (etc / name).write_text(text)
        os.chmod(etc / "manager.conf", 0o600)
        (self.dir / "asterisk.out").write_bytes(b"")


def _call_now(fn, *args, **kwargs) -> concurrent.futures.Future:
    future: concurrent.futures.Future = concurrent.futures.Future()
    future.set_result(fn(*args, **kwargs))
    return future


def _bindable(host: str, port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _ports_lock(root: Path) -> Iterator[None]:
    """One lock for every lab instance on this machine (they share the chroot): port choice
    and the state file that reserves the ports happen under it."""
    base = root / INSIDE_BASE.lstrip("/")
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".ports.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def reserved_ports(root: Any = None, *, skip: str | None = None) -> set[tuple[str, int]]:
    """(address, port) of every lab instance with a state file, whether or not its processes
    run right now (a restarting Asterisk keeps its ports). Stale instances are reaped first."""
    out: set[tuple[str, int]] = set()
    for name in instances(root):
        if name == skip:
            continue
        with contextlib.suppress(LabError, KeyError, TypeError, ValueError):
            out |= Lab.from_state(name, root=root).ports()
    return out


def render_carrier_scenario(owned: tuple[str, ...] | list[str]) -> str:
    """``asterisk/sipp/carrier.xml`` with this trunk's owned caller IDs and the pcap directory
    filled in. No owned number at all: every From is refused (403), as a carrier would."""
    alternation = "|".join(re.escape(n) for n in owned) or "-no-owned-number-"
    if not (PCAP_DIR / "dtmf_2833_1.pcap").exists():
        raise LabError(f"{PCAP_DIR}/dtmf_2833_1.pcap is missing: apt-get install sip-tester")
    return (
        SCENARIO.read_text()
        .replace("@OWNED_CALLER_IDS@", alternation)
        .replace("@PCAP_DIR@", str(PCAP_DIR))
    )


def _udp_bound(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def instances(root: Any = None) -> Iterator[str]:
    base = lab_root(root) / INSIDE_BASE.lstrip("/")
    if base.is_dir():
        for entry in sorted(base.iterdir()):
            if (entry / "state.json").exists():
                yield entry.name


def reap_stale(root: Any = None) -> None:
    """Stop instances whose owning process (a test run that died) is gone."""
    for name in instances(root):
        with contextlib.suppress(LabError, KeyError, TypeError):
            lab = Lab.from_state(name, root=root)
            owner, owner_start = getattr(lab, "_owner", (None, None))
            if owner and not _alive(owner, owner_start):
                _log(f"stopping stale lab instance {name!r} (owner {owner} is gone)")
                lab.stop()


def render_corecall_config(lab: Lab, data_dir: Path) -> str:
    """A corecall configuration (TOML) that places real calls through ``lab``: one Asterisk
    server, every carrier's trunk on the ``asterisk_ami`` driver, and a route per trunk
    whose caller IDs are the numbers that trunk's carrier accepts as owned (route M on
    ``corecall-main``, D on ``corecall-dev``)."""

    def q(value: Any) -> str:
        return json.dumps(str(value))  # a TOML basic string is a JSON string for these values

    codes = {"corecall-main": "M", "corecall-dev": "D"}
    lines = [
        f"# corecall configuration for lab instance {lab.instance!r}, written by",
        f"# `asterisk/lab.py up --instance {lab.instance} --corecall-config FILE`.",
        "# Try it: corecall --config FILE call --route M --agent-phone +12125550111 "
        "--target +12125550123",
        "# (the carriers' behaviour by the last 4 digits is in docs/asterisk-lab.md)",
        f"data_dir = {q(data_dir)}",
        "",
        "[plugins.asterisk_ami.servers.lab]",
        f"host = {q(lab.ami_host)}",
        f"port = {lab.ami_port}",
        f"username = {q(lab.ami_user)}",
        f"secret = {q(lab.ami_secret)}",
        'context = "corecall-bridge"',
        "",
        "# The lab's phones are sipp carriers, not people: calling hours are open round the",
        "# clock here so the example call connects at any hour (a real deployment keeps the",
        "# default window, see docs/compliance.md).",
        "[plugins.policy_calling_hours]",
        'opens = "00:00"',
        'closes = "24:00"',
    ]
    for index, name in enumerate(lab.carriers):
        trunk = name.removeprefix("corecall-") or name
        code = codes.get(name, f"R{index + 1}")
        owned = ", ".join(q(n) for n in lab.owned_caller_ids.get(name, ()))
        lines += [
            "",
            f"[trunks.{trunk}]",
            'driver = "asterisk_ami"',
            'server = "lab"',
            f"endpoint = {q(name)}",
            "",
            f"[routes.{code}]",
            f"trunk = {q(trunk)}",
            f"caller_ids = [{owned}]",
        ]
    return "\n".join(lines) + "\n"


def write_corecall_config(lab: Lab, path: str | os.PathLike[str]) -> Path:
    """Write :func:`render_corecall_config` to ``path`` (mode 0600: it holds the AMI secret);
    the data directory is ``<path without suffix>-data`` beside it."""
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_corecall_config(lab, path.with_name(path.stem + "-data"))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)
    return path


# ------------------------------------------------------------------------------ CLI


def _print_up(lab: Lab) -> None:
    d = lab.describe()
    print(f"corecall lab {d['instance']!r} is up ({asterisk_version(lab.root)})")
    print(f"  AMI        {d['ami']}  user {d['ami_user']}  secret in {d['ami_secret_in']}")
    print(f"  Asterisk   SIP {d['sip']}  config {d['config_dir']}")
    for name, addr in d["carriers"].items():
        owned = ", ".join(lab.owned_caller_ids.get(name, ())) or "none"
        print(f"  carrier    {name:<16} {addr}  owned caller IDs {owned}")
        print(f"             INVITE log {lab.carrier_log(name)}")
    where = "" if lab.instance == DEFAULT_INSTANCE else f" --instance {lab.instance}"
    print(f"  stop with: .venv/bin/corecall-lab down{where}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="corecall-lab", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "up", "down", "status", "cli", "render"])
    parser.add_argument("args", nargs="*", help="for cli: the Asterisk CLI command")
    parser.add_argument(
        "--instance", default=None, help=f"lab instance (default {DEFAULT_INSTANCE!r}; status: all)"
    )
    parser.add_argument(
        "--root", default=None, help=f"chroot (default $CORECALL_LAB_ROOT or {DEFAULT_ROOT})"
    )
    parser.add_argument("--ami-port", type=int, default=5038)
    parser.add_argument("--sip-port", type=int, default=5060)
    parser.add_argument("--secret", default=DEFAULT_SECRET)
    parser.add_argument(
        "--carrier",
        action="append",
        metavar="ENDPOINT=IP[:PORT]",
        help="carrier per trunk (default corecall-main=127.0.0.2:5060 corecall-dev=127.0.0.3:5060)",
    )
    parser.add_argument(
        "--owned",
        action="append",
        metavar="ENDPOINT=+E164[,+E164...]",
        help="caller IDs the operator owns on a trunk; its carrier answers 403 to any other "
        "From (default corecall-main=+12125550100,+12125550101 corecall-dev=+12125550199)",
    )
    parser.add_argument(
        "--corecall-config",
        metavar="FILE",
        help="up: also write a corecall configuration (TOML, mode 0600) that places real calls "
        "through this instance: both routes on the asterisk_ami driver, the owned caller IDs",
    )
    opts = parser.parse_args(argv)
    show_all = opts.instance is None
    opts.instance = opts.instance or DEFAULT_INSTANCE
    try:
        if opts.command == "render":
            for name, text in asterisk_conf.render_defaults().items():
                (HERE / name).write_text(text)
                print(f"wrote {HERE / name}")
        elif opts.command == "build":
            check_environment()
            root = ensure_root(opts.root)
            print(f"lab root ready: {root} ({asterisk_version(root)})")
        elif opts.command == "up":
            carriers = dict(c.split("=", 1) for c in opts.carrier) if opts.carrier else None
            owned = None
            if opts.owned:
                owned = dict(DEFAULT_OWNED_CALLER_IDS)
                for item in opts.owned:
                    name, _, numbers = item.partition("=")
                    owned[name] = tuple(n.strip() for n in numbers.split(",") if n.strip())
            lab = None
            with contextlib.suppress(LabError):
                existing = Lab.from_state(opts.instance, root=opts.root)
                if existing.running():
                    print(f"lab instance {opts.instance!r} is already up")
                    lab = existing
            if lab is None:
                lab = Lab(
                    opts.instance,
                    root=opts.root,
                    ami_port=opts.ami_port,
                    sip_port=opts.sip_port,
                    carriers=carriers,
                    owned_caller_ids=owned,
                    ami_secret=opts.secret,
                )
                lab.start()
            _print_up(lab)
            if opts.corecall_config:
                path = write_corecall_config(lab, opts.corecall_config)
                print(f"  corecall   configuration {path}: routes on this lab, e.g.")
                print(
                    f"             corecall --config {path} call --route M "
                    "--agent-phone +12125550111 --target +12125550123"
                )
        elif opts.command == "down":
            try:
                lab = Lab.from_state(opts.instance, root=opts.root)
            except LabError:
                print(f"lab instance {opts.instance!r} is not running")
                return 0
            lab.stop(keep_files=False)
            print(f"lab instance {opts.instance!r} stopped")
        elif opts.command == "status":
            names = list(instances(opts.root)) if show_all else [opts.instance]
            names = [
                n
                for n in names
                if (lab_root(opts.root) / INSIDE_BASE.lstrip("/") / n / "state.json").exists()
            ]
            if not names:
                print(
                    "no lab instance is running"
                    if show_all
                    else f"{opts.instance!r} is not running"
                )
                return 1
            for name in names:
                lab = Lab.from_state(name, root=opts.root)
                print(
                    f"{name}: AMI {lab.ami_host}:{lab.ami_port} user {lab.ami_user} "
                    f"secret in {lab.secret_location}"
                )
                for key, info in lab._procs.items():
                    state = "running" if _alive(info["pid"], info.get("start")) else "DEAD"
                    print(f"  {key:<24} {state} (pid {info['pid']})")
        elif opts.command == "cli":
            lab = Lab.from_state(opts.instance, root=opts.root)
            sys.stdout.write(lab.cli(" ".join(opts.args)))
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
