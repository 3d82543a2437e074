"""Named training protocols: the 2023 reference report's, section by section, and ours. One name is one protocol: its
settings never depend on the machine it runs on, and every published number names the preset that made it."""
from __future__ import annotations

from dataclasses import replace

from ..train_config import TrainConfig
from ..validation import check_choice

Q2_PRETRAINED_RUN = "q1.4-convnet"        # the CIFAR-100 run whose checkpoint the report's Q2 protocol fine-tunes
Q2_PLUS_PRETRAINED_RUN = "q3-best"         # the one the improved Q2 recipe fine-tunes

# The 2023 reference report's Table 1, ConvNet-BN: SGD momentum 0.9 + weight decay, lr 0.01, batch 128, 50 epochs.
FIGURE6 = TrainConfig(model="convnet-bn", optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4, batch_size=128,
                      epochs=50, augmentation="q1.4", compile=True)
MLP4_PLUS = TrainConfig(model="mlp4", model_kwargs={"hidden_size": 128}, optimizer="adamw", lr=2e-3,
                        weight_decay=0.05, batch_size=128, epochs=30, augmentation="flip", schedule="onecycle",
                        label_smoothing=0.1, tta_flip=True)
Q2_FINETUNE = TrainConfig(model="convnet-bn", dataset="stl10", init_from=Q2_PRETRAINED_RUN, optimizer="sgd",
                          lr=0.01, momentum=0.9, weight_decay=1e-4, batch_size=128, epochs=20, augmentation="q2",
                          compile=True)
Q2_FINETUNE_PLUS = TrainConfig(model="resconvnet5", dataset="stl10", init_from=Q2_PLUS_PRETRAINED_RUN,
                               optimizer="sgd", lr=0.02, momentum=0.9, weight_decay=5e-4, batch_size=64, epochs=20,
                               augmentation="flip-crop-96", schedule="onecycle", label_smoothing=0.1, compile=True,
                               tta_flip=True)
# Improved recipe, same ConvNet-BN: one-cycle learning rate, label smoothing, flip + crop only, batch 64 (twice
# the updates of batch 128: the net still under-fits at 15 epochs), flip test-time augmentation.
FIGURE6_PLUS = TrainConfig(model="convnet-bn", optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4,
                           batch_size=64, epochs=15, augmentation="flip-crop", schedule="onecycle", label_smoothing=0.1,
                           compile=True, tta_flip=True)

# Q3: the five-convolution residual net with the improved recipe, 20 epochs.
Q3_BEST = TrainConfig(model="resconvnet5", model_kwargs={"widths": [64, 192, 384]}, optimizer="sgd", lr=0.1,
                      momentum=0.9, weight_decay=5e-4, batch_size=128, epochs=20, augmentation="flip-crop",
                      schedule="onecycle", label_smoothing=0.1, compile=True, tta_flip=True)

# The 4-epoch ladder towards q3-fast (see WHAT_WORKED in results.py): the q3-best recipe in 4 epochs, then one
# change per rung, each rung chosen on the validation split (the -val presets below).
Q3_E4 = replace(Q3_BEST, epochs=4)
Q3_E4_LOW_RES = replace(Q3_E4, low_res=24, low_res_epochs=3)      # progressive resizing: 24 px, then 32 px
Q3_E4_LS02 = replace(Q3_E4_LOW_RES, label_smoothing=0.2)
Q3_E4_WHITENED = replace(Q3_E4_LS02, whitened_init=True)
Q3_E4_NARROW = replace(Q3_E4_WHITENED, model_kwargs={"widths": [64, 160, 320]})   # 0.74x the convolutions
Q3_E4_TTA_LAST = replace(Q3_E4_NARROW, tta_final_only=True)        # epochs before the last evaluated without TTA
Q3_FAST_FLIP_TTA = replace(Q3_E4_TTA_LAST, epochs=23, low_res_epochs=16)

