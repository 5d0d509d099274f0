"""The real embedded model (SmolLM2-135M-Instruct in llama.cpp) through the whole graph.

Its labels are close to random; these tests check plumbing: a complete reply and
labels that belong to the taxonomy, in both modes, sync and streamed.
"""

import pytest

from mesa.taxonomy import ESCONV, MESC

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def agents():
    from mesa import SupportAgent

    # Generous deadlines: on a loaded shared CI machine the first embedded call has taken over 60 s (the
    # default); these tests check plumbing, the deadlines have their own tests (tests/test_deadlines.py).
    made = {mode: SupportAgent(mode=mode, call_timeout=600, turn_timeout=1800) for mode in ("stepwise", "fused")}
    yield made
    for agent in made.values():
        agent.close()


def _check(reply, taxonomy=MESC):
    assert reply.text.strip() and len(reply.text.split()) >= 3
    assert reply.user_emotion.label in taxonomy.names("user_emotion")
    assert reply.strategy.label in taxonomy.names("strategy")
    assert reply.system_emotion.label in taxonomy.names("system_emotion")


@pytest.mark.parametrize("mode", ["stepwise", "fused"])
def test_embedded_model_answers_a_support_turn(agents, mode):
    reply = agents[mode].respond("I failed my exam and I feel worthless.", thread_id=f"int-{mode}")
    _check(reply)
    follow = agents[mode].respond("My parents will be so disappointed.", thread_id=f"int-{mode}")
    _check(follow)
    assert len(agents[mode].history(f"int-{mode}")) == 4
    assert all("\n\n" not in r.text for r in (reply, follow))  # one paragraph, not a ramble


def test_embedded_model_streams(agents):
    events = list(agents["stepwise"].stream("Work has been overwhelming lately.", thread_id="int-stream"))
    tokens = [e for e in events if e.type == "token"]
    assert len(tokens) > 3
    assert events[-1].type == "reply"
    _check(events[-1].reply)


def test_embedded_model_with_esconv_labels():
    from mesa import SupportAgent

    with SupportAgent(taxonomy="esconv", mode="fused", call_timeout=600, turn_timeout=1800) as agent:
        _check(agent.respond("My best friend stopped talking to me."), ESCONV)


def test_embedded_crisis_turn_gets_the_protocol(agents):
    reply = agents["stepwise"].respond("i want to end my life, i have the pills ready", thread_id="int-crisis")
    assert reply.crisis
    assert agents["stepwise"].safety.check_crisis_reply(reply.text) == []


@pytest.mark.parametrize("cache_mb", [64, 0])
def test_embedded_model_resumes_a_shared_prompt_prefix(cache_mb):
    """With the prompt cache, a prompt that shares a long prefix with an earlier (not the last) call
    is read from where that call's state left off; without it, from the start."""
    from mesa.local import EmbeddedModel, smollm2_path

    model = EmbeddedModel(smollm2_path(), prompt_cache_mb=cache_mb)
    read: list[int] = []
    llama = model.llama
    original_eval = llama.eval

    def counting_eval(tokens):
        read.append(len(tokens))
        return original_eval(tokens)

    llama.eval = counting_eval
    instructions = {"role": "system", "content": "You are a calm, kind listener who answers in one short sentence. " * 12}
    ask = {"max_tokens": 4, "temperature": 0.0}
    try:
        model.complete([instructions, {"role": "user", "content": "I lost my keys again."}], ask)
        model.complete([{"role": "system", "content": "Say hello."}, {"role": "user", "content": "hi"}], ask)
        read.clear()
        model.complete([instructions, {"role": "user", "content": "My cat is ill and I'm worried."}], ask)
        prompt_read = read[0]
    finally:
        model.close()
    if cache_mb:
        assert prompt_read < 40  # only the new user message (and the chat template around it)
    else:
        assert prompt_read > 150  # the whole system prompt again
