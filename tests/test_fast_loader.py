"""The batch augmentation is the torchvision recipe, statistically; the loader is seeded and complete."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode

from cv_helpers.fast_loader import BatchAugment, FastLoader
from cv_helpers.transforms import AUGMENTATIONS, Augmentation, make_test_transform, make_train_transform, unnormalize


def _images(n: int, side: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_no_augmentation_equals_torchvision_test_transform_exactly():
    images = _images(4)
    fast = BatchAugment(Augmentation())(images, _generator())
    reference = torch.stack([make_test_transform()(Image.fromarray(im.permute(1, 2, 0).numpy())) for im in images])
    assert torch.equal(fast, reference)


def test_horizontal_flip_rate_is_the_recipe_probability():
    image = _images(1).expand(4000, -1, -1, -1)
    out = BatchAugment(Augmentation(hflip=0.5))(image, _generator())
    flipped_reference = BatchAugment(Augmentation())(image[:1].flip(3), _generator())
    flipped = (out == flipped_reference).flatten(1).all(1)
    assert 0.46 < flipped.float().mean() < 0.54


def test_vertical_flip_flips_rows():
    image = _images(1)
    out = BatchAugment(Augmentation(vflip=1.0))(image, _generator())
    assert torch.equal(out, BatchAugment(Augmentation())(image.flip(2), _generator()))


def test_crop_offsets_are_uniform_over_the_padding_window():
    # A single bright pixel at the centre reveals each image's shift.
    image = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    image[:, :, 16, 16] = 255
    out = BatchAugment(Augmentation(crop_padding=4))(image.expand(9000, -1, -1, -1), _generator())
    rows, cols = torch.nonzero(out[:, 0] > 0.5, as_tuple=True)[1:]
    shifts = (rows - 16).numpy()
    assert len(shifts) == 9000
    assert set(np.unique(shifts)) == set(range(-4, 5))
    assert np.bincount(shifts + 4).min() > 9000 / 9 * 0.85       # each of the 9 offsets about 1/9
    assert abs(np.corrcoef(shifts, (cols - 16).numpy())[0, 1]) < 0.05


def test_crop_fills_the_border_with_zeros_like_torchvision():
    image = torch.full((500, 3, 32, 32), 255, dtype=torch.uint8)
    out = unnormalize(BatchAugment(Augmentation(crop_padding=4))(image, _generator()))
    black_rows = (out[:, 0].amax(dim=2) == 0).sum(1)
    assert black_rows.max() == 4 and black_rows.min() == 0


@pytest.mark.parametrize("name", ["brightness", "contrast", "saturation"])
def test_colour_jitter_factor_stays_in_its_range(name):
    image = torch.full((2000, 3, 32, 32), 100, dtype=torch.uint8)
    image[:, 0] = 150                                   # some colour so saturation has an effect
    out = unnormalize(BatchAugment(Augmentation(**{name: 0.2}))(image, _generator()))
    base = unnormalize(BatchAugment(Augmentation())(image[:1], _generator()))
    change = (out[:, 0, 0, 0] - base[0, 0, 0, 0]).abs()
    assert change.max() > 0.01                         # it does something
    reference = {"brightness": 150 / 255 * 0.2}.get(name, (150 - 100) / 255 * 0.2 + 0.01)
    assert change.max() <= reference + 1e-4            # but never beyond factor 1 +- 0.2


@pytest.mark.parametrize("name, adjust", [("brightness", TF.adjust_brightness), ("contrast", TF.adjust_contrast),
                                          ("saturation", TF.adjust_saturation)])
def test_each_jittered_image_is_torchvisions_adjustment_for_a_factor_in_range(name, adjust):
    images = _images(200)
    out = unnormalize(BatchAugment(Augmentation(**{name: 0.3}))(images, _generator()))
    candidate_factors = torch.linspace(0.7, 1.3, 601)
    for image, result in zip(images[:20].float() / 255, out[:20]):
        errors = torch.stack([(adjust(image, float(f)) - result).abs().max() for f in candidate_factors])
        assert errors.min() < 2e-3          # some factor in [0.7, 1.3] reproduces torchvision's output


def test_sharpness_matches_torchvision_adjust_sharpness():
    images = _images(3)
    out = unnormalize(BatchAugment(Augmentation(sharpness=2.0, sharpness_p=1.0))(images, _generator()))
    expected = TF.adjust_sharpness(images.float() / 255, 2.0)
    assert torch.allclose(out, expected, atol=1e-5)


def test_rotation_by_small_angles_keeps_the_centre_pixel():
    images = _images(64)
    out = unnormalize(BatchAugment(Augmentation(rotation=10))(images, _generator()))
    assert torch.allclose(out[:, :, 15:17, 15:17], images[:, :, 15:17, 15:17].float() / 255)
    assert not torch.allclose(out, images.float() / 255)


def test_pil_and_fast_recipes_use_the_same_steps():
    names = [type(step).__name__ for step in make_train_transform("q1.3").transforms]
    assert names == ["RandomHorizontalFlip", "RandomVerticalFlip", "RandomRotation", "RandomAdjustSharpness",
                     "RandomCrop", "ToTensor", "Normalize"]
    assert [type(s).__name__ for s in make_train_transform("q1.4").transforms][:3] == [
        "RandomHorizontalFlip", "RandomCrop", "ColorJitter"]


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), side=st.sampled_from([8, 32, 96]), hflip=st.floats(0, 1), vflip=st.floats(0, 1),
       rotation=st.floats(0, 180), sharpness=st.floats(0, 4), padding=st.integers(0, 6),
       jitter=st.floats(0, 0.9), seed=st.integers(0, 2**31))
def test_any_valid_recipe_gives_normalised_images_of_the_input_shape(n, side, hflip, vflip, rotation, sharpness,
                                                                     padding, jitter, seed):
    recipe = Augmentation(hflip=hflip, vflip=vflip, rotation=rotation, sharpness=sharpness, sharpness_p=0.5,
                    crop_padding=padding, brightness=jitter, contrast=jitter, saturation=jitter)
    out = BatchAugment(recipe)(_images(n, side, seed % 1000), _generator(seed))
    assert out.shape == (n, 3, side, side) and out.dtype == torch.float32
    assert out.min() >= -1.0 and out.max() <= 1.0 and torch.isfinite(out).all()


def test_loader_covers_every_sample_once_per_epoch_in_a_seeded_order():
    images = np.zeros((103, 4, 4, 3), np.uint8)
    labels = np.arange(103)
    loader = FastLoader(images, labels, batch_size=10, shuffle=True, seed=7)
    first = torch.cat([y for _, y in loader])
    second = torch.cat([y for _, y in loader])
    assert len(loader) == 11 and sorted(first.tolist()) == list(range(103))
    assert not torch.equal(first, second)                       # a new order each epoch
    loader.set_epoch(0)
    assert torch.equal(torch.cat([y for _, y in loader]), first)  # epoch 0 again: same order


def test_every_named_recipe_runs_on_96px_images():
    for recipe in AUGMENTATIONS.values():
        assert BatchAugment(recipe)(_images(2, 96), _generator()).shape == (2, 3, 96, 96)


@pytest.mark.parametrize("recipe", ["q1.3", "q2"])
def test_geometric_steps_lose_as_many_pixels_as_the_torchvision_pipeline(recipe):
    # On an all-white image every black output pixel was lost to rotation or crop padding: the two pipelines
    # must lose the same share on average, and vary as much from image to image.
    white = torch.full((1500, 3, 32, 32), 255, dtype=torch.uint8)
    fast = unnormalize(BatchAugment(AUGMENTATIONS[recipe])(white, _generator()))[:, 0].eq(0).float().mean(dim=(1, 2))
    torch.manual_seed(0)
    transform, pil_white = make_train_transform(recipe), Image.fromarray(np.full((32, 32, 3), 255, np.uint8))
    pil = torch.stack([unnormalize(transform(pil_white))[0].eq(0).float().mean() for _ in range(1500)])
    assert abs(fast.mean() - pil.mean()) < 0.01
    assert abs(fast.std() - pil.std()) < 0.01


class _HostDataCounter(TorchDispatchMode):
    """Counts the tensors made from Python or NumPy data (torch.tensor / as_tensor): on a GPU, each one is a copy
    from the host."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func in (torch.ops.aten.lift_fresh.default, torch.ops.aten.lift_fresh_copy.default)
        return func(*args, **(kwargs or {}))


def _host_tensors_made(batches: int) -> int:
    loader = FastLoader(_images(8 * batches).permute(0, 2, 3, 1).numpy(), np.zeros(8 * batches, dtype=np.int64), 8,
                        shuffle=True, augmentation=AUGMENTATIONS["q1.4"])
    counter = _HostDataCounter()
    with counter:
        for _ in loader:
            pass
    return counter.count


def test_an_epoch_makes_no_tensor_from_host_data_per_batch():
    _host_tensors_made(1)                                   # constants made once per device are made here
    assert _host_tensors_made(2) == _host_tensors_made(6)   # no per-batch copy from the host (on a GPU)