PRESETS: dict[str, TrainConfig] = {
    # Q1.3: both assignment nets, Adam 1e-3, batch 64, 10 epochs, the Q1.3 augmentations.
    "q1.3-mlp": TrainConfig(model="mlp", model_kwargs={"hidden_size": 64}, optimizer="adam", lr=1e-3,
                            batch_size=64, epochs=10, augmentation="q1.3"),
    "q1.3-convnet": TrainConfig(model="convnet", optimizer="adam", lr=1e-3, batch_size=64, epochs=10,
                                augmentation="q1.3"),
    # The same protocol through the course's per-image torchvision pipeline (a parity check of the fast path).
    "q1.3-convnet-pil": TrainConfig(model="convnet", optimizer="adam", lr=1e-3, batch_size=64, epochs=10,
                                    augmentation="q1.3", loader="pil"),
    # Q1.4 Table 2 with the MLP-4: Adam with weight decay, lr 1e-3, batch 128, 20 epochs.
    "q1.4-mlp": TrainConfig(model="mlp4", model_kwargs={"hidden_size": 128}, optimizer="adam", lr=1e-3,
                            weight_decay=1e-4, batch_size=128, epochs=20, augmentation="q1.4"),
    # Improved recipe, same MLP-4: AdamW, one-cycle learning rate, label smoothing, flip only, 30 epochs.
    "q1.4-mlp-plus": MLP4_PLUS,
    # Q1.4 Table 1 with ConvNet-BN: SGD momentum 0.9 + weight decay, lr 0.01, batch 128, 50 epochs.
    "q1.4-convnet": FIGURE6,
    # The same at 15 epochs: the Q1.4 notebook's budget, a shorter protocol of its own.
    "q1.4-convnet-e15": replace(FIGURE6, epochs=15),
    "q1.4-convnet-plus": FIGURE6_PLUS,
    # The same recipe at the report's 50 epochs.
    "q1.4-convnet-plus-e50": replace(FIGURE6_PLUS, epochs=50),
    # Q2 Table 3: fine-tune the Q1.4 ConvNet (50 epochs) on the 5 STL-10 classes, 20 epochs.
    "q2-finetune": Q2_FINETUNE,
    # The report's Q3: the same at 60 epochs.
    "q2-finetune-e60": replace(Q2_FINETUNE, epochs=60),
    # Strategy (b): the same, but only the new fc1 and head learn (the pretrained convolutions are frozen).
    "q2-head": replace(Q2_FINETUNE, freeze_pretrained=True),
    # The real 219-image STL-10 sample has 46 training images, fewer than one batch of 128 (or 64): the same
    # protocols with batch 16 (3 steps per epoch), nothing else changed.
    "q2-sample-finetune": replace(Q2_FINETUNE, batch_size=16),
    "q2-sample-finetune-e60": replace(Q2_FINETUNE, batch_size=16, epochs=60),
    "q2-sample-head": replace(Q2_FINETUNE, batch_size=16, freeze_pretrained=True),
    # Q3: the five-conv residual net with the improved recipe, 20 epochs.
    "q3-best": Q3_BEST,
    # q3-best's recipe for 4 epochs: the ladder's first rung trained on all 50,000 images, for timing it beside
    # the fast presets.
    "q3-e4": Q3_E4,
    # Q3 in less time: the ladder's last rung at two budgets, aiming at 70 % within 40 minutes and 56 % within 8 on
    # the 2-core CPU (about two thirds of the epochs at 24 px, the rest at 32 px); the 40-minute one also averages
    # over 1 px diagonal shifts at its final evaluation.
    "q3-fast-flip-tta": Q3_FAST_FLIP_TTA,
    "q3-fast": replace(Q3_FAST_FLIP_TTA, tta_translate=1),
    "q3-fast-short": replace(Q3_E4_TTA_LAST, epochs=5, low_res_epochs=4),
    # Improved Q2: fine-tune the Q3 net (global pooling: no 73,728-input fc1 to learn from 2,500 images) with
    # one-cycle lr, label smoothing, flip + scaled crop and flip test-time augmentation; on the sample, batch 16.
    "q2-finetune-plus": Q2_FINETUNE_PLUS,
    "q2-sample-plus": replace(Q2_FINETUNE_PLUS, batch_size=16),
}

# The runs that choose: each protocol the Q3 ladder and the Q1.4 improvements decide between, trained on the
# training split less the 5,000 validation images and measured on those (never on the test split). A published
# recipe chosen this way is then retrained on all 50,000 training images for its test number (its preset without
# -val). The Q1.4 recipes' own -val runs are the bases of the sweeps (sweep.py), which the ladder starts from.
CHOOSING = ("q1.3-mlp", "q1.3-convnet", "q1.4-mlp", "q1.4-mlp-plus", "q1.4-convnet-e15", "q1.4-convnet-plus", "q3-e4")
PRESETS.update({f"{name}-val": replace(PRESETS[name], validation=True) for name in CHOOSING})
PRESETS.update({name: replace(config, validation=True) for name, config in {
    # The improved MLP recipe's ablations, one change each: the report's augmentation (flip, crop, colour jitter),
    # then none at all; both evaluated without flip TTA.
    "ablation-mlp-recipe-val": replace(MLP4_PLUS, augmentation="q1.4", tta_flip=False),
    "ablation-mlp-no-augmentation-val": replace(MLP4_PLUS, augmentation="none", tta_flip=False),
    # The improved ConvNet-BN recipe at the Q3 ladder's 4 epochs: the rung that swaps in the Q3 net.
    "q1.4-convnet-plus-e4-val": replace(FIGURE6_PLUS, epochs=4),
    # The Q3 ladder at a 4-epoch budget, each rung one change to the rung before it.
    "q3-e4-low-res-val": Q3_E4_LOW_RES,
    "q3-e4-ls02-val": Q3_E4_LS02,
    "q3-e4-whitened-val": Q3_E4_WHITENED,
    "q3-e4-20px-val": replace(Q3_E4_WHITENED, low_res=20),
    "q3-e4-batch64-val": replace(Q3_E4_WHITENED, batch_size=64, lr=0.05),     # twice the steps, lr scaled with batch
    "q3-e4-narrow-val": Q3_E4_NARROW,
}.items()})
# Q1.4's two added layers at a fixed recipe: each assignment net with its improved net's training settings (the
# ConvNet-BN's recipe at its sweep's 3 epochs, beside the sweep's base), and each improved net with the assignment
# net's (Q1.3: Adam 1e-3, batch 64, 10 epochs, the Q1.3 augmentation).
PRESETS.update({
    "q1.4-val-twolayer-figure5-recipe": replace(PRESETS["q1.4-mlp"], model="mlp", model_kwargs={"hidden_size": 64},
                                                validation=True),
    "q1.4-val-mlp4-q1.3-recipe": replace(PRESETS["q1.3-mlp-val"], model="mlp4", model_kwargs={"hidden_size": 128}),
    "q1.4-val-lenet-figure6-recipe": replace(FIGURE6, model="convnet", epochs=3, validation=True),  # as its sweep
    "q1.4-val-convnet-bn-q1.3-recipe": replace(PRESETS["q1.3-convnet-val"], model="convnet-bn"),
})

def get_preset(name: str) -> TrainConfig:
    """Returns a fresh copy of the named preset; unknown names list the valid ones."""
    check_choice("preset", name, PRESETS)
    preset = PRESETS[name]
    return replace(preset, model_kwargs=dict(preset.model_kwargs))
