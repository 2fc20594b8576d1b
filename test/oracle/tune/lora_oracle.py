"""PyTorch oracle for LoRA tuning (run by test/oracle/tune/lora.test.ts through run-python.ts).

Input (JSON on stdin): model_dir (HF folder: config.json + model.safetensors, LLaMA or GPT-2),
adapter_dir (PEFT: adapter_config.json + adapter_model.safetensors), data (JSONL of {"tokens"}),
seq_len, batch_size, steps, lr, betas, eps, weight_decay.
Output: the batch loss before each update and the adapter tensors after the last one.

Independent of the engine: batching follows CLI.md's contract (file order, batch_size at a time,
the last batch of an epoch smaller, truncation to seq_len tokens, inputs tokens[:-1], targets
tokens[1:], right padding masked, loss = mean token cross-entropy over unmasked targets); LoRA
follows PEFT (y = W x + (alpha/r) · B(A(x)), GPT-2 Conv1D base weights [in, out]); the optimizer
is torch.optim.AdamW. Everything runs in float64.
"""
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "models"))
from torch_util import read_input, write_output  # noqa: E402
from reference import causal_attention, gelu_new, hf_rope, layer_norm, read_safetensors, rms_norm, rotate_half  # noqa: E402

DT = torch.float64


def lora_delta(lora, module, h, scaling):
    if module not in lora:
        return 0.0
    A, B = lora[module]
    return (h @ A.T) @ B.T * scaling


def llama(cfg, W, lora, scaling, ids):
    d, H = cfg["hidden_size"], cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads", H)
    hd = d // H
    eps = cfg.get("rms_norm_eps", 1e-6)
    B_, T = ids.shape
    x = W["model.embed_tokens.weight"][ids]
    cos, sin = hf_rope(hd, cfg.get("rope_theta", 10000.0), torch.arange(T), DT)

    def lin(name, h):
        y = h @ W[name + ".weight"].T
        if name + ".bias" in W:
            y = y + W[name + ".bias"]
        return y + lora_delta(lora, name, h, scaling)

    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = lin(p + "self_attn.q_proj", h).view(B_, T, H, hd).transpose(1, 2)
        k = lin(p + "self_attn.k_proj", h).view(B_, T, Hkv, hd).transpose(1, 2)
        v = lin(p + "self_attn.v_proj", h).view(B_, T, Hkv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        a = causal_attention(q, k, v).transpose(1, 2).reshape(B_, T, H * hd)
        x = x + lin(p + "self_attn.o_proj", a)
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        x = x + lin(p + "mlp.down_proj", torch.nn.functional.silu(lin(p + "mlp.gate_proj", h)) * lin(p + "mlp.up_proj", h))
    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings", False) else W["lm_head.weight"]
    return x @ head.T


def gpt2(cfg, W, lora, scaling, ids):
    d, H = cfg["n_embd"], cfg["n_head"]
    hd = d // H
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    B_, T = ids.shape
    x = W["transformer.wte.weight"][ids] + W["transformer.wpe.weight"][torch.arange(T)]

    def conv1d(name, h):
        return h @ W[name + ".weight"] + W[name + ".bias"] + lora_delta(lora, name, h, scaling)

    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        h = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
        q, k, v = conv1d(p + "attn.c_attn", h).split(d, dim=2)
        q, k, v = (t.view(B_, T, H, hd).transpose(1, 2) for t in (q, k, v))
        a = causal_attention(q, k, v).transpose(1, 2).reshape(B_, T, d)
        x = x + conv1d(p + "attn.c_proj", a)
        h = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
        x = x + conv1d(p + "mlp.c_proj", gelu_new(conv1d(p + "mlp.c_fc", h)))
    x = layer_norm(x, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"], eps)
    return x @ W["transformer.wte.weight"].T


def batches(examples, batch_size, seq_len):
    """CLI.md batching without shuffling, cycling through epochs."""
    i = 0
    while True:
        if i >= len(examples):
            i = 0
        rows = examples[i : i + batch_size]
        i += len(rows)
        T = seq_len - 1
        ids = torch.zeros(len(rows), T, dtype=torch.int64)
        tgt = torch.zeros(len(rows), T, dtype=torch.int64)
        mask = torch.zeros(len(rows), T, dtype=DT)
        for b, toks in enumerate(rows):
            toks = toks[:seq_len]
            n = len(toks) - 1
            ids[b, :n] = torch.tensor(toks[:-1])
            tgt[b, :n] = torch.tensor(toks[1:])
            mask[b, :n] = 1.0
        yield ids, tgt, mask


def main():
    inp = read_input()
    torch.set_num_threads(1)
    with open(os.path.join(inp["model_dir"], "config.json")) as f:
        cfg = json.load(f)
    W = {k: v.to(DT) for k, v in read_safetensors(os.path.join(inp["model_dir"], "model.safetensors")).items()}
    with open(os.path.join(inp["adapter_dir"], "adapter_config.json")) as f:
        acfg = json.load(f)
    tensors = read_safetensors(os.path.join(inp["adapter_dir"], "adapter_model.safetensors"))
    lora = {}
    params = []
    for key in sorted(tensors):
        if key.endswith(".lora_A.weight"):
            module = key[len("base_model.model.") : -len(".lora_A.weight")]
            A = tensors[key].to(DT).clone().requires_grad_(True)
            B = tensors[key.replace("lora_A", "lora_B")].to(DT).clone().requires_grad_(True)
            lora[module] = (A, B)
            params += [A, B]
    scaling = acfg["lora_alpha"] / acfg["r"]
    forward = gpt2 if cfg["model_type"] == "gpt2" else llama
    with open(inp["data"]) as f:
        examples = [json.loads(line)["tokens"] for line in f if line.strip()]
    opt = torch.optim.AdamW(params, lr=inp["lr"], betas=tuple(inp["betas"]), eps=inp["eps"], weight_decay=inp["weight_decay"])
    losses = []
    gen = batches(examples, inp["batch_size"], inp["seq_len"])
    for _ in range(inp["steps"]):
        ids, tgt, mask = next(gen)
        logits = forward(cfg, W, lora, scaling, ids)
        logp = torch.log_softmax(logits, dim=-1)
        nll = -logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
        loss = (nll * mask).sum() / mask.sum()
        losses.append(float(loss))
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = {}
    for module, (A, B) in lora.items():
        out[f"base_model.model.{module}.lora_A.weight"] = A.detach()
        out[f"base_model.model.{module}.lora_B.weight"] = B.detach()
    write_output({"losses": losses, "adapter": out})


if __name__ == "__main__":
    main()
