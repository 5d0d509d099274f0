"""An end-to-end multimodal turn: a video (face + synthesised speech) through SupportAgent with the
embedded model and the real perception backends. The cues must land in the state and in the prompts
the LLM received."""

import _media as M
import pytest

from mesa import LLM, SupportAgent

pytestmark = pytest.mark.integration


class RecordingLLM(LLM):
    """The embedded model, keeping every prompt it was sent."""

    def __init__(self) -> None:
        super().__init__("mesa-local/smollm2")
        self.prompts: list[str] = []

    def _keep(self, messages):
        self.prompts.append("\n".join(str(m.get("content", "")) for m in messages))

    async def astructured(self, messages, response_model, **kwargs):
        self._keep(messages)
        return await super().astructured(messages, response_model, **kwargs)

    async def astream_text(self, messages, **kwargs):
        self._keep(messages)
        async for piece in super().astream_text(messages, **kwargs):
            yield piece


@pytest.mark.skipif(not M.have("espeak-ng", "ffmpeg"), reason="needs espeak-ng and ffmpeg (installed by .ci/run)")
def test_video_turn_through_the_agent_with_the_embedded_model(tmp_path):
    sentence = "I passed my driving test today and I am so happy."
    video = M.video(tmp_path, M.face_png(tmp_path), M.speech_wav(tmp_path, sentence))
    llm = RecordingLLM()
    with SupportAgent(model=llm, perception="default") as agent:
        reply = agent.respond(video=video, thread_id="mm")
        state = agent.state("mm")

    for cue in ("transcript", "face", "voice"):
        assert reply.perception[cue].ok, (cue, reply.perception[cue].error)
    transcript = reply.perception["transcript"].data["text"].lower()
    assert "driving test" in transcript
    assert "happy" in reply.perception["face"].clue
    assert reply.text and reply.strategy is not None
    # the transcript is the user's words; face and voice clues reached the label prompts
    assert "driving test" in state.history[0].text.lower()
    emotion_prompt = next(p for p in llm.prompts if "emotion the USER feels" in p)
    assert "driving test" in emotion_prompt.lower()
    assert f"face: {reply.perception['face'].clue}" in emotion_prompt
    assert f"voice: {reply.perception['voice'].clue}" in emotion_prompt
