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
            print(f"user emotion:   {reply.user_emotion.label}")
            print(f"strategy:       {reply.strategy.label}")
            print(f"system emotion: {reply.system_emotion.label}")
            print(f"reply:          {reply.text}")
            print(f"time:           {reply.timings['total']:.2f} s\n")


if __name__ == "__main__":
    main()
