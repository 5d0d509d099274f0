"""The ``mesa`` command line: ``mesa chat``, ``mesa respond``, ``mesa serve``, and the evaluation commands.

Errors end the command with one line on stderr and a non-zero exit code (1 for a failed run, 2 for
bad arguments); ``MESA_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="mesa",
    help="Multimodal Emotional Support Agent: the SMES chain on any LiteLLM model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _check_mode(value: str) -> str:
    from mesa.graphs.smes import GRAPH_MODES

    if value not in GRAPH_MODES:
        raise typer.BadParameter(f"{value!r} is not one of: {', '.join(sorted(GRAPH_MODES))}")
    return value


def _check_taxonomy(value: str) -> str:
    from mesa.taxonomy import taxonomy_names

    if value.lower() in taxonomy_names():
        return value
    if value.lower().endswith(".json") and Path(value).is_file():
        return value
    raise typer.BadParameter(f"{value!r} is not one of: {', '.join(taxonomy_names())}, or an existing taxonomy .json file")


ModelOpt = Annotated[
    str | None, typer.Option("--model", "-m", help="LiteLLM model string; default: the embedded mesa-local/smollm2")
]
ModeOpt = Annotated[str, typer.Option("--mode", help="stepwise or fused", callback=_check_mode)]
TaxonomyOpt = Annotated[
    str, typer.Option("--taxonomy", help="mesc, esconv, or a taxonomy JSON file", callback=_check_taxonomy)
]
ThreadOpt = Annotated[
    str | None, typer.Option("--thread", help="conversation id; the same id continues a conversation")
]
MemoryOpt = Annotated[
    str | None, typer.Option("--memory", help="where conversations are kept: a SQLite file (or a database URI)")
]
PerceptionOpt = Annotated[
    bool, typer.Option("--perception/--no-perception", help="run the installed perception backends on media")
]


def _quiet_litellm() -> None:
    """Keep LiteLLM's own banners ("looks like a bug", debug hints) off the terminal: mesa reports errors itself."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "CRITICAL")
    # LiteLLM appends a "looks like a bug in LiteLLM ... file it" link to errors raised by custom providers
    # (mesa's embedded model is one): a missing extra is not a LiteLLM bug.
    os.environ.setdefault("LITELLM_DISABLE_BUG_REPORT_LINK", "true")
    import litellm

    litellm.suppress_debug_info = True
    litellm.set_verbose = False
    # instructor logs every failed attempt with the provider's full message (a traceback, for LiteLLM).
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm", "instructor"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _agent(model: str | None, mode: str, taxonomy: str, memory: str | None, perception: bool = False):
    _quiet_litellm()
    from mesa.agent import SupportAgent

    return SupportAgent(model=model, mode=mode, taxonomy=taxonomy, memory=memory, perception="default" if perception else None)


def _root_cause(exc: BaseException) -> BaseException:
    """The error to show: a missing extra anywhere in the chain says best what to do, else ``exc`` itself."""
    from mesa.errors import MissingExtraError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, MissingExtraError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return exc


def _one_line(exc: BaseException) -> str:
    """An error as one readable line: its kind and the first line of its message."""
    exc = _root_cause(exc)
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _is_reportable(exc: BaseException) -> bool:
    """Errors a user can act on (mesa's, a provider's, a missing package, bad input): no traceback for them."""
    from mesa.errors import MesaError

    if isinstance(exc, (MesaError, ImportError, OSError, ValueError, KeyError, TimeoutError)):
        return True
    # LiteLLM's and the OpenAI client's exceptions (authentication, rate limit, connection, ...).
    return type(exc).__module__.split(".", 1)[0] in ("litellm", "openai", "httpx", "instructor")


