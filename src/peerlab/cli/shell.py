"""`peerlab shell`: every CLI command at one prompt, with completion and history.

Completion walks the CLI's own command tree, so new commands complete without changes here
(it reads the tree by duck typing: typer has moved from click's classes to vendored ones),
and fills in what the running network knows: peer names (also in `A,B` lists), the files
a peer holds, scenario and snapshot names, local paths. History is kept in
`$PEERLAB_HOME/shell_history`. `use NAME` switches environment; `exit` or Ctrl-D leaves.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import typer
from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from peerlab.cli.common import console, env_name, print_error
from peerlab.cli.lazy import load_all
from peerlab.errors import PeerlabError, UsageError
from peerlab.names import check_name

BUILTINS = {
    "help": "help [COMMAND]: what a command does",
    "use": "use ENV: act on another environment",
    "exit": "leave the shell (Ctrl-D too)",
}
# Argument and option names that hold a peer, or a comma-separated list of peers.
_PEER_PARAMS = {
    "a",
    "b",
    "peer",
    "node",
    "src",
    "dst",
    "from_",
    "to",
    "source",
    "target",
    "name",
    "groups",
    "for_peers",
    "nodes",
}
_PATH_PARAMS = {"path", "paths", "run", "dest", "output", "out", "db", "results"}
CACHE_SECONDS = 2.0


@dataclass
class NetworkFacts:
    """What the running network tells completion, fetched at most every CACHE_SECONDS."""

    env: Callable[[], str]
    _peers: tuple[float, list[str]] = (0.0, [])
    _files: dict[str, tuple[float, list[str]]] = field(default_factory=dict)

    def _call(self, path: str, **kwargs: Any) -> Any:
        """A supervisor call from inside the prompt's event loop: made on a worker thread."""
        from peerlab.supervisor import remote

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(remote(self.env()).call, path, timeout=3, **kwargs).result()

    def peers(self) -> list[str]:
        fetched, names = self._peers
        if time.monotonic() - fetched > CACHE_SECONDS:
            try:
                names = [n["name"] for n in self._call("env.peers")]
            except PeerlabError:
                names = []
            self._peers = (time.monotonic(), names)
        return names

    def files(self, peer: str) -> list[str]:
        fetched, names = self._files.get(peer, (0.0, []))
        if time.monotonic() - fetched > CACHE_SECONDS:
            try:
                names = [f["name"] for f in self._call("adapter.file_list", a=peer)]
            except PeerlabError:
                names = []
            self._files[peer] = (time.monotonic(), names)
        return names

    def forget(self) -> None:
        self._peers = (0.0, [])
        self._files.clear()


def _choices(param: Any) -> list[str] | None:
    choices = getattr(getattr(param, "type", None), "choices", None)
    return [str(c) for c in choices] if choices else None


