"""PyTorch oracle for the model families (run with Debian's python3-torch).

  oracle.py hf OUT_DIR
      Writes tiny random models as Hugging Face directories (config.json + model.safetensors):
      llama_gqa (GQA, untied head), qwen2 (q/k/v biases, tied head), llama_bytes (multi-head, tied,
      259-token vocabulary for the byte-level tokenizer), gpt2 (Conv1D, tied head),
      and for each an expected.json: token batches with right padding, reference logits and the
      mean next-token NLL over unmasked targets.
  oracle.py llama2c CHECKPOINT.bin OUT_JSON --steps N --tokens 1,2,3 [--window L]
      Greedy generation from BOS (id 1) for N tokens and the mean NLL of the given token sequence
      (all windows of L tokens, lm-evaluation-harness rolling style, when --window is given).

Expected values are computed in float64 from the float32 weights that were written.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import gpt2_forward, llama2c_forward, llama_forward, read_llama2c, write_safetensors  # noqa: E402


def rand(gen, *shape, scale=0.2):
    return (torch.randn(*shape, generator=gen, dtype=torch.float32) * scale).contiguous()


def llama_weights(cfg, gen, biases):
    d, V = cfg["hidden_size"], cfg["vocab_size"]
    H, Hkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = d // H
    I = cfg["intermediate_size"]
    w = {"model.embed_tokens.weight": rand(gen, V, d, scale=0.5), "model.norm.weight": 1.0 + rand(gen, d, scale=0.1)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = 1.0 + rand(gen, d, scale=0.1)
        w[p + "post_attention_layernorm.weight"] = 1.0 + rand(gen, d, scale=0.1)
        w[p + "self_attn.q_proj.weight"] = rand(gen, H * hd, d)
        w[p + "self_attn.k_proj.weight"] = rand(gen, Hkv * hd, d)
        w[p + "self_attn.v_proj.weight"] = rand(gen, Hkv * hd, d)
        w[p + "self_attn.o_proj.weight"] = rand(gen, d, H * hd)
        if biases:
            w[p + "self_attn.q_proj.bias"] = rand(gen, H * hd, scale=0.1)
            w[p + "self_attn.k_proj.bias"] = rand(gen, Hkv * hd, scale=0.1)
            w[p + "self_attn.v_proj.bias"] = rand(gen, Hkv * hd, scale=0.1)
        w[p + "mlp.gate_proj.weight"] = rand(gen, I, d)
        w[p + "mlp.up_proj.weight"] = rand(gen, I, d)
        w[p + "mlp.down_proj.weight"] = rand(gen, d, I)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = rand(gen, V, d, scale=0.3)
    return w


def gpt2_weights(cfg, gen):
    d, V, P = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    w = {
        "transformer.wte.weight": rand(gen, V, d, scale=0.5),
        "transformer.wpe.weight": rand(gen, P, d, scale=0.1),
        "transformer.ln_f.weight": 1.0 + rand(gen, d, scale=0.1),
        "transformer.ln_f.bias": rand(gen, d, scale=0.1),
    }
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        w[p + "ln_1.weight"] = 1.0 + rand(gen, d, scale=0.1)
        w[p + "ln_1.bias"] = rand(gen, d, scale=0.1)
        w[p + "ln_2.weight"] = 1.0 + rand(gen, d, scale=0.1)
        w[p + "ln_2.bias"] = rand(gen, d, scale=0.1)
        w[p + "attn.c_attn.weight"] = rand(gen, d, 3 * d)
        w[p + "attn.c_attn.bias"] = rand(gen, 3 * d, scale=0.1)
        w[p + "attn.c_proj.weight"] = rand(gen, d, d)
        w[p + "attn.c_proj.bias"] = rand(gen, d, scale=0.1)
        w[p + "mlp.c_fc.weight"] = rand(gen, d, 4 * d)
        w[p + "mlp.c_fc.bias"] = rand(gen, 4 * d, scale=0.1)
        w[p + "mlp.c_proj.weight"] = rand(gen, 4 * d, d)
        w[p + "mlp.c_proj.bias"] = rand(gen, d, scale=0.1)
    return w


def batches(gen, vocab, lengths, T):
    """Right-padded token batch [B, T] (padding id 0) with its mask."""
    ids = torch.zeros(len(lengths), T, dtype=torch.int64)
    mask = torch.zeros(len(lengths), T, dtype=torch.int64)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(1, vocab, (n,), generator=gen)
        mask[b, :n] = 1
    return ids, mask


def mean_nll(logits, ids, mask):
    logp = torch.log_softmax(logits, dim=-1)
    tgt = ids[:, 1:]
    lp = logp[:, :-1].gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
    m = mask[:, 1:].to(logp.dtype)
    return float(-(lp * m).sum() / m.sum()), (lp * m)


def write_model(out, name, cfg, w, forward, gen):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(d, "model.safetensors"), w, {"format": "pt"})
    cases = []
    for lengths, T in (([12, 7, 12], 12), ([5], 5), ([16, 3], 16)):
        ids, mask = batches(gen, cfg["vocab_size"], lengths, T)
        logits = forward(cfg, w, ids, mask)
        nll, lp = mean_nll(logits, ids, mask)
        cases.append({
            "tokens": ids.tolist(),
            "mask": mask.tolist(),
            "logits_shape": list(logits.shape),
            "logits": logits.reshape(-1).tolist(),
            "token_logprobs": lp.tolist(),
            "nll": nll,
        })
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump({"cases": cases}, f)


def cmd_hf(out):
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(1234)
    llama_cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32, "intermediate_size": 48,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 97,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 500.0, "tie_word_embeddings": False,
        "hidden_act": "silu", "torch_dtype": "float32", "bos_token_id": 1, "eos_token_id": 2,
    }
    write_model(out, "llama_gqa", llama_cfg, llama_weights(llama_cfg, gen, False), llama_forward, gen)
    qwen_cfg = {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 32, "intermediate_size": 40,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "vocab_size": 89,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": True,
        "hidden_act": "silu", "torch_dtype": "float32", "use_sliding_window": False,
    }
    write_model(out, "qwen2", qwen_cfg, llama_weights(qwen_cfg, gen, True), llama_forward, gen)
    # Multi-head (no GQA), tied head, vocabulary of the byte-level tokenizer (256 bytes + 3 specials).
    bytes_cfg = dict(llama_cfg, num_key_value_heads=4, vocab_size=259, tie_word_embeddings=True, rope_theta=10000.0, bos_token_id=256, eos_token_id=257)
    write_model(out, "llama_bytes", bytes_cfg, llama_weights(bytes_cfg, gen, False), llama_forward, gen)
    gpt2_cfg = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 32, "n_head": 4, "n_layer": 2,
        "n_positions": 32, "n_ctx": 32, "vocab_size": 83, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
        "torch_dtype": "float32", "bos_token_id": 0, "eos_token_id": 0,
    }
    write_model(out, "gpt2", gpt2_cfg, gpt2_weights(gpt2_cfg, gen), gpt2_forward, gen)


def rolling_nll(cfg, w, tokens, L):
    """Total NLL and count of tokens[1:], in windows of at most L inputs (harness rolling style)."""
    n = len(tokens)
    total, count = 0.0, 0
    done = 0  # targets tokens[1..done] are scored
    while done < n - 1:
        end = min(n - 1, done + L)  # last target index of this window
        start = max(0, end - L)
        inp = torch.tensor(tokens[start:end])
        logp = torch.log_softmax(llama2c_forward(cfg, w, inp), dim=-1)
        for j in range(done + 1, end + 1):  # target index j, predicted at input position j-1-start
            total -= float(logp[j - 1 - start, tokens[j]])
            count += 1
        done = end
    return total, count


def cmd_llama2c(path, out, steps, tokens, window):
    cfg, w = read_llama2c(path)
    seq = [1]
    for _ in range(steps):
        logits = llama2c_forward(cfg, w, torch.tensor(seq))
        seq.append(int(torch.argmax(logits[-1])))
    logits = llama2c_forward(cfg, w, torch.tensor(tokens))
    logp = torch.log_softmax(logits, dim=-1)
    tgt = torch.tensor(tokens[1:])
    nll = float(-logp[:-1].gather(-1, tgt.unsqueeze(-1)).mean())
    res = {"greedy": seq, "nll": nll, "logits_last": logits[-1].tolist(), "config": cfg}
    if window:
        total, count = rolling_nll(cfg, w, tokens, window)
        res["rolling"] = {"window": window, "nll": total / count, "tokens": count}
    with open(out, "w") as f:
        json.dump(res, f)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hf")
    h.add_argument("out")
    l = sub.add_parser("llama2c")
    l.add_argument("checkpoint")
    l.add_argument("out")
    l.add_argument("--steps", type=int, default=64)
    l.add_argument("--tokens", required=True)
    l.add_argument("--window", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.cmd == "hf":
        cmd_hf(a.out)
    else:
        cmd_llama2c(a.checkpoint, a.out, a.steps, [int(t) for t in a.tokens.split(",")], a.window)


if __name__ == "__main__":
    main()
