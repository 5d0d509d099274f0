"""The public API is frozen: adding or removing a name is a deliberate change to this list."""

import subprocess
import sys

import mesa

PUBLIC = [
    "AgentClosedError", "ESCONV", "InvalidThreadIdError", "LLM", "LLMError", "Label", "MESC", "MediaRef", "MesaError", "Message", "MissingExtraError",
    "PerceptionResult", "Prediction", "PromptSet", "Reply", "SafetyAssessment", "SafetyPolicy", "StreamEvent",
    "StructuredOutputError", "SupportAgent", "SupportContext", "SupportState", "Taxonomy", "Turn", "__version__",
    "build_graph", "compile_graph", "get_taxonomy", "register_taxonomy",
    # reliability (issue 9): deadlines and input bounds
    "InputTooLargeError", "LLMTimeoutError", "TurnTimeoutError",
]


def test_all_is_frozen():
    assert sorted(mesa.__all__) == sorted(PUBLIC)


def test_every_public_name_resolves():
    for name in mesa.__all__:
        assert getattr(mesa, name) is not None, name


def test_unknown_attribute_raises():
    try:
        mesa.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_pulls_in_no_heavy_module():
    code = (
        "import sys, mesa, mesa.graphs.context, mesa.tools, mesa.safety, mesa.eval\n"
        "heavy = [m for m in ('litellm','torch','llama_cpp','whisper','faster_whisper','deepface','transformers',"
        "'tensorflow','cv2','sklearn','sentence_transformers','librosa') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_new_errors_sit_under_mesa_error():
    assert issubclass(mesa.LLMTimeoutError, mesa.LLMError) and issubclass(mesa.LLMTimeoutError, TimeoutError)
    assert issubclass(mesa.TurnTimeoutError, mesa.MesaError) and issubclass(mesa.TurnTimeoutError, TimeoutError)
    assert issubclass(mesa.InputTooLargeError, mesa.MesaError)


# The submodules whose names moved in issue 13's refactor, frozen too (a change here is deliberate; see CHANGELOG).
SUBMODULES = {
    "mesa.graphs": [
        "Demonstration", "DemonstrationSource", "GRAPH_MODES", "Insert", "LabelClassifier", "StrategyPolicy", "SupportContext",
        "build_fused_graph", "build_graph", "build_stepwise_graph", "compile_graph", "insert_node", "nodes", "register_graph_mode",
    ],
    "mesa.llm": [
        "DEFAULT_CALL_TIMEOUT", "DEFAULT_MODEL", "LLM", "PROVIDERS", "STRUCTURED_MODES", "import_litellm", "register_provider",
        "register_structured_mode", "run_sync",
    ],
    "mesa.safety": [
        "CrisisContact", "DISCLOSURE_TEXT", "EscalationEvent", "EscalationHook", "Finding", "LEVELS", "LocaleContacts",
        "REQUIRED_ELEMENTS", "RiskPattern", "RuleEngine", "SafetyJudgement", "SafetyPolicy", "assess_rules", "crisis_contacts",
        "load_contact_table", "missing_crisis_elements", "normalize", "resolve_locale",
    ],
    "mesa.bridge": ["END", "LoopThread", "iterate_sync", "next_or_end", "run_sync"],
    "mesa.cache": ["DiskCache", "PerceptionCache", "default_cache_dir", "resolve_cache"],
    "mesa.custom_provider": ["Answer", "Answerer", "custom_provider"],
    "mesa.fingerprint": ["fingerprint", "is_secret"],
}


def test_moved_submodule_apis_are_frozen():
    import importlib

    for name, expected in SUBMODULES.items():
        assert sorted(importlib.import_module(name).__all__) == sorted(expected), name


def test_settings_are_one_frozen_object():
    import dataclasses

    from mesa.testing import ScriptedModel

    context = mesa.SupportContext(llm=ScriptedModel().as_llm())
    try:
        context.history_window = 3
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError("SupportContext must be frozen")
    agent = mesa.SupportAgent(model=ScriptedModel(), classifier=None)
    try:
        assert agent.llm is agent.settings.llm and agent.context("t") == dataclasses.replace(agent.settings, thread_id="t")
        try:
            agent.history_window = 3
        except AttributeError as exc:
            assert "dataclasses.replace" in str(exc)
        else:
            raise AssertionError("a setting is changed through agent.settings")
    finally:
        agent.close()