def _is_option(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "option"


def _is_argument(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "argument"


def _kind(path: tuple[str, ...], param: Any) -> str:
    """What a parameter's values are: peer, file, path, choice, scenario, snapshot, none."""
    name = str(getattr(param, "name", "") or "")
    if _choices(param):
        return "choice"
    if path[:1] == ("scenario",) and name == "name":
        return "scenario"
    if path[:1] == ("snapshot",) and name == "name":
        return "snapshot"
    if path[:2] == ("file", "cat") and name == "name":
        return "file"
    if name == "name" and path[:2] == ("peer", "add"):
        return "none"
    if name == "name" and path[:1] not in (("peer",),):
        return "none"
    if name in _PATH_PARAMS or type(getattr(param, "type", None)).__name__ == "Path":
        return "path"
    if name in _PEER_PARAMS:
        return "peer"
    return "none"


class PeerlabCompleter(Completer):
    """Completes commands, options and values from the CLI's command tree."""

    def __init__(self, root: Any, facts: NetworkFacts) -> None:
        load_all(root)  # commands are imported when they run; completion needs them all
        self.root = root
        self.facts = facts
        self._paths = PathCompleter(expanduser=True)

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        text = document.text_before_cursor
        try:
            words = shlex.split(text)
        except ValueError:
            words = text.split()
        if text and not text[-1].isspace() and words:
            current, done = words[-1], words[:-1]
        else:
            current, done = "", words
        if done and done[0] == "peerlab":
            done = done[1:]
        command: Any = self.root
        path: list[str] = []
        positional: list[str] = []
        pending: Any = None
        for word in done:
            if pending is not None:
                pending = None
                continue
            if word in _subcommands(command):
                command = _subcommands(command)[word]
                path.append(word)
                continue
            if word.startswith("-"):
                option = _option(command, word)
                if option is not None and not getattr(option, "is_flag", False) and "=" not in word:
                    pending = option
                continue
            positional.append(word)
        if pending is not None:
            yield from self._values(tuple(path), pending, current, done)
            return
        if current.startswith("-"):
            for param in command.params:
                if _is_option(param) and not getattr(param, "hidden", False):
                    for flag in [*param.opts, *param.secondary_opts]:
                        if flag.startswith(current):
                            yield Completion(
                                flag, -len(current), display_meta=getattr(param, "help", None) or ""
                            )
            return
        if _subcommands(command):
            for name, sub in sorted(_subcommands(command).items()):
                if name.startswith(current) and not getattr(sub, "hidden", False):
                    yield Completion(name, -len(current), display_meta=_short_help(sub))
            if not path:
                for name, meta in BUILTINS.items():
                    if name.startswith(current):
                        yield Completion(name, -len(current), display_meta=meta)
            return
        arguments = [p for p in command.params if _is_argument(p)]
        if not arguments:
            return
        index = len(positional)
        if index >= len(arguments):
            if arguments[-1].nargs != -1:
                return
            index = len(arguments) - 1
        yield from self._values(tuple(path), arguments[index], current, done)

    def _values(
        self, path: tuple[str, ...], param: Any, current: str, done: list[str]
    ) -> Iterable[Completion]:
        kind = _kind(path, param)
        if kind == "choice":
            yield from _starting(_choices(param) or [], current)
        elif kind == "peer":
            # `A,B,C`: complete the name after the last comma, without repeating names.
            head, _, last = current.rpartition(",")
            taken = set(head.split(",")) if head else set()
            for name in self.facts.peers():
                if name.startswith(last) and name not in taken:
                    yield Completion(name, -len(last), display_meta="peer")
        elif kind == "file":
            peers = [w for w in done if w in self.facts.peers()]
            if peers:
                yield from _starting(self.facts.files(peers[-1]), current, "file")
        elif kind == "scenario":
            from peerlab.scenarios import scenarios

            yield from (
                (Completion(s.name, -len(current), display_meta=s.summary[:60]))
                for s in scenarios().values()
                if s.name.startswith(current)
            )
        elif kind == "snapshot" and path[-1:] != ("save",):
            from peerlab.snapshot import list_snapshots

            yield from _starting([s["name"] for s in list_snapshots()], current, "snapshot")
        elif kind == "path":
            yield from self._paths.get_completions(Document(current), CompleteEvent())


def _starting(values: list[str], current: str, meta: str = "") -> Iterable[Completion]:
    for value in values:
        if value.startswith(current):
            yield Completion(value, -len(current), display_meta=meta)


def _subcommands(command: Any) -> dict[str, Any]:
    return dict(getattr(command, "commands", None) or {})


def _short_help(command: Any) -> str:
    short = getattr(command, "get_short_help_str", None)
    if callable(short):
        return str(short(60))
    return str(getattr(command, "help", "") or "").strip().split("\n")[0][:60]


def _option(command: Any, word: str) -> Any:
    flag = word.split("=", 1)[0]
    for param in command.params:
        if _is_option(param) and flag in [*param.opts, *param.secondary_opts]:
            return param
    return None


class Shell:
    """Runs command lines against the CLI in this process; errors print and the shell goes on."""

    def __init__(self, root: Any, env: str) -> None:
        self.root = root
        self.env = env
        self.facts = NetworkFacts(lambda: self.env)

    def run_line(self, line: str) -> bool:
        """Run one line; False when the shell should end."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            print_error(str(exc))
            return True
        if not words:
            return True
        if words[0] == "peerlab":
            words = words[1:]
        if not words:
            return True
        head = words[0]
        if head in ("exit", "quit"):
            return False
        if head == "use":
            if len(words) != 2:
                print_error(UsageError("use ENV takes one environment name"))
                return True
            try:
                self.env = check_name(words[1], "environment", "ENV", "default")
            except UsageError as exc:
                print_error(exc)
            else:
                self.facts.forget()
                console.print(f"acting on environment [bold]{self.env}[/]")
            return True
        if head == "shell":
            console.print("you are in the shell already")
            return True
        if head == "help":
            words = [*words[1:], "--help"]
        self._invoke(words)
        self.facts.forget()
        return True

    def _invoke(self, words: list[str]) -> None:
        try:
            self.root.main(
                args=["--env", self.env, *words], prog_name="peerlab", standalone_mode=False
            )
        except PeerlabError as exc:
            print_error(exc)
        except (typer.Exit, SystemExit):
            pass
        except (typer.Abort, KeyboardInterrupt):
            console.print("interrupted")
        except Exception as exc:
            # A usage error of the command line (click's or typer's own ClickException)
            # knows how to show itself; anything else is a bug and goes up.
            if not callable(getattr(exc, "show", None)) or not hasattr(exc, "exit_code"):
                raise
            show = exc.show  # type: ignore[attr-defined]
            show()

    def toolbar(self) -> str:
        peers = self.facts.peers()
        if not peers:
            return f" environment {self.env}: not running (`up --peers N` starts it)"
        return (
            f" environment {self.env}: peers {', '.join(peers[:20])}"
            + (" …" if len(peers) > 20 else "")
            + "   Tab completes · Ctrl-D leaves"
        )


def run_shell(env: str, history: History | None = None, **session: Any) -> None:
    """The prompt loop; `session` goes to PromptSession (tests pass input and output)."""
    from peerlab.cli import app

    root = typer.main.get_command(app)
    shell = Shell(root, env)
    prompt: PromptSession[str] = PromptSession(
        history=history or InMemoryHistory(),
        completer=PeerlabCompleter(root, shell.facts),
        auto_suggest=AutoSuggestFromHistory(),
        complete_while_typing=True,
        **session,
    )
    console.print(
        "peerlab shell: every command without `peerlab`; Tab completes; `help`, `use ENV`, `exit`."
    )
    while True:
        try:
            line = prompt.prompt(f"peerlab ({shell.env})> ", bottom_toolbar=shell.toolbar)
        except KeyboardInterrupt:
            continue
        except EOFError:
            return
        if not shell.run_line(line):
            return


def register(app: typer.Typer) -> None:
    @app.command()
    def shell(ctx: typer.Context) -> None:
        """An interactive shell over the running network: commands, completion, history."""
        from peerlab.home import peerlab_home

        home = peerlab_home()
        home.mkdir(parents=True, exist_ok=True)
        run_shell(env_name(ctx), FileHistory(str(home / "shell_history")))
