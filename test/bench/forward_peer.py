"""PyTorch eager peer for the forward-only evaluation bench (test/bench/forward-eval.ts).

The same float32 LLaMA-style model as lora_peer.py, without adapters, evaluated as the engine's
token log-probability graph does: one no-gradient forward over [batch, seq] ids, log-softmax over
the vocabulary, the target's log-probability per position (summed here, so the caller can check
both sides computed the same thing). Same line protocol as lora_peer.py, with {"cmd": "eval",
"n": k} → {"times_ms", "values": sums}.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
from lora_peer import Llama, decode, serve  # noqa: E402


def main():
    setup = json.loads(sys.stdin.readline())
    torch.set_num_threads(int(setup["threads"]))
    m = Llama(setup["model_dir"])
    ids = decode(setup["input_ids"])
    tgt = decode(setup["targets"])

    def evaluate():
        with torch.no_grad():
            lp = torch.log_softmax(m.logits(ids), dim=-1).gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
            return float(lp.sum())

    serve(m, {"eval": evaluate})


if __name__ == "__main__":
    main()
