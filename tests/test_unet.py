"""Factorized space-time U-Net (paper §2, §3): shapes, temporal masking, relative positions, conditioning."""

import pytest
import torch

from vdm.diffusion import CosineSchedule, diffusion_loss
from vdm.model import UNet3D, count_parameters, named_size
from vdm.model.layers import RelativePositionEmbedding, temporal_allowed


def _randomised(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Re-initialise zero-initialised layers so every path carries signal (tests only)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            if p.abs().sum() == 0:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return net.eval()


@pytest.fixture(scope="module")
def tiny_net():
    torch.manual_seed(0)
    return _randomised(UNet3D(named_size("tiny", num_classes=5, text_dim=12)))


def test_output_shapes(tiny_net):
    z = torch.randn(2, 1, 6, 16, 16)
    lam = torch.tensor([-3.0, 5.0])
    assert tiny_net(z, lam).shape == z.shape
    img = torch.randn(2, 1, 16, 16)
    assert tiny_net(img, lam).shape == img.shape  # an image batch is a 1-frame video


def test_temporal_allowed_mask():
    is_image = torch.tensor([[False, False, True, True]])
    allowed = temporal_allowed(is_image)[0]
    expected = torch.tensor(
        [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.bool
    )
    assert torch.equal(allowed, expected)


@torch.no_grad()
def test_image_frames_are_independent(tiny_net):
    """Joint training (paper §3): perturbing one appended image frame changes no other frame's output;
    perturbing a video frame changes other video frames' outputs but no image frame's."""
    g = torch.Generator().manual_seed(1)
    T_video, K = 4, 3
    z = torch.randn(1, 1, T_video + K, 16, 16, generator=g)
    lam = torch.tensor([1.0])
    is_image = torch.tensor([[False] * T_video + [True] * K])
    base = tiny_net(z, lam, is_image=is_image)

    def changed(out):  # per-frame max abs change, [T]
        return (out - base).abs().amax(dim=(0, 1, 3, 4))

    z_img = z.clone()
    z_img[:, :, T_video + 1] += torch.randn(1, 1, 16, 16, generator=g)
    d = changed(tiny_net(z_img, lam, is_image=is_image))
    assert d[T_video + 1] > 1e-3
    others = [i for i in range(T_video + K) if i != T_video + 1]
    assert float(d[others].max()) == 0.0

    z_vid = z.clone()
    z_vid[:, :, 1] += torch.randn(1, 1, 16, 16, generator=g)
    d = changed(tiny_net(z_vid, lam, is_image=is_image))
    assert float(d[[0, 2, 3]].min()) > 1e-4, "video frames must see each other through temporal attention"
    assert float(d[T_video:].max()) == 0.0, "image frames must not see video frames"

    # Without the mask, the same perturbation reaches the image frames (the test can fail).
    d = (tiny_net(z_vid, lam) - tiny_net(z, lam)).abs().amax(dim=(0, 1, 3, 4))
    assert float(d[T_video:].min()) > 1e-4


@torch.no_grad()
def test_image_frames_carry_their_own_conditioning(tiny_net):
    """Joint training: an appended image frame's output depends on its own label/caption (of the video
    it was taken from), not on the host video's; the video frames depend on the host's only."""
    g = torch.Generator().manual_seed(2)
    T_video, K = 3, 2
    z = torch.randn(1, 1, T_video + K, 16, 16, generator=g)
    lam = torch.tensor([0.5])
    is_image = torch.tensor([[False] * T_video + [True] * K])
    cls = torch.tensor([[3, 3, 3, 1, 4]])  # [B, T+K]: host class 3, image frames from classes 1 and 4
    base = tiny_net(z, lam, cls=cls, is_image=is_image)

    def changed(**kw):  # per-frame max abs change, [T+K]
        return (tiny_net(z, lam, is_image=is_image, **kw) - base).abs().amax(dim=(0, 1, 3, 4))

    d = changed(cls=torch.tensor([[0, 0, 0, 1, 4]]))  # another host class
    assert float(d[:T_video].min()) > 1e-4 and float(d[T_video:].max()) == 0.0
    d = changed(cls=torch.tensor([[3, 3, 3, 2, 4]]))  # another class for the first image frame only
    assert float(d[T_video]) > 1e-4 and float(d[[0, 1, 2, 4]].max()) == 0.0
    # per-example labels still work: the same label on every frame equals the [B] form
    same = tiny_net(z, lam, cls=torch.tensor([[3] * (T_video + K)]), is_image=is_image)
    assert torch.allclose(same, tiny_net(z, lam, cls=torch.tensor([3]), is_image=is_image), atol=1e-6)
    # captions per frame: [B, T+K, L, D] tokens
    text = torch.randn(1, L := 5, 12, generator=g)
    per_frame = text[:, None].repeat(1, T_video + K, 1, 1)  # [1, T+K, L, D]
    assert torch.allclose(tiny_net(z, lam, text=per_frame, is_image=is_image),
                          tiny_net(z, lam, text=text, is_image=is_image), atol=1e-6)
    other = per_frame.clone()
    other[:, T_video + 1] = torch.randn(L, 12, generator=g)
    d = (tiny_net(z, lam, text=other, is_image=is_image) - tiny_net(z, lam, text=per_frame, is_image=is_image))
    d = d.abs().amax(dim=(0, 1, 3, 4))
    assert float(d[T_video + 1]) > 1e-4 and float(d[:T_video + 1].max()) == 0.0
    # the null conditioning (cond_keep False) drops every frame's label
    keep = torch.tensor([False])
    assert torch.allclose(tiny_net(z, lam, cls=cls, is_image=is_image, cond_keep=keep),
                          tiny_net(z, lam, cls=torch.tensor([[0, 1, 2, 3, 4]]), is_image=is_image, cond_keep=keep))


@torch.no_grad()
def test_frames_mix_only_through_temporal_attention(tiny_net):
    """With every frame an independent image, each frame's output equals the network run on it alone."""
    g = torch.Generator().manual_seed(2)
    z = torch.randn(1, 1, 3, 16, 16, generator=g)
    lam = torch.tensor([0.5])
    out = tiny_net(z, lam, is_image=torch.ones(1, 3, dtype=torch.bool))
    for i in range(3):
        alone = tiny_net(z[:, :, i], lam)
        torch.testing.assert_close(out[:, :, i], alone, rtol=1e-4, atol=1e-5)


def test_relative_position_term_depends_only_on_distance():
    rel = RelativePositionEmbedding(max_distance=3, dim=4)
    table = rel(7)  # [T, T, d]
    for i in range(7):
        for j in range(7):
            k = max(-3, min(3, j - i))
            torch.testing.assert_close(table[i, j], rel.emb[k + 3])
    # shift invariance: (i, j) and (i + s, j + s) share the same embedding
    torch.testing.assert_close(table[:-2, :-2], table[2:, 2:])


@torch.no_grad()
def test_network_knows_frame_order(tiny_net):
    """Relative positions break permutation equivariance over frames (order is known)."""
    g = torch.Generator().manual_seed(3)
    z = torch.randn(1, 1, 5, 16, 16, generator=g)
    lam = torch.tensor([0.0])
    perm = torch.tensor([4, 2, 0, 3, 1])
    out_perm = tiny_net(z[:, :, perm], lam)
    assert (out_perm - tiny_net(z, lam)[:, :, perm]).abs().max() > 1e-4
    # with the relative embeddings zeroed the network is permutation-equivariant (the test can fail)
    zeroed = _randomised(UNet3D(named_size("tiny")))
    for m in zeroed.modules():
        if isinstance(m, RelativePositionEmbedding):
            m.emb.zero_()
    torch.testing.assert_close(zeroed(z[:, :, perm], lam), zeroed(z, lam)[:, :, perm], rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_null_conditioning(tiny_net):
    g = torch.Generator().manual_seed(4)
    z = torch.randn(2, 1, 2, 16, 16, generator=g)
    lam = torch.tensor([0.0, 2.0])
    cls = torch.tensor([1, 3])
    text = torch.randn(2, 5, 12, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)  # second caption empty
    uncond = tiny_net(z, lam)
    dropped = tiny_net(z, lam, cls=cls, text=text, text_mask=mask, cond_keep=torch.tensor([False, False]))
    torch.testing.assert_close(dropped, uncond)
    cond = tiny_net(z, lam, cls=cls, text=text, text_mask=mask)
    assert torch.isfinite(cond).all()
    assert (cond - uncond).abs().max() > 1e-4
    # cond_keep selects per example
    mixed = tiny_net(z, lam, cls=cls, text=text, text_mask=mask, cond_keep=torch.tensor([True, False]))
    torch.testing.assert_close(mixed[0], cond[0])
    torch.testing.assert_close(mixed[1], uncond[1])


def test_tiny_unet_memorises_fixed_batch():
    """Fixed x, t, ε: Adam drives the loss down by at least 10×."""
    torch.manual_seed(0)
    net = UNet3D(named_size("tiny", dropout=0.0))
    g = torch.Generator().manual_seed(5)
    x = torch.rand(2, 1, 4, 16, 16, generator=g) * 2 - 1
    eps = torch.randn(x.shape, generator=g)
    t = torch.tensor([0.3, 0.7])
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = CosineSchedule()
    losses = []
    for _ in range(150):
        loss = diffusion_loss(net, x, sched, prediction="eps", t=t, eps=eps).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])


def test_named_paper_sizes_build_on_meta():
    counts = {}
    for name in ("ucf101", "bair", "kinetics600", "text-small", "text-large-16x64", "text-large-9x128"):
        with torch.device("meta"):
            counts[name] = count_parameters(UNet3D(named_size(name)))
    assert counts["bair"] < counts["text-small"] < counts["ucf101"]
    assert all(n > 1e8 for n in counts.values())


def test_relative_key_logits_equal_the_table_form():
    rel = RelativePositionEmbedding(max_distance=2, dim=4)
    q = torch.randn(3, 2, 6, 4)  # [N, heads, T, d]
    expected = torch.einsum("nhid,ijd->nhij", q, rel(6))
    torch.testing.assert_close(rel.key_logits(q), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["conv", "linear"])
def test_memory_lean_norm_act_project_matches_plain_modules(kind):
    """The fused GroupNorm→SiLU→projection (recomputed in backward) gives the plain modules' values and gradients."""
    from vdm.model.layers import norm_act_project

    torch.manual_seed(0)
    gn = torch.nn.GroupNorm(4, 8).double()
    with torch.no_grad():
        gn.weight.normal_()
        gn.bias.normal_()
    proj = (torch.nn.Conv2d(8, 6, 3, padding=1) if kind == "conv" else torch.nn.Linear(8, 6)).double()
    h = torch.randn(2, 8, 5, 5, dtype=torch.float64, requires_grad=True)

    def plain(x):
        a = torch.nn.functional.silu(gn(x))
        return proj(a) if kind == "conv" else proj(a.permute(0, 2, 3, 1))

    params = [h, gn.weight, gn.bias, proj.weight, proj.bias]
    y_fused = norm_act_project(h, gn, proj)
    g_fused = torch.autograd.grad(y_fused.square().sum(), params)
    y_plain = plain(h)
    g_plain = torch.autograd.grad(y_plain.square().sum(), params)
    torch.testing.assert_close(y_fused, y_plain)
    for a, b in zip(g_fused, g_plain):
        torch.testing.assert_close(a, b)


def test_gradient_checkpointing_gives_identical_gradients():
    torch.manual_seed(0)
    plain = _randomised(UNet3D(named_size("tiny"))).train()
    remat = UNet3D(named_size("tiny", gradient_checkpointing=True)).train()
    remat.load_state_dict(plain.state_dict())
    z = torch.randn(1, 1, 3, 16, 16)
    lam = torch.tensor([0.7])
    grads = []
    for net in (plain, remat):
        net.zero_grad()
        net(z, lam).square().sum().backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_recompute_norm_act_option_changes_memory_not_numbers():
    """model.recompute_norm_act: True runs every GroupNorm→SiLU→projection block through the recomputing
    autograd function, False through the plain ops; outputs and gradients agree to float32 rounding
    (dropout on: the same draws)."""
    def graph_names(t):
        seen, stack, names = set(), [t.grad_fn], set()
        while stack:
            fn = stack.pop()
            if fn is None or fn in seen:
                continue
            seen.add(fn)
            names.add(type(fn).__name__)
            stack += [f for f, _ in fn.next_functions]
        return names

    z = torch.randn(1, 1, 3, 16, 16)
    lam = torch.tensor([0.7])
    outs, grads = [], []
    for recompute in (True, False):
        torch.manual_seed(0)
        net = _randomised(UNet3D(named_size("tiny", recompute_norm_act=recompute, dropout=0.1))).train()
        torch.manual_seed(1)
        y = net(z, lam)
        assert ("_NormActProjectBackward" in graph_names(y)) is recompute
        y.square().sum().backward()
        outs.append(y.detach())
        grads.append([p.grad.clone() for p in net.parameters()])
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-6)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
