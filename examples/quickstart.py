"""Quick start: one support turn, then a follow-up in the same conversation.

Runs offline on the embedded model (SmolLM2-135M-Instruct): no key, no network.
That model is tiny, so its labels are close to random and its replies generic;
pass a real model to see real support, e.g.

    python examples/quickstart.py --model openai/gpt-4o-mini
    python examples/quickstart.py --model ollama_chat/llama3.1
"""

import argparse

from mesa import SupportAgent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a LiteLLM model string (default: the embedded offline model)")
    parser.add_argument("--mode", default="stepwise", choices=["stepwise", "fused"])
    args = parser.parse_args()

    with SupportAgent(model=args.model, mode=args.mode) as agent:
        for text in ("I failed my exam and I feel worthless.", "Everyone else seems to cope so easily."):
            reply = agent.respond(text, thread_id="quickstart")
            print(f"user:           {text}")
            print(f"user emotion:   {label_of(reply.user_emotion)}")
            print(f"strategy:       {label_of(reply.strategy)}")
            print(f"system emotion: {label_of(reply.system_emotion)}")
            print(f"reply:          {reply.text}")
            for step, reason in reply.failed_steps.items():  # a step that failed leaves its label out, never the reply
                print(f"failed step:    {step}: {reason}")
            print(f"time:           {reply.timings['total']:.2f} s\n")


def label_of(prediction) -> str:
    """A step's label, or a dash when the step gave none (its reason is in ``reply.failed_steps``)."""
    return prediction.label if prediction is not None else "-"


if __name__ == "__main__":
    main()
