"""A third-party route plugin works when pip-installed next to corecall, with no core change.

``tests/example_plugin`` is the ``corecall-route-night`` package that
``docs/writing-a-plugin.md`` walks through; the doc shows its files verbatim (checked
below). The module fixture creates a fresh virtualenv, makes corecall and its dependencies
importable there through a ``.pth`` file pointing at this venv's site-packages (so nothing
is downloaded), and installs a copy of the example into the fresh venv only, with a regular
(non-editable) ``pip install``. Then the CLI runs in the fresh venv (``python -m corecall``)
and, for contrast, in this venv, where the example is not installed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "tests" / "example_plugin"
DOC = ROOT / "docs" / "writing-a-plugin.md"
DIST = "corecall-route-night"

#: Files of the example that the doc shows verbatim (conftest.py only keeps corecall's own
#: test run out of the example's tests, which need the plugin installed).
EXAMPLE_FILES = ["pyproject.toml", "corecall_route_night/__init__.py", "tests/test_route_night.py"]

# A backticked caption line ending in ':', a blank line, then a fenced block.
_CAPTIONED = re.compile(
    r"^`(?P<caption>[^`\n]+)`[^\n]*:\n\n```[\w-]*\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL
)


def doc_blocks() -> dict[str, str]:
    """The doc's captioned code blocks, caption -> content (with its final newline)."""
    blocks: dict[str, str] = {}
    for m in _CAPTIONED.finditer(DOC.read_text(encoding="utf-8")):
        assert m["caption"] not in blocks, f"two blocks captioned {m['caption']!r}"
        blocks[m["caption"]] = m["body"]
    return blocks


def test_the_doc_shows_the_example_package_verbatim():
    blocks = doc_blocks()
    on_disk = sorted(
        p.relative_to(EXAMPLE).as_posix()
        for p in EXAMPLE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.name != "conftest.py"
    )
    assert on_disk == sorted(EXAMPLE_FILES), "a file was added to or removed from the example"
    for name in EXAMPLE_FILES:
        caption = f"corecall-route-night/{name}"
        assert caption in blocks, f"docs/writing-a-plugin.md does not show {name}"
        assert blocks[caption] == (EXAMPLE / name).read_text(encoding="utf-8"), (
            f"docs/writing-a-plugin.md and tests/example_plugin/{name} differ"
        )


# --------------------------------------------------------------------------- the fresh venv


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment minus anything that would leak the project venv in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CORECALL_") and k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    }
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1")
    env.update(extra)
    return env