def _clean_errors(command: Any) -> Any:
    """Run ``command``; an error a user can act on ends it with one line on stderr and exit code 1."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except Exception as exc:
            if os.environ.get("MESA_DEBUG") or not _is_reportable(exc):
                raise
            typer.echo(f"error: {_one_line(exc)}", err=True)
            raise typer.Exit(1) from None

    return run


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mesa {_installed_version()}")
        raise typer.Exit()


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mesa-esc")
    except PackageNotFoundError:
        from mesa import __version__

        return __version__


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="print the version and exit", callback=_version, is_eager=True)] = False,
) -> None:
    """Multimodal Emotional Support Agent: the SMES chain on any LiteLLM model."""


@app.command()
@_clean_errors
def respond(
    text: Annotated[str | None, typer.Argument(help="what the user says")] = None,
    audio: Annotated[Path | None, typer.Option(help="the user's voice (audio file)")] = None,
    video: Annotated[Path | None, typer.Option(help="the user's face and voice (video file)")] = None,
    image: Annotated[Path | None, typer.Option(help="the user's face (image file)")] = None,
    model: ModelOpt = None,
    mode: ModeOpt = "stepwise",
    taxonomy: TaxonomyOpt = "mesc",
    thread: ThreadOpt = None,
    memory: MemoryOpt = None,
    perception: PerceptionOpt = True,
) -> None:
    """Answer one turn and print the reply as JSON."""
    if not any((text, audio, video, image)):
        raise typer.BadParameter("give the user's text, or --audio/--video/--image")
    has_media = any((audio, video, image))
    with _agent(model, mode, taxonomy, memory, perception and has_media) as agent:
        reply = agent.respond(text, audio=audio, video=video, image=image, thread_id=thread)
    typer.echo(reply.model_dump_json(indent=2))


class _Typewriter:
    """Prints streamed text as it comes, breaking lines only between words.

    A terminal wraps a long line wherever the edge falls, mid-word; so the column is tracked and a word
    that would cross the edge starts a new line instead.
    """

    def __init__(self, console: Any, prefix: str = "") -> None:
        self.console = console
        self.width = max(20, console.width)
        self.column = 0
        self.prefix = prefix

    def write(self, text: str) -> None:
        if self.prefix:
            text, self.prefix = self.prefix + text, ""
        for piece in re.split(r"(\s+)", text):
            if piece:
                self._piece(piece)

    def _piece(self, piece: str) -> None:
        if "\n" in piece:
            self._out("\n" * piece.count("\n"))
            self.column = 0
            return
        if piece.isspace():
            if self.column and self.column + len(piece) < self.width:
                self._out(piece)
            return  # a space at the edge (or at a line start) is dropped: the line break stands for it
        if self.column and self.column + len(piece) > self.width:
            self._out("\n")
            self.column = 0
        self._out(piece)

    def _out(self, text: str) -> None:
        # console.out writes as is: rich neither wraps nor styles it.
        self.console.out(text, end="", highlight=False)
        self.column += len(text)

    def end(self) -> None:
        self.console.out("")
        self.column = 0


def _chat_turn(console: Any, agent: Any, text: str, thread_id: str) -> None:
    """One turn of ``mesa chat``: a spinner until the reply starts, labels as they settle, the reply as written."""
    from rich.markup import escape

    writer = _Typewriter(console, prefix="mesa> ")
    started = False
    with console.status("[dim]mesa is thinking…[/dim]", spinner="dots") as status:
        for event in agent.stream(text, thread_id=thread_id):
            if event.type == "safety" and event.safety and event.safety.crisis:
                console.print(escape(f"[safety: {event.safety.level} · {event.safety.category}]"), style="bold red")
            elif event.type == "stage" and event.prediction is not None:
                console.print(escape(f"[{event.stage.replace('_', ' ')}: {event.prediction.label}]"), style="cyan")
            elif event.type == "token" and event.text:
                if not started:
                    status.stop()  # the spinner and the streamed text must not share the line
                    started = True
                writer.write(event.text)
            elif event.type == "reply" and event.reply is not None and not started:
                status.stop()  # nothing was streamed (a crisis reply, a scripted step): print it whole
                writer.write(event.reply.text)
                started = True
    writer.end()


@app.command()
@_clean_errors
def chat(
    model: ModelOpt = None,
    mode: ModeOpt = "stepwise",
    taxonomy: TaxonomyOpt = "mesc",
    thread: ThreadOpt = None,
    memory: MemoryOpt = None,
) -> None:
    """Chat in the terminal; each turn shows emotion, strategy and system emotion, then streams the reply.

    Type /quit (or end the input) to leave.
    """
    import uuid

    from rich.console import Console

    console = Console(highlight=False)
    errors = Console(stderr=True, highlight=False)
    thread_id = thread or uuid.uuid4().hex[:8]
    with _agent(model, mode, taxonomy, memory) as agent:
        console.print(f"[dim]mesa chat · model {agent.llm.model} · {mode} · thread {thread_id} · /quit to leave[/dim]")
        console.print("[dim]You are talking to an AI, not a person.[/dim]")
        while True:
            try:
                text = input("you> ").strip()
            except EOFError:
                break
            if not text:
                continue
            if text in ("/quit", "/exit"):
                break
            try:
                _chat_turn(console, agent, text, thread_id)
            except Exception as exc:  # one failed turn (provider down, timeout) must not end the chat
                if not _is_reportable(exc):
                    raise
                errors.print(f"error: {_one_line(exc)} (the turn was not answered; try again)", style="red", markup=False)
    console.print("[dim]bye[/dim]")


@app.command()
@_clean_errors
def serve(
    model: ModelOpt = None,
    mode: ModeOpt = "stepwise",
    taxonomy: TaxonomyOpt = "mesc",
    memory: MemoryOpt = None,
    host: Annotated[str, typer.Option(help="address to listen on; 127.0.0.1 keeps it to this machine")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on", min=1, max=65535)] = 8000,
    perception: PerceptionOpt = True,
    max_upload_mb: Annotated[float, typer.Option(help="largest accepted request (uploads), in MB", min=0.01)] = 25.0,
) -> None:
    """Serve a web chat page and an HTTP API (streaming) over one agent. Open http://HOST:PORT/."""
    from mesa.serve import run

    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: listening on {host}: anyone who can reach it can talk to the agent (no login)", err=True)
    with _agent(model, mode, taxonomy, memory, perception) as agent:
        run(agent, host=host, port=port, max_upload_bytes=int(max_upload_mb * 1024 * 1024))


def _register_eval_commands() -> None:
    try:
        from mesa.eval import cli as eval_cli
    except ImportError:  # the evaluation module is optional
        return
    for name in ("eval", "train", "export"):
        command = getattr(eval_cli, f"{name}_command", None)
        if command is not None:
            app.command(name)(command)


_register_eval_commands()


def main() -> None:
    """Entry point of the ``mesa`` command: one line per error, no traceback (unless ``MESA_DEBUG=1``)."""
    try:
        app(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("MESA_DEBUG") or not _is_reportable(exc):
            raise
        typer.echo(f"error: {_one_line(exc)}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
