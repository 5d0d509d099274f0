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
