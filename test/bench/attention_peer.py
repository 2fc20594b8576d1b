"""PyTorch peer for the bench: times full train steps (zero_grad, forward, backward, clip,
AdamW, scheduler) of the attention block defined in test/oracle/train_oracle.py."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "oracle"))
import torch  # noqa: E402
from torch_util import blas_info, read_input, write_output  # noqa: E402
from train_oracle import attention_loss, lr_factor  # noqa: E402


def main():
    inp = read_input()
    torch.set_num_threads(int(inp["threads"]))
    cfg = inp["config"]
    params = {k: v.clone().requires_grad_(True) for k, v in inp["params"].items()}
    batch = inp["batch"]
    o = inp["optimizer"]
    names = list(params.keys())
    opt = torch.optim.AdamW([params[n] for n in names], lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"], weight_decay=o["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(o))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = attention_loss(params, batch, cfg)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([params[n] for n in names], inp["clip"])
        opt.step()
        sched.step()
        return loss.item()

    losses = []
    for _ in range(inp["warmup"]):
        losses.append(step())
    times = []
    for _ in range(inp["reps"]):
        t0 = time.perf_counter()
        losses.append(step())
        times.append((time.perf_counter() - t0) * 1000.0)
    write_output({"times_ms": times, "losses": losses, "blas": blas_info(), "threads": torch.get_num_threads()})


if __name__ == "__main__":
    main()