def _run(cmd: list, *, env: dict | None = None, cwd: Path | None = None, check: bool = True):
    proc = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, env=env or _clean_env(),
        cwd=cwd, timeout=120,
    )  # fmt: skip
    if check and proc.returncode != 0:
        pytest.fail(f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def _probe(python: Path, code: str) -> dict:
    return json.loads(_run([python, "-c", code]).stdout)


def _can_build_wheels(python: Path) -> bool:
    """setuptools with bdist_wheel: built in from 70.1, else the ``wheel`` package."""
    code = (
        "import importlib.util as u, json; ok = u.find_spec('setuptools') is not None and ("
        "u.find_spec('setuptools.command.bdist_wheel') is not None "
        "or u.find_spec('wheel') is not None); print(json.dumps(ok))"
    )
    return _probe(python, code)


def build_wheel_without_backend(src: Path, out: Path) -> Path:
    """A wheel for the example, from its pyproject.toml, for when setuptools cannot build one.

    Python 3.11's venv ships setuptools 65.5 without the ``wheel`` package, which cannot
    build wheels offline; this writes the same wheel setuptools would (one pure package,
    its metadata and entry points) so the install itself is still a regular pip install.
    """
    pyproject = tomllib.loads((src / "pyproject.toml").read_text(encoding="utf-8"))
    project = pyproject["project"]
    name, version = project["name"], project["version"]
    stem = f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}"
    info = f"{stem}.dist-info"
    files: dict[str, bytes] = {}
    for package in pyproject["tool"]["setuptools"]["packages"]:
        for path in sorted((src / package).rglob("*.py")):
            files[path.relative_to(src).as_posix()] = path.read_bytes()
    meta = [
        "Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
        f"Summary: {project['description']}", f"Requires-Python: {project['requires-python']}",
        *(f"Requires-Dist: {dep}" for dep in project["dependencies"]),
    ]  # fmt: skip
    files[f"{info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: corecall-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    eps = "".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) + "\n"
        for group, entries in project["entry-points"].items()
    )
    files[f"{info}/entry_points.txt"] = eps.encode()

    def digest(data: bytes) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    record = [f"{path},sha256={digest(data)},{len(data)}" for path, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    wheel = out / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A fresh venv that sees corecall (and its plugins) but has the example installed too."""
    tmp = tmp_path_factory.mktemp("third_party")
    venv = tmp / "venv"
    base = getattr(sys, "_base_executable", None) or sys.executable
    _run([base, "-m", "venv", "--without-pip", venv])
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = "import json, sysconfig; print(json.dumps(sysconfig.get_paths()['purelib']))"
    site = Path(_probe(python, purelib))
    # addsitedir, not a bare path: it also runs this venv's .pth files, which is how the
    # editable installs of corecall and its plugin packages hook into the import system.
    parents = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "_corecall_project_venv.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in parents), encoding="utf-8"
    )
    before = _probe(python, (
        "import json, sys, corecall; from importlib import metadata; print(json.dumps({"
        "'prefix': sys.prefix, 'corecall': corecall.__file__,"
        "'plugins': sorted(e.name for e in metadata.entry_points(group='corecall'))}))"
    ))  # fmt: skip
    assert Path(before["prefix"]).resolve() == venv.resolve()
    # The project venv's entry points are visible through the .pth file...
    assert {"route_main", "store_sqlite"} <= set(before["plugins"]), before
    assert "route_night" not in before["plugins"]

    src = tmp / "corecall-route-night"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("__pycache__", "conftest.py"))
    pip = [python, "-m", "pip", "install", "--no-deps", "--no-index", "--no-cache-dir"]
    if _can_build_wheels(python):
        how = "pip install --no-build-isolation (built by setuptools)"
        _run([*pip, "--no-build-isolation", src])
    else:
        how = "pip install of a wheel written by build_wheel_without_backend"
        _run([*pip, build_wheel_without_backend(src, tmp)])

    after = _probe(python, (
        "import json, corecall_route_night as m; from importlib import metadata;"
        f"d = metadata.distribution({DIST!r});"
        "print(json.dumps({'module': m.__file__, 'version': d.version,"
        "'direct_url': d.read_text('direct_url.json')}))"
    ))  # fmt: skip
    # ...installed into the fresh venv, as a regular install (no editable direct_url).
    assert Path(after["module"]).resolve().is_relative_to(site.resolve()), after
    assert after["version"] == "0.1.0"
    assert '"editable": true' not in (after["direct_url"] or ""), after
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.distribution(DIST)  # and never into the project venv
    return SimpleNamespace(python=python, src=src, tmp=tmp, how=how)


@pytest.fixture
def cli(fresh, tmp_path):
    """Run corecall with a config that wires M and the doc's [trunks.night]/[routes.N]."""
    night = doc_blocks()["config.toml"] + "\n" + doc_blocks()["[plugins.route_night]"]
    config = tmp_path / "config.toml"
    config.write_text(
        f"data_dir = {json.dumps(str(tmp_path))}\n\n"
        f'[store]\nbackend = "sqlite"\nsqlite_path = {json.dumps(str(tmp_path / "db.sqlite3"))}\n\n'
        '[trunks.main]\ndriver = "simulated"\n\n'
        '[routes.M]\ntrunk = "main"\ncaller_ids = ["+12125550100"]\n\n' + night,
        encoding="utf-8",
    )
    env = _clean_env(CORECALL_DATA_DIR=str(tmp_path), HOME=str(tmp_path))

    def run(*args: str, python: Path = fresh.python, ok: bool | None = True):
        proc = _run([python, "-m", "corecall", "--config", config, *args], env=env, check=False)
        if ok is not None and (proc.returncode == 0) != ok:
            pytest.fail(
                f"corecall {' '.join(args)} ({fresh.how}) exited {proc.returncode}\n"
                f"{proc.stdout}\n{proc.stderr}"
            )
        return proc

    run.env, run.config = env, config
    return run


def plugin_infos(proc) -> dict[str, dict]:
    return {p["name"]: p for p in json.loads(proc.stdout)}


def test_plugins_list_shows_the_installed_example(cli):
    infos = plugin_infos(cli("plugins", "list", "--json"))
    night = infos["route_night"]
    assert night["distribution"] == DIST and night["version"] == "0.1.0"
    assert night["enabled"] is True and night["error"] is None
    assert night["hooks"] == [
        "corecall_plugin_options", "corecall_register_commands", "corecall_register_routes",
    ]  # fmt: skip
    assert night == json.loads(doc_blocks()["corecall plugins list --json"])
    assert infos["route_main"]["enabled"]  # the project's own plugins are still there


def test_route_n_is_offered_and_checks_numbers(cli, fresh):
    assert json.loads(cli("number", "check", "+12125550123", "--route", "N", "--json").stdout) == {
        "ok": True,
        "e164": "+12125550123",
    }
    assert "accepted +12125550123" in cli("number", "check", "+12125550123", "--route", "N").stdout
    code = (
        "import json, sys; from corecall.app import App; from corecall.config import load_config;"
        "r = App(load_config(sys.argv[1])).routes()['N'];"
        "print(json.dumps([r.name, r.button, r.plugin, r.trunk.name, list(r.caller_ids)]))"
    )
    proc = _run([fresh.python, "-c", code, cli.config], env=cli.env)
    assert json.loads(proc.stdout) == [
        "Night", "[Night Route]  🌙", "route_night", "night", ["+12125550150"],
    ]  # fmt: skip


def test_an_agent_can_select_route_n(cli):
    cli("agents", "add", "--telegram-id", "42", "--phone", "+12125550123")
    shown = "updated agent 42 (no name): phone +12125550123, route N, authorized no"  # the doc's
    assert cli("agents", "set-route", "42", "N").stdout.strip() == shown
    [agent] = json.loads(cli("agents", "list", "--json").stdout)
    assert (agent["telegram_id"], agent["route_code"]) == (42, "N")


def test_without_the_example_route_n_is_refused(cli):
    """The same config in this venv, where the plugin is not installed: its
    [plugins.route_night] table is refused (a typo in a plugin name must not pass
    silently); without that table, [routes.N] is ignored and N cannot be selected."""
    here = Path(sys.executable)
    assert "route_night" not in plugin_infos(cli("plugins", "list", "--json", python=here))
    proc = cli("agents", "list", python=here, ok=False)
    assert "[plugins.route_night] no installed plugin is named 'route_night'" in proc.stderr
    text = cli.config.read_text(encoding="utf-8")
    cli.config.write_text(text.split("[plugins.route_night]")[0], encoding="utf-8")
    cli("agents", "add", "--telegram-id", "42", "--phone", "+12125550123", python=here)
    proc = cli("agents", "set-route", "42", "N", python=here, ok=False)
    assert proc.returncode == 1
    assert "No route 'N'" in proc.stderr and "M (Main)" in proc.stderr
    proc = cli("number", "check", "+12125550123", "--route", "N", python=here, ok=False)
    assert proc.returncode == 1 and "not offered" in proc.stderr


def test_disabling_the_example_withdraws_route_n(cli):
    cli("agents", "add", "--telegram-id", "42", "--phone", "+12125550123")
    assert "disabled route_night" in cli("plugins", "disable", "route_night").stdout
    night = plugin_infos(cli("plugins", "list", "--json"))["route_night"]
    assert (night["enabled"], night["hooks"], night["error"]) == (False, [], None)
    proc = cli("agents", "set-route", "42", "N", ok=False)
    assert proc.returncode == 1 and "No route 'N'" in proc.stderr
    assert "enabled route_night" in cli("plugins", "enable", "route_night").stdout
    assert "route N" in cli("agents", "set-route", "42", "N").stdout


def test_the_examples_own_tests_pass(fresh, tmp_path):
    """The test file the doc shows, run in the fresh venv against the installed plugin."""
    proc = _run(
        [fresh.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", fresh.src / "tests"],
        env=_clean_env(HOME=str(tmp_path)), cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 passed" in proc.stdout


def test_the_examples_options_secret_and_command(cli, fresh):
    """The example's [plugins.route_night] table, its secret from the environment and its
    command, in the fresh venv, with no corecall edit."""
    cli("agents", "add", "--telegram-id", "42", "--phone", "+12125550123")
    cli("agents", "set-route", "42", "N")
    assert cli("night", "status").stdout == (
        "supervisor: Dana; pager token not set\nagents on route N: 1\n"
    )
    env = dict(cli.env, CORECALL_PLUGINS_ROUTE_NIGHT_PAGER_TOKEN="s3cret")
    proc = _run([fresh.python, "-m", "corecall", "--config", cli.config, "night", "status"],
                env=env)  # fmt: skip
    assert proc.stdout.startswith("supervisor: Dana; pager token set\n")
    assert "s3cret" not in proc.stdout + proc.stderr
    shown = json.loads(_run([fresh.python, "-m", "corecall", "--config", cli.config, "config",
                             "show", "--json"], env=env).stdout)  # fmt: skip
    assert shown["plugins.route_night.pager_token"] == {
        "value": "***", "source": "environment",
        "env": "CORECALL_PLUGINS_ROUTE_NIGHT_PAGER_TOKEN", "secret": True,
    }  # fmt: skip
    assert shown["plugins.route_night.supervisor"]["source"] == "file"


@pytest.mark.parametrize(
    ("line", "key", "expected"),
    [
        ('supervisr = "Dana"', "supervisr",
         "unknown key in [plugins.route_night]; expected one of: pager_token, routes, supervisor"),
        ("supervisor = 5", "supervisor", "expected a string, got 5"),
    ],
)  # fmt: skip
def test_a_wrong_plugin_table_names_file_key_and_expectation(cli, line, key, expected):
    text = cli.config.read_text(encoding="utf-8").replace('supervisor = "Dana"', line)
    cli.config.write_text(text, encoding="utf-8")
    proc = cli("night", "status", ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: {cli.config}: [plugins.route_night.{key}] {expected}"
    # The plugin list still works, so the plugin can be disabled while the table is wrong.
    assert plugin_infos(cli("plugins", "list", "--json"))["route_night"]["enabled"]


def test_a_plugin_is_type_checked_against_corecalls_annotations(tmp_path):
    """corecall ships py.typed: mypy over the example plugin passes, and the same plugin with a
    route code given as a number is caught before corecall ever loads it. Run as the docs
    say, from the plugin author's own directory (not the checkout, whose working directory
    let mypy find corecall) in this checkout's venv, where corecall is an editable install
    mypy cannot follow: with MYPYPATH pointing at the checkout (docs/writing-a-plugin.md)."""
    mypy = Path(sys.executable).parent / "mypy"
    if not mypy.exists():
        pytest.fail("mypy is not installed in the test environment (it is in the test extra)")
    package = EXAMPLE / "corecall_route_night"
    author = tmp_path / "author"
    author.mkdir()
    env = _clean_env(MYPYPATH=str(ROOT))
    ok = _run([mypy, "--cache-dir", tmp_path / "cache", package], env=env, cwd=author, check=False)
    assert ok.returncode == 0 and "Success: no issues found" in ok.stdout, ok.stdout
    broken = tmp_path / "corecall_route_night"
    broken.mkdir()
    source = (package / "__init__.py").read_text(encoding="utf-8")
    assert 'code="N",' in source
    (broken / "__init__.py").write_text(source.replace('code="N",', "code=78,"))
    bad = _run([mypy, "--cache-dir", tmp_path / "cache", broken], env=env, cwd=author, check=False)
    assert bad.returncode == 1 and 'Argument "code" to "RouteDefinition"' in bad.stdout, bad.stdout
