"""PyTorch oracle for multiple-choice scoring (lm-evaluation-harness semantics), run with Debian's
python3-torch. Reads JSON on stdin:
    {"model_dir": DIR, "items": [{"context": [ids], "continuations": [[ids]...], "choice_bytes": [n...], "label": i}]}
and prints {"sums": [[...]], "pred": [...], "pred_norm": [...], "acc": x, "acc_norm": y}: for each
choice the sum of log p(continuation token | everything before it) from the reference LLaMA forward
in float64, one request at a time (no batching, no padding), acc = argmax of the sums, acc_norm =
argmax of sum / bytes, ties to the lowest index (numpy argmax semantics via torch.argmax on CPU
returns the first maximal index).
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
from reference import llama_forward, read_safetensors  # noqa: E402


def first_argmax(xs):
    best = 0
    for i, x in enumerate(xs):
        if x > xs[best]:
            best = i
    return best


def main():
    req = json.load(sys.stdin)
    d = req["model_dir"]
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    w = read_safetensors(os.path.join(d, "model.safetensors"))
    sums, pred, pred_norm = [], [], []
    correct = correct_norm = 0
    for item in req["items"]:
        ctx = item["context"]
        row = []
        for cont in item["continuations"]:
            seq = ctx + cont
            ids = torch.tensor([seq[:-1]], dtype=torch.int64)
            logp = torch.log_softmax(llama_forward(cfg, w, ids), dim=-1)[0]
            s = 0.0
            for j in range(len(cont)):
                pos = len(ctx) - 1 + j  # input position that predicts cont[j]
                s += float(logp[pos, cont[j]])
            row.append(s)
        norm = [s / b for s, b in zip(row, item["choice_bytes"])]
        p, pn = first_argmax(row), first_argmax(norm)
        sums.append(row)
        pred.append(p)
        pred_norm.append(pn)
        correct += p == item["label"]
        correct_norm += pn == item["label"]
    n = len(req["items"])
    json.dump({"sums": sums, "pred": pred, "pred_norm": pred_norm, "acc": correct / n, "acc_norm": correct_norm / n}, sys.stdout)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
