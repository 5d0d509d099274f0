"""The ``mesa`` command line: ``mesa chat``, ``mesa respond``, and the evaluation commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="mesa",
    help="Multimodal Emotional Support Agent: the SMES chain on any LiteLLM model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="LiteLLM model string; default: the embedded mesa-local/smollm2")]
ModeOpt = Annotated[str, typer.Option("--mode", help="stepwise or fused")]
TaxonomyOpt = Annotated[str, typer.Option("--taxonomy", help="mesc, esconv, or a taxonomy JSON file")]
ThreadOpt = Annotated[Optional[str], typer.Option("--thread", help="conversation id; the same id continues a conversation")]
MemoryOpt = Annotated[Optional[Path], typer.Option("--memory", help="SQLite file that keeps conversations across runs")]
PerceptionOpt = Annotated[bool, typer.Option("--perception/--no-perception", help="run the installed perception backends on media")]


def _agent(model: str | None, mode: str, taxonomy: str, memory: Path | None, perception: bool = False):
    from mesa.agent import SupportAgent

    return SupportAgent(model=model, mode=mode, taxonomy=taxonomy, memory=memory, perception="default" if perception else None)


@app.command()
def respond(
    text: Annotated[Optional[str], typer.Argument(help="what the user says")] = None,
    audio: Annotated[Optional[Path], typer.Option(help="the user's voice (audio file)")] = None,
    video: Annotated[Optional[Path], typer.Option(help="the user's face and voice (video file)")] = None,
    image: Annotated[Optional[Path], typer.Option(help="the user's face (image file)")] = None,
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


def _label(prediction) -> str:
    return prediction.label if prediction is not None else "-"


@app.command()
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
    from rich.markup import escape

    console = Console(highlight=False)
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
            started = False
            for event in agent.stream(text, thread_id=thread_id):
                if event.type == "safety" and event.safety and event.safety.crisis:
                    console.print(escape(f"[safety: {event.safety.level} · {event.safety.category}]"), style="bold red")
                elif event.type == "stage" and event.prediction is not None:
                    console.print(escape(f"[{event.stage.replace('_', ' ')}: {event.prediction.label}]"), style="cyan")
                elif event.type == "token" and event.text:
                    if not started:
                        console.print("mesa> ", end="")
                        started = True
                    console.print(event.text, end="", markup=False)
            console.print()
    console.print("[dim]bye[/dim]")


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
    """Entry point of the ``mesa`` command."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
