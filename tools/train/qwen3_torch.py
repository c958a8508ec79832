"""A plain-PyTorch Qwen3 decoder for training: transformers' Qwen3ForCausalLM computation and
parameter names (tied embeddings), plus per-document attention masks and position resets for
packed rows. train.py copies its weights into transformers' class to save and evaluate them.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))  # [dim] f32
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h, self.kv, self.d = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        self.q_proj = nn.Linear(c.hidden_size, self.h * self.d, bias=False)
        self.k_proj = nn.Linear(c.hidden_size, self.kv * self.d, bias=False)
        self.v_proj = nn.Linear(c.hidden_size, self.kv * self.d, bias=False)
        self.o_proj = nn.Linear(self.h * self.d, c.hidden_size, bias=False)
        self.q_norm = RMSNorm(self.d, c.rms_norm_eps)
        self.k_norm = RMSNorm(self.d, c.rms_norm_eps)

    def forward(self, x, cos, sin, mask):
        # x [B, T, hidden]; cos/sin [B, 1, T, d]; mask [B, 1, T, T] bool (True = may attend)
        b, t, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(b, t, self.h, self.d)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(b, t, self.kv, self.d)).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv, self.d).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.h // self.kv  # query head i reads kv head i // rep, as transformers' repeat_kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.d ** -0.5)
        return self.o_proj(o.transpose(1, 2).reshape(b, t, self.h * self.d))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList([Layer(c) for _ in range(c.num_hidden_layers)])
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)


class Qwen3(nn.Module):
    """Qwen3ForCausalLM with tied embeddings; state_dict keys equal transformers' (no lm_head)."""

    def __init__(self, c, rope_theta):
        super().__init__()
        self.model = Body(c)
        self.head_dim = c.head_dim
        inv = 1.0 / (rope_theta ** (torch.arange(0, c.head_dim, 2, dtype=torch.float32) / c.head_dim))
        self.register_buffer("inv_freq", inv, persistent=False)  # [d/2] f32
        for m in self.modules():  # transformers' init: normal(0, 0.02), norms at one
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    @staticmethod
    def doc_layout(ids, eot):
        """Per-token document index and position inside the document for packed rows: a document
        ends at (and includes) each `eot`. ids [B, T] int64 -> (doc [B, T], pos [B, T])."""
        is_eot = (ids == eot).long()
        doc = torch.cumsum(is_eot, dim=1) - is_eot
        t = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
        new = torch.ones_like(ids, dtype=torch.bool)
        new[:, 1:] = doc[:, 1:] != doc[:, :-1]
        start = torch.cummax(torch.where(new, t, torch.zeros_like(t)), dim=1).values
        return doc, t - start

    def hidden(self, ids, eot=None):
        """Final-norm hidden states [B, T, hidden]. With `eot`, attention is causal inside each
        packed document only and positions restart at 0 per document; without, plain causal."""
        b, t = ids.shape
        if eot is None:
            pos = torch.arange(t, device=ids.device).expand(b, t)
            mask = torch.ones(t, t, dtype=torch.bool, device=ids.device).tril()[None, None]
        else:
            doc, pos = self.doc_layout(ids, eot)
            causal = torch.ones(t, t, dtype=torch.bool, device=ids.device).tril()
            mask = ((doc[:, :, None] == doc[:, None, :]) & causal)[:, None]
        freqs = pos[..., None].float() * self.inv_freq  # [B, T, d/2]
        emb = torch.cat((freqs, freqs), dim=-1)[:, None]  # [B, 1, T, d]
        x = self.model.embed_tokens(ids)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)  # f32, as transformers under autocast
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return self.model.norm(x)

    def logits(self, h):
        return h @ self.model.embed_tokens.weight.t()
